// Package scrub finds secrets in text and replaces each with a marker that
// says what was there: "[membrane: redacted aws-access-key]".
//
// A Scrubber knows two sorts of secret: exact values it is given (membrane's
// own bearer token, secrets from its configuration) and common credential
// shapes (AWS access keys, GitHub, GitLab, Slack and OpenAI tokens, JWTs, PEM
// private key blocks, password=... assignments, bearer headers, and the
// password in user:pass@ URLs). Shapes are chosen to leave alone what merely
// looks random: a SHA-256, a UUID or base64 image data passes untouched.
//
// The same Scrubber serves the audit ledger, the trace store and the logs,
// and is meant for tool output as well: [Scrubber.Find] reports where the
// secrets are, [Scrubber.String] replaces them, and [Scrubber.JSON] does so
// in every string of a JSON document, also hiding the values of keys that
// name a secret ("password", "api_key").
package scrub

import (
	"bytes"
	"encoding/json"
	"math/bits"
	"regexp"
	"slices"
	"strings"
)

// A Match is one secret found in a text: text[Start:End] is to be hidden.
type Match struct {
	Kind       string
	Start, End int
}

// Marker returns what a secret of kind is replaced with.
func Marker(kind string) string { return "[membrane: redacted " + kind + "]" }

// Options configures a Scrubber. The zero value finds the credential
// shapes only.
type Options struct {
	// Secrets are exact values to hide wherever they appear, such as the
	// server's bearer token. Values shorter than MinSecretLen are ignored
	// (they would hide ordinary words).
	Secrets []string
}

// MinSecretLen is the shortest exact secret a Scrubber accepts.
const MinSecretLen = 6

// Scrubber finds and hides secrets. It is safe for concurrent use.
type Scrubber struct {
	secrets []string
}

// New returns a Scrubber. A nil opts means the zero Options.
func New(opts *Options) *Scrubber {
	s := &Scrubber{}
	if opts != nil {
		for _, v := range opts.Secrets {
			if len(v) >= MinSecretLen && !slices.Contains(s.secrets, v) {
				s.secrets = append(s.secrets, v)
			}
		}
	}
	// Longest first, so that a secret holding another is hidden whole.
	slices.SortFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
	return s
}

// shape is one credential pattern. hint is a cheap prefilter: the pattern
// can only match a text holding it (lower-cased when fold is set); anyOf
// is the same for a pattern with several possible literals, any one of
// which must be there. The prefilters keep the regular expressions, which
// cost far more than a substring search, off ordinary output. group, when
// non-zero, is the part of the match to hide (the password, not the word
// "password=").
type shape struct {
	kind  string
	hint  string
	anyOf []string
	fold  bool
	re    *regexp.Regexp
	group int
}

var shapes = []shape{
	{kind: "private-key", hint: "-----begin", fold: true,
		re: regexp.MustCompile(`-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(-----END[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)`)},
	{kind: "aws-access-key", anyOf: []string{"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "APKA"},
		re: regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|APKA)[A-Z2-7]{16}\b`)},
	{kind: "github-token", hint: "gh",
		re: regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})\b`)},
	{kind: "gitlab-token", hint: "gl",
		re: regexp.MustCompile(`\bgl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_-]{20,}`)},
	{kind: "slack-token", hint: "xox",
		re: regexp.MustCompile(`\bxox[abeoprs]-[A-Za-z0-9-]{10,}`)},
	{kind: "slack-webhook", hint: "hooks.slack.com",
		re: regexp.MustCompile(`https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_+-]{20,}`)},
	{kind: "openai-key", hint: "sk-",
		re: regexp.MustCompile(`\bsk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,}`)},
	{kind: "jwt", hint: "eyj", fold: true,
		re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
	{kind: "bearer-token", hint: "bearer", fold: true,
		re: regexp.MustCompile(`(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)`), group: 1},
	{kind: "password", hint: "://",
		re: regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@`), group: 1},
	{kind: "password", anyOf: []string{"pass", "pwd", "secret", "key", "token"}, fold: true,
		re: regexp.MustCompile(`(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|secret[_-]?key|auth[_-]?token|access[_-]?token|client[_-]?secret|token)\s*[=:]\s*("[^"\n]{1,}"|'[^'\n]{1,}'|[^\s"'&;,]{1,})`), group: 1},
}

// Find returns the secrets in text, in order and without overlaps.
func (s *Scrubber) Find(text string) []Match {
	if text == "" {
		return nil
	}
	var ms []Match
	for _, v := range s.secrets {
		for off := 0; ; {
			i := strings.Index(text[off:], v)
			if i < 0 {
				break
			}
			ms = append(ms, Match{Kind: "secret", Start: off + i, End: off + i + len(v)})
			off += i + len(v)
		}
	}
	for cand := candidates(text); cand != 0; cand &= cand - 1 {
		sh := &shapes[bits.TrailingZeros64(cand)]
		for _, loc := range sh.re.FindAllStringSubmatchIndex(text, -1) {
			start, end := loc[0], loc[1]
			if sh.group > 0 {
				start, end = loc[2*sh.group], loc[2*sh.group+1]
				if start < 0 {
					continue
				}
				// A quoted value: hide what is inside the quotes.
				if end-start >= 2 && (text[start] == '"' || text[start] == '\'') && text[end-1] == text[start] {
					start, end = start+1, end-1
				}
			}
			if isMarker(text, start, end) {
				continue
			}
			ms = append(ms, Match{Kind: sh.kind, Start: start, End: end})
		}
	}
	if len(ms) < 2 {
		return ms
	}
	slices.SortFunc(ms, func(a, b Match) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	out := ms[:1]
	for _, m := range ms[1:] {
		last := &out[len(out)-1]
		if m.Start < last.End {
			if m.End > last.End {
				last.End = m.End
			}
			continue
		}
		out = append(out, m)
	}
	return out
}

// Clean reports whether text holds no secret: whether Find would find
// none. Unlike Find(string(text)), it copies nothing when the prefilter
// rules every credential shape out, as it does for most texts.
func (s *Scrubber) Clean(text []byte) bool {
	for _, v := range s.secrets {
		if bytes.Contains(text, []byte(v)) {
			return false
		}
	}
	if candidates(text) == 0 {
		return true
	}
	return len(s.Find(string(text))) == 0
}

// isMarker reports whether text[start:end] is (inside) a marker this package
// wrote, so that scrubbing twice changes nothing.
func isMarker(text string, start, end int) bool {
	const open = "[membrane: redacted "
	if strings.HasPrefix(text[start:], open) {
		return true
	}
	i := strings.LastIndex(text[:start], open)
	if i < 0 {
		return false
	}
	j := strings.IndexByte(text[i:], ']')
	return j >= 0 && i+j >= end-1
}

// String returns text with every secret replaced by its marker.
func (s *Scrubber) String(text string) string {
	ms := s.Find(text)
	if len(ms) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, m := range ms {
		b.WriteString(text[last:m.Start])
		b.WriteString(Marker(m.Kind))
		last = m.End
	}
	b.WriteString(text[last:])
	return b.String()
}

// secretKey matches object keys whose value is a secret whatever it looks
// like.
var secretKey = regexp.MustCompile(`(?i)^(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|client[_-]?secret|authorization|cookie|credentials?)$`)

// JSON returns doc with every string scrubbed and the values of keys that
// name a secret replaced. A doc that is not valid JSON is scrubbed as text
// and returned as a JSON string, so the result is always valid JSON.
func (s *Scrubber) JSON(doc []byte) json.RawMessage {
	v, ok := decode(doc)
	if !ok {
		b, _ := json.Marshal(s.String(string(doc)))
		return b
	}
	v = s.Value(v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// Value scrubs a decoded JSON value (as encoding/json decodes into any, with
// json.Number or float64 numbers) and returns the scrubbed copy.
func (s *Scrubber) Value(v any) any {
	switch x := v.(type) {
	case string:
		return s.String(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = s.Value(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if secretKey.MatchString(k) {
				if str, ok := e.(string); !ok || (str != "" && !strings.HasPrefix(str, "[membrane: redacted ")) {
					out[k] = Marker(strings.ToLower(k))
					continue
				}
			}
			out[k] = s.Value(e)
		}
		return out
	}
	return v
}

func decode(doc []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	return v, true
}
