package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// MaxTokensFileBytes caps the tokens file.
const MaxTokensFileBytes = 1 << 20

// minTokenLen is the shortest plain token accepted: anything shorter can
// be guessed.
const minTokenLen = 16

// TokenConfig is one entry of the tokens file.
type TokenConfig struct {
	// Name identifies the client in logs, the ledger and metrics. The
	// token itself is never shown.
	Name string `json:"name"`
	// Token is the bearer token, or "sha256:" and the hex SHA-256 of it,
	// so that the file need not hold the secret.
	Token string `json:"token"`
	// Tools are the globs of the tools the client may list and call;
	// empty means all. ExcludeTools are taken out of those.
	Tools        []string `json:"tools,omitempty"`
	ExcludeTools []string `json:"exclude_tools,omitempty"`
	// RateLimits apply to this client's calls.
	RateLimits []Limit `json:"rate_limits,omitempty"`
	// Concurrency caps the client's calls running at once, over all its
	// sessions; zero means no cap.
	Concurrency int `json:"concurrency,omitempty"`
	// MaxSessions caps the client's open sessions; zero means no cap.
	// The HTTP layer enforces it.
	MaxSessions int `json:"max_sessions,omitempty"`
}

// Limit is a token bucket over the calls to the tools a glob matches.
type Limit struct {
	// Tools is a glob of tool names; empty means every tool.
	Tools string `json:"tools,omitempty"`
	// PerMinute is the steady rate, in calls per minute.
	PerMinute float64 `json:"per_minute"`
	// Burst is how many calls may come at once above the steady rate.
	// Zero means 1.
	Burst int `json:"burst,omitempty"`
	// PerTool gives each matching tool a bucket of its own; by default
	// all the tools the glob matches share one.
	PerTool bool `json:"per_tool,omitempty"`
}

func (l *Limit) check() error {
	if l.Tools == "" {
		l.Tools = "*"
	}
	if _, err := NewSelector([]string{l.Tools}, nil); err != nil {
		return err
	}
	if !(l.PerMinute > 0) || l.PerMinute > 1e9 {
		return fmt.Errorf("rate limit for %q: per_minute must be a positive number of calls per minute", l.Tools)
	}
	if l.Burst < 0 {
		return fmt.Errorf("rate limit for %q: burst must not be negative", l.Tools)
	}
	if l.Burst == 0 {
		l.Burst = 1
	}
	return nil
}

// A Principal is who is calling, as a scoped token names it, with what it
// may do. A Principal is immutable; a reload makes new ones.
type Principal struct {
	// Name is the token's name, safe to log.
	Name string
	// Tools selects the tools the principal may list and call.
	Tools *Selector
	// Limits are the principal's own rate limits.
	Limits []Limit
	// Concurrency and MaxSessions are caps; zero means none.
	Concurrency, MaxSessions int

	digest [sha256.Size]byte
	// state names the runtime state (buckets, slots) the principal uses;
	// a reload that keeps the name and the limits keeps the state.
	state string
}

// Unlimited reports whether the principal may call every tool with no
// limits, as the single shared token does.
func (p *Principal) Unlimited() bool {
	return p.Tools.All() && len(p.Limits) == 0 && p.Concurrency == 0
}

// TokenSet is a parsed tokens file.
type TokenSet struct {
	principals []*Principal
	byName     map[string]*Principal
	plain      []string // the tokens the file gives in plain text
}

// PlainTokens returns the tokens the file gives in plain text (not as
// sha256: digests), for a scrubber to hide wherever they show up.
func (ts *TokenSet) PlainTokens() []string { return slices.Clone(ts.plain) }

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// ParseTokens reads a tokens file: a JSON object {"tokens": [...]} of
// TokenConfig entries. Unknown fields, duplicate names or tokens, short
// tokens, bad globs and an empty list are errors; the error names the
// entry. A file with no token is an error because it would lock every
// client out.
func ParseTokens(data []byte) (*TokenSet, error) {
	var f struct {
		Tokens []TokenConfig `json:"tokens"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("tokens file: trailing data after the JSON object")
	}
	if len(f.Tokens) == 0 {
		return nil, errors.New(`tokens file: no tokens: it would lock every client out; list at least one {"name": ..., "token": ...}`)
	}
	ts := &TokenSet{byName: map[string]*Principal{}}
	names := map[string]bool{}
	digests := map[[sha256.Size]byte]string{}
	for i, tc := range f.Tokens {
		where := fmt.Sprintf("tokens file: entry %d", i+1)
		if tc.Name != "" {
			where += fmt.Sprintf(" (%s)", tc.Name)
		}
		p, err := principalOf(tc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if names[p.Name] {
			return nil, fmt.Errorf("%s: the name is used twice", where)
		}
		if other, ok := digests[p.digest]; ok {
			return nil, fmt.Errorf("%s: the same token as %s", where, other)
		}
		names[p.Name], digests[p.digest] = true, p.Name
		ts.principals = append(ts.principals, p)
		ts.byName[p.Name] = p
		if !strings.HasPrefix(tc.Token, "sha256:") {
			ts.plain = append(ts.plain, tc.Token)
		}
	}
	return ts, nil
}

func principalOf(tc TokenConfig) (*Principal, error) {
	if !namePattern.MatchString(tc.Name) {
		return nil, errors.New("name must be 1 to 64 letters, digits or _.@-")
	}
	p := &Principal{Name: tc.Name, Concurrency: tc.Concurrency, MaxSessions: tc.MaxSessions}
	switch hexSum, hashed := strings.CutPrefix(tc.Token, "sha256:"); {
	case hashed:
		b, err := hex.DecodeString(hexSum)
		if err != nil || len(b) != sha256.Size {
			return nil, errors.New("token sha256: wants 64 hex digits (the output of `printf %s TOKEN | sha256sum`)")
		}
		copy(p.digest[:], b)
	case len(tc.Token) < minTokenLen:
		return nil, fmt.Errorf("token must be at least %d characters (such as the output of `openssl rand -hex 24`)", minTokenLen)
	default:
		p.digest = sha256.Sum256([]byte(tc.Token))
	}
	sel, err := NewSelector(tc.Tools, tc.ExcludeTools)
	if err != nil {
		return nil, err
	}
	p.Tools = sel
	if tc.Concurrency < 0 || tc.MaxSessions < 0 {
		return nil, errors.New("concurrency and max_sessions must not be negative")
	}
	for _, l := range tc.RateLimits {
		if err := l.check(); err != nil {
			return nil, err
		}
		p.Limits = append(p.Limits, l)
	}
	key, _ := json.Marshal(struct {
		N string
		L []Limit
		C int
	}{p.Name, p.Limits, p.Concurrency})
	p.state = string(key)
	return p, nil
}

// Lookup returns the principal whose token is token. Its time does not
// depend on which entry matches, nor on how much of a token matches.
func (ts *TokenSet) Lookup(token string) (*Principal, bool) {
	if ts == nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i, p := range ts.principals {
		eq := subtle.ConstantTimeCompare(p.digest[:], sum[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return nil, false
	}
	return ts.principals[found], true
}

// Names returns the principals' names, in file order.
func (ts *TokenSet) Names() []string {
	out := make([]string, 0, len(ts.principals))
	for _, p := range ts.principals {
		out = append(out, p.Name)
	}
	return out
}

// Principals returns the principals, in file order.
func (ts *TokenSet) Principals() []*Principal { return append([]*Principal(nil), ts.principals...) }

// LoadTokens reads and parses the tokens file at path.
func LoadTokens(path string) (*TokenSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTokensFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	if len(data) > MaxTokensFileBytes {
		return nil, fmt.Errorf("tokens file: %s is larger than %d bytes", path, MaxTokensFileBytes)
	}
	return ParseTokens(data)
}

// SharedName is the name of the principal of the single shared token
// (--token, MEMBRANE_TOKEN) when it sits beside a tokens file.
const SharedName = "shared"

// Store holds the tokens in use and swaps them whole on a reload. It is
// safe for concurrent use.
type Store struct {
	cur    atomic.Pointer[TokenSet]
	shared *Principal // the single shared token; nil when there is none
}

// NewStore returns a Store holding set (nil holds none) and, when shared is
// not empty, the single shared token as an unlimited principal named
// SharedName.
func NewStore(set *TokenSet, shared string) *Store {
	s := &Store{}
	if set == nil {
		set = &TokenSet{}
	}
	s.cur.Store(set)
	if shared != "" {
		s.shared = &Principal{Name: SharedName, digest: sha256.Sum256([]byte(shared)), state: SharedName}
	}
	return s
}

// Lookup resolves a bearer token to its principal, in constant time.
func (s *Store) Lookup(token string) (*Principal, bool) {
	p, ok := s.cur.Load().Lookup(token)
	if s.shared != nil {
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], s.shared.digest[:]) == 1 && !ok {
			return s.shared, true
		}
	}
	return p, ok
}

// Principal returns the principal named name in the tokens in use.
func (s *Store) Principal(name string) (*Principal, bool) {
	if s.shared != nil && name == SharedName {
		return s.shared, true
	}
	p, ok := s.cur.Load().byName[name]
	return p, ok
}

// Verify resolves a bearer token to the name of its principal, in
// constant time: the shape of mcp.HTTPOptions.Verify.
func (s *Store) Verify(token string) (user string, ok bool) {
	p, ok := s.Lookup(token)
	if !ok {
		return "", false
	}
	return p.Name, true
}

// Scope puts the principal named user into ctx and returns the filter of
// the tools it may see: the shape of mcp.ServerOptions.Scope. No user (the
// simple case) gets ctx as it is and every tool. A user no longer in the
// tokens (removed by a reload mid-request) sees nothing.
func (s *Store) Scope(ctx context.Context, user string) (context.Context, func(tool string) bool) {
	if user == "" {
		return ctx, nil
	}
	p, ok := s.Principal(user)
	if !ok {
		return ctx, func(string) bool { return false }
	}
	ctx = WithPrincipal(ctx, p)
	if p.Tools.All() {
		return ctx, nil
	}
	return ctx, p.Tools.Allows
}

// Current returns the token set in use.
func (s *Store) Current() *TokenSet { return s.cur.Load() }

// Replace puts set in use.
func (s *Store) Replace(set *TokenSet) { s.cur.Store(set) }

// Reload reads path and, only when it parses and checks whole, puts it in
// use. On any error the tokens in use stay.
func (s *Store) Reload(path string) (*TokenSet, error) {
	set, err := LoadTokens(path)
	if err != nil {
		return nil, err
	}
	s.Replace(set)
	return set, nil
}

// Watch polls path every interval and reloads it when it has changed and
// then held still for one interval, so that a file caught half way through
// a write is not read. A file that does not load is passed to onError and
// the tokens in use stay; a loaded one is passed to onLoad. Either may be
// nil. Watch returns when ctx is done.
func (s *Store) Watch(ctx context.Context, path string, interval time.Duration, onLoad func(*TokenSet), onError func(error)) {
	type stamp struct {
		mod  time.Time
		size int64
	}
	look := func() (stamp, bool) {
		fi, err := os.Stat(path)
		if err != nil {
			return stamp{}, false
		}
		return stamp{fi.ModTime(), fi.Size()}, true
	}
	// The first stable look always reloads: the file may have changed
	// between the caller's load and now.
	var last, pending stamp
	havePending := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, ok := look()
		if !ok || st == last {
			havePending = false
			continue
		}
		if !havePending || st != pending {
			pending, havePending = st, true // still changing, perhaps
			continue
		}
		last, havePending = st, false
		set, err := s.Reload(path)
		if err != nil {
			if onError != nil {
				onError(err)
			}
			continue
		}
		if onLoad != nil {
			onLoad(set)
		}
	}
}
