package scrub

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
)

// TestFoldLowerCoversEveryFold: every non-ASCII letter that a
// case-insensitive expression takes for an ASCII letter is lowered to that
// letter, so the non-ASCII prefilter never misses a word spelt with one.
func TestFoldLowerCoversEveryFold(t *testing.T) {
	found := 0
	for c := 'a'; c <= 'z'; c++ {
		for r := unicode.SimpleFold(c); r != c; r = unicode.SimpleFold(r) {
			if r < 0x80 {
				continue
			}
			found++
			if got := foldLower(r); got != c {
				t.Errorf("foldLower(%U) = %q, want %q", r, got, c)
			}
		}
	}
	if found != 2 { // the Kelvin sign and the long s
		t.Errorf("found %d non-ASCII folds of ASCII letters, want 2", found)
	}
}

// prefilterSeeds are texts near each shape's words.
var prefilterSeeds = []string{
	"", "x", "password=hunter2", "PassWord: x", "pwd", "ſecret=hunter2", "api_Key=abc", "aws AKIAIOSFODNN7EXAMPLE",
	"ASIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghij0123456789abcdef", "glpat-abcdefghij0123456789", "xoxb-1234567890-abc",
	"https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX", "sk-proj-abcdefghijklmnopqrstuvwxyz",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "Authorization: BEARER abcdefghijklmnop0123",
	"postgres://u:p@h/", "-----BEGIN RSA PRIVATE KEY-----\nabc", "-----begin", "tOkEn = 'a b'", "é token=x", "ls -la && echo done",
}

// TestCandidatesOnePassMatchesSearches: on ASCII text the one-pass
// prefilter picks exactly the shapes the lower-cased searches pick, for
// random texts made of the words, their case variants and filler.
func TestCandidatesOnePassMatchesSearches(t *testing.T) {
	var words []string
	for _, sh := range shapes {
		words = append(words, sh.hint)
		words = append(words, sh.anyOf...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		var b strings.Builder
		for n := rng.IntN(6); n >= 0; n-- {
			switch rng.IntN(3) {
			case 0:
				w := words[rng.IntN(len(words))]
				if w != "" && rng.IntN(2) == 0 {
					// Cut or flip the case of one letter.
					j := rng.IntN(len(w))
					if rng.IntN(2) == 0 {
						w = w[:j]
					} else {
						w = w[:j] + strings.ToUpper(w[j:j+1]) + w[j+1:]
					}
				}
				b.WriteString(w)
			case 1:
				b.WriteByte(byte(0x20 + rng.IntN(0x5f)))
			default:
				b.WriteString(prefilterSeeds[rng.IntN(len(prefilterSeeds))])
			}
		}
		text := b.String()
		if isASCII(text) {
			if got, want := candidates(text), candidatesFolded(text); got != want {
				t.Fatalf("candidates(%q) = %b, searches give %b", text, got, want)
			}
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzPrefilter checks that the prefilter is sound: a shape whose
// expression matches a text is always among its candidates, so the
// prefilter never hides a secret from the expressions; and that Clean
// says what Find says.
func FuzzPrefilter(f *testing.F) {
	for _, s := range prefilterSeeds {
		f.Add(s)
	}
	f.Add("the SECRETVALUE here")
	s := New(&Options{Secrets: []string{"SECRETVALUE"}})
	f.Fuzz(func(t *testing.T, text string) {
		if clean, found := s.Clean([]byte(text)), s.Find(text); clean != (len(found) == 0) {
			t.Fatalf("Clean(%q) = %v, Find found %v", text, clean, found)
		}
		cand := candidates(text)
		for i := range shapes {
			if cand&(1<<i) == 0 && shapes[i].re.MatchString(text) {
				t.Fatalf("shape %s matches %q but the prefilter left it out", shapes[i].kind, text)
			}
		}
		if isASCII(text) && cand != candidatesFolded(text) {
			t.Fatalf("candidates(%q) = %b, searches give %b", text, cand, candidatesFolded(text))
		}
	})
}

// TestNonASCIIFoldsAreScrubbed: a key word spelt with a letter that folds
// to ASCII (the long s, the Kelvin sign) is still found, beside an allow
// control of the same text in plain ASCII.
func TestNonASCIIFoldsAreScrubbed(t *testing.T) {
	s := New(nil)
	for _, in := range []string{"pa\u017f\u017fword=hunter2", "api_\u212aey=hunter2", "password=hunter2", "café secret=hunter2"} {
		if got := s.String(in); strings.Contains(got, "hunter2") || !strings.Contains(got, Marker("password")) {
			t.Errorf("String(%q) = %q, want hunter2 hidden", in, got)
		}
	}
	if in := "café au lait"; s.String(in) != in {
		t.Errorf("String changed %q", in)
	}
}

// FuzzHasKeyWord checks that HasKeyWord is sound: a key that Value hides
// always holds a key word, so a document without one has no such key.
func FuzzHasKeyWord(f *testing.F) {
	for _, k := range []string{"password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "API-KEY", "access_key",
		"secret_key", "private_key", "auth_token", "access_token", "refresh_token", "client_secret", "authorization",
		"Cookie", "credentials", "credential", "api_\u212aey", "\u017fecret", "name", "x"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if secretKey.MatchString(key) && !HasKeyWord([]byte(key)) {
			t.Fatalf("%q names a secret but HasKeyWord misses it", key)
		}
		if doc := []byte(`{"` + key + `":1}`); secretKey.MatchString(key) && !HasKeyWord(doc) {
			t.Fatalf("%s names a secret but HasKeyWord misses it", doc)
		}
	})
}

// TestHasKeyWord: each key Value hides is found, in a document too, and
// ordinary keys (the control) are not.
func TestHasKeyWord(t *testing.T) {
	for _, k := range []string{"password", "PASSWD", "api-key", "Authorization", "cookie", "credentials", "api_\u212aey", "\u017fecret"} {
		if !secretKey.MatchString(k) {
			t.Fatalf("test key %q does not name a secret", k)
		}
		if !HasKeyWord([]byte(`{"a":{"` + k + `":"v"}}`)) {
			t.Errorf("HasKeyWord misses %q", k)
		}
	}
	for _, doc := range []string{`{"x":1}`, `{"command":"ls -la","timeout":30}`, `{"café":"au lait"}`} {
		if HasKeyWord([]byte(doc)) {
			t.Errorf("HasKeyWord(%s) = true", doc)
		}
	}
}
