package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

func echoCall(name string) calls.Call {
	return calls.Call{
		Name: name, Kind: calls.KindTool, InputSchema: json.RawMessage(`{"type":"object"}`), Concurrency: -1,
		Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			return calls.Text("ok " + req.Call.Name), nil
		}),
	}
}

func TestSelector(t *testing.T) {
	t.Parallel()
	sel, err := NewSelector([]string{"ollama_*", "sh"}, []string{"ollama_embed*"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"sh": true, "ollama_chat": true, "ollama_embed": false, "ollama_embed_nomic": false,
		"python_run": false, "shx": false,
	} {
		if got := sel.Allows(name); got != want {
			t.Errorf("Allows(%q) = %v, want %v", name, got, want)
		}
	}
	if got := sel.Unmatched([]string{"sh", "python_run"}); !slices.Equal(got, []string{"ollama_*", "ollama_embed*"}) {
		t.Errorf("Unmatched = %v", got)
	}
	var none *Selector
	if !none.Allows("anything") || !none.All() {
		t.Error("a nil selector selects everything")
	}
	if _, err := NewSelector([]string{"[a-"}, nil); !errors.As(err, new(*PatternError)) {
		t.Errorf("bad glob: %v", err)
	}
	excl, _ := NewSelector(nil, []string{"sh"})
	if excl.Allows("sh") || !excl.Allows("python_run") || excl.All() {
		t.Error("exclude only")
	}
}

// recorder keeps what a subscriber saw.
type recorder struct {
	mu      sync.Mutex
	present map[string]bool
	changes int
}

func (r *recorder) apply(ch calls.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.present == nil {
		r.present = map[string]bool{}
	}
	r.changes++
	for _, c := range ch.Added {
		r.present[c.Name] = true
	}
	for _, n := range ch.Removed {
		delete(r.present, n)
	}
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.present {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func TestViewFollowsTheRouterAndTheSelector(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	for _, n := range []string{"sh", "python_run", "ollama_chat"} {
		if err := r.Add(echoCall(n)); err != nil {
			t.Fatal(err)
		}
	}
	sel, _ := NewSelector(nil, []string{"sh", "gemma*"})
	v := NewView(r, sel)
	defer v.Close()
	var rec recorder
	cancel := v.Subscribe(rec.apply)
	defer cancel()
	if got := rec.names(); !slices.Equal(got, []string{"ollama_chat", "python_run"}) {
		t.Fatalf("initial = %v", got)
	}

	// Tools that appear later pass the same filter.
	if _, err := r.Sync("ollama", []calls.Call{echoCall("gemma3_chat"), echoCall("qwen_chat")}); err != nil {
		t.Fatal(err)
	}
	if got := rec.names(); !slices.Equal(got, []string{"ollama_chat", "python_run", "qwen_chat"}) {
		t.Fatalf("after sync = %v", got)
	}
	if v.Len() != 3 || len(v.List()) != 3 {
		t.Fatalf("Len = %d", v.Len())
	}

	// A hidden call is unknown through the view; the allow control beside it.
	if _, err := v.Call(t.Context(), "sh", nil); !errors.Is(err, calls.ErrUnknownCall) {
		t.Fatalf("hidden call: %v", err)
	}
	if res, err := v.Call(t.Context(), "python_run", nil); err != nil || res.TextOf() != "ok python_run" {
		t.Fatalf("visible call: %v %v", res, err)
	}

	// A new selector is one change: sh in, python_run out.
	before := rec.changes
	sel2, _ := NewSelector(nil, []string{"python_run", "gemma*"})
	v.SetSelector(sel2)
	if got := rec.names(); !slices.Equal(got, []string{"ollama_chat", "qwen_chat", "sh"}) {
		t.Fatalf("after SetSelector = %v", got)
	}
	if rec.changes != before+1 {
		t.Fatalf("SetSelector made %d changes, want 1", rec.changes-before)
	}
}

func TestViewUnderConcurrentChanges(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	v := NewView(r, nil)
	defer v.Close()
	var rec recorder
	defer v.Subscribe(rec.apply)()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				name := fmt.Sprintf("t%d_%d", i, j)
				_ = r.Add(echoCall(name))
				if j%2 == 0 {
					r.Remove(name)
				}
			}
		})
	}
	wg.Go(func() {
		for j := range 50 {
			s, _ := NewSelector(nil, []string{fmt.Sprintf("t%d_*", j%4)})
			v.SetSelector(s)
		}
		v.SetSelector(nil)
	})
	wg.Wait()
	want := []string{}
	for _, c := range r.List() {
		want = append(want, c.Name)
	}
	if got := rec.names(); !slices.Equal(got, want) {
		t.Fatalf("subscriber holds %d names, router %d", len(got), len(want))
	}
}

// fakeClock is the rate limits' clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newRouter(t *testing.T, p *Policy, names ...string) *calls.Router {
	t.Helper()
	r := calls.NewRouter(&calls.RouterOptions{Middleware: []calls.Middleware{p.Middleware()}})
	for _, n := range names {
		if err := r.Add(echoCall(n)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// callAll makes n calls at once and counts the refusals.
func callAll(t *testing.T, ctx context.Context, r *calls.Router, tool string, n int) (ok, refused int) {
	var okN, refN atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := r.Call(ctx, tool, nil)
			switch {
			case err != nil:
				t.Error(err)
			case res.IsError:
				if m, _ := res.Structured.(map[string]any); m["rate_limited"] != true {
					t.Errorf("refusal is not a rate limit: %s", res.TextOf())
				}
				refN.Add(1)
			default:
				okN.Add(1)
			}
		})
	}
	wg.Wait()
	return int(okN.Load()), int(refN.Load())
}

func TestRateLimitBurstThenSteadyExact(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p, err := New(Options{Now: clk.now, Limits: []Limit{{Tools: "sh", PerMinute: 60, Burst: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, p, "sh", "python_run")
	ctx := t.Context()

	// A burst of 20 at one instant: exactly the burst passes.
	ok, refused := callAll(t, ctx, r, "sh", 20)
	if ok != 5 || refused != 15 {
		t.Fatalf("burst: %d ok, %d refused; want 5 and 15", ok, refused)
	}
	// Steady calls at the rate (one a second) all pass, and one more in
	// the same second is refused.
	for i := range 10 {
		clk.advance(time.Second)
		ok, refused := callAll(t, ctx, r, "sh", 3)
		if ok != 1 || refused != 2 {
			t.Fatalf("steady second %d: %d ok, %d refused; want 1 and 2", i, ok, refused)
		}
	}
	// A tool the limit does not cover is not limited.
	if ok, refused := callAll(t, ctx, r, "python_run", 30); ok != 30 || refused != 0 {
		t.Fatalf("uncovered tool: %d ok, %d refused", ok, refused)
	}
	if got := p.Refused()[ReasonRate]; got != 15+20 {
		t.Fatalf("refusals counted: %d, want 35", got)
	}
	// The refusal says when to retry: half a second in, half a second to go.
	clk.advance(time.Second)
	if res, _ := r.Call(ctx, "sh", nil); res.IsError {
		t.Fatal(res.TextOf())
	}
	clk.advance(500 * time.Millisecond)
	res, _ := r.Call(ctx, "sh", nil)
	if !res.IsError || !strings.Contains(res.TextOf(), "try again in 0.5 s") {
		t.Fatalf("refusal: %s", res.TextOf())
	}
	if m := res.Structured.(map[string]any); m["retry_after_s"] != 0.5 {
		t.Fatalf("retry_after_s = %v", m["retry_after_s"])
	}
}

func TestRateLimitsPerClientAndShared(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p, err := New(Options{Now: clk.now, Limits: []Limit{{Tools: "ollama_*", PerMinute: 60, Burst: 6}}})
	if err != nil {
		t.Fatal(err)
	}
	set, err := ParseTokens([]byte(`{"tokens":[
		{"name":"alice","token":"alice-token-0123456789","rate_limits":[{"tools":"ollama_*","per_minute":60,"burst":2,"per_tool":true}]},
		{"name":"bob","token":"bob-token-0123456789ab"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := set.Lookup("alice-token-0123456789")
	bob, _ := set.Lookup("bob-token-0123456789ab")
	r := newRouter(t, p, "ollama_chat", "ollama_embed")
	actx, bctx := WithPrincipal(t.Context(), alice), WithPrincipal(t.Context(), bob)

	// alice has 2 a tool of her own, inside the 6 shared by everyone.
	if ok, _ := callAll(t, actx, r, "ollama_chat", 5); ok != 2 {
		t.Fatalf("alice chat: %d ok, want 2", ok)
	}
	if ok, _ := callAll(t, actx, r, "ollama_embed", 5); ok != 2 {
		t.Fatalf("alice embed: %d ok, want 2 (a bucket per tool)", ok)
	}
	// bob has no limit of his own: what is left of the shared 6.
	if ok, _ := callAll(t, bctx, r, "ollama_chat", 5); ok != 2 {
		t.Fatalf("bob: %d ok, want the 2 left of the shared bucket", ok)
	}
	// alice's refusals took nothing from the shared bucket: 6 passed in all.
	if got := p.Refused()[ReasonRate]; got != 3+3+3 {
		t.Fatalf("refused %d, want 9", got)
	}
}

func TestScopeAndConcurrency(t *testing.T) {
	t.Parallel()
	set, err := ParseTokens([]byte(`{"tokens":[
		{"name":"reader","token":"reader-token-0123456789","tools":["ollama_*"],"exclude_tools":["ollama_embed"],"concurrency":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	reader, _ := set.Lookup("reader-token-0123456789")
	var refusals []Refusal
	var mu sync.Mutex
	p, _ := New(Options{OnRefuse: func(_ context.Context, r Refusal) { mu.Lock(); refusals = append(refusals, r); mu.Unlock() }})
	release := make(chan struct{})
	started := make(chan struct{})
	r := newRouter(t, p, "sh", "ollama_embed")
	slow := echoCall("ollama_chat")
	slow.Handler = calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		close(started)
		<-release
		return calls.Text("done"), nil
	})
	if err := r.Add(slow); err != nil {
		t.Fatal(err)
	}
	ctx := WithPrincipal(t.Context(), reader)

	for _, tool := range []string{"sh", "ollama_embed"} {
		res, err := r.Call(ctx, tool, nil)
		if err != nil || !res.IsError || !strings.Contains(res.TextOf(), "not available to this client (token \"reader\")") {
			t.Fatalf("%s: %v %s", tool, err, res.TextOf())
		}
	}
	// The same tools without a principal (the shared token) pass.
	if res, _ := r.Call(t.Context(), "sh", nil); res.IsError {
		t.Fatalf("shared: %s", res.TextOf())
	}

	done := make(chan *calls.Result)
	go func() { res, _ := r.Call(ctx, "ollama_chat", nil); done <- res }()
	<-started
	res, _ := r.Call(ctx, "ollama_chat", nil)
	if !res.IsError || !strings.Contains(res.TextOf(), "already has 1 calls running") {
		t.Fatalf("over the cap: %s", res.TextOf())
	}
	close(release)
	if res := <-done; res.IsError {
		t.Fatal(res.TextOf())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refusals) != 3 || refusals[0].Reason != ReasonScope || refusals[2].Reason != ReasonConcurrency || refusals[2].Principal != "reader" {
		t.Fatalf("refusals = %+v", refusals)
	}
}

func TestParseTokensErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, want string }{
		{`{"tokens":[]}`, "no tokens"},
		{`{}`, "no tokens"},
		{`{"tokens":[{"name":"a","token":"short"}]}`, "at least 16 characters"},
		{`{"tokens":[{"name":"a b","token":"0123456789abcdef"}]}`, "name must be"},
		{`{"tokens":[{"name":"a","token":"0123456789abcdef"},{"name":"a","token":"0123456789abcdeg"}]}`, "used twice"},
		{`{"tokens":[{"name":"a","token":"0123456789abcdef"},{"name":"b","token":"0123456789abcdef"}]}`, "the same token as a"},
		{`{"tokens":[{"name":"a","token":"sha256:abc"}]}`, "64 hex digits"},
		{`{"tokens":[{"name":"a","token":"0123456789abcdef","tools":["[x"]}]}`, "not a valid glob"},
		{`{"tokens":[{"name":"a","token":"0123456789abcdef","rate_limits":[{"per_minute":0}]}]}`, "per_minute must be"},
		{`{"tokens":[{"name":"a","token":"0123456789abcdef","colour":"red"}]}`, "unknown field"},
		{`{"tokens":[{"name":"a","token":"0123456789abcdef"}]`, "unexpected EOF"},
		{`{"tokens":[{"name":"a","token":"0123456789abcdef"}]} {}`, "trailing data"},
	} {
		_, err := ParseTokens([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.want)
		}
	}
}

func TestLookupPlainHashedAndShared(t *testing.T) {
	t.Parallel()
	// sha256 of "hashed-token-0123456789"
	set, err := ParseTokens([]byte(`{"tokens":[
		{"name":"plain","token":"plain-token-0123456789"},
		{"name":"hashed","token":"sha256:` + sum("hashed-token-0123456789") + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(set, "shared-token-0123456789")
	for tok, want := range map[string]string{
		"plain-token-0123456789":  "plain",
		"hashed-token-0123456789": "hashed",
		"shared-token-0123456789": SharedName,
	} {
		p, ok := s.Lookup(tok)
		if !ok || p.Name != want {
			t.Errorf("Lookup(%s) = %v %v, want %s", tok, p, ok, want)
		}
	}
	for _, bad := range []string{"", "plain-token-012345678", "sha256:" + sum("hashed-token-0123456789"), "PLAIN-TOKEN-0123456789"} {
		if p, ok := s.Lookup(bad); ok {
			t.Errorf("Lookup(%q) = %s", bad, p.Name)
		}
	}
	if sp, _ := s.Lookup("shared-token-0123456789"); !sp.Unlimited() {
		t.Error("the shared token is limited")
	}
}

func sum(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}

func TestReloadIsWholeOrNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"tokens":[{"name":"alice","token":"alice-token-0123456789"},{"name":"bob","token":"bob-token-0123456789ab"}]}`)
	s := NewStore(nil, "")
	if _, err := s.Reload(path); err != nil {
		t.Fatal(err)
	}
	// Half written, empty, or listing nobody: the tokens in use stay.
	for _, bad := range []string{`{"tokens":[{"name":"alice","token":"alice-tok`, ``, `{"tokens":[]}`} {
		write(bad)
		if _, err := s.Reload(path); err == nil {
			t.Fatalf("%q loaded", bad)
		}
		for _, tok := range []string{"alice-token-0123456789", "bob-token-0123456789ab"} {
			if _, ok := s.Lookup(tok); !ok {
				t.Fatalf("after a bad file %q, %s was locked out", bad, tok)
			}
		}
	}
	// A good file takes effect whole: bob removed, carol added.
	write(`{"tokens":[{"name":"alice","token":"alice-token-0123456789"},{"name":"carol","token":"carol-token-0123456789"}]}`)
	if _, err := s.Reload(path); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup("bob-token-0123456789ab"); ok {
		t.Fatal("bob still in")
	}
	if p, ok := s.Lookup("carol-token-0123456789"); !ok || p.Name != "carol" {
		t.Fatal("carol not in")
	}
}

func TestWatchReloadsOnceTheFileHoldsStill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(path, []byte(`{"tokens":[{"name":"alice","token":"alice-token-0123456789"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewStore(nil, "")
	if _, err := s.Reload(path); err != nil {
		t.Fatal(err)
	}
	loaded := make(chan *TokenSet, 4)
	failed := make(chan error, 4)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, path, 5*time.Millisecond, func(ts *TokenSet) { loaded <- ts }, func(err error) { failed <- err })
	}()
	defer func() { cancel(); <-done }()
	next := []byte(`{"tokens":[{"name":"bob","token":"bob-token-0123456789ab"}]}`)
	if err := os.WriteFile(path, next, 0o600); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for got := false; !got; {
		select {
		case ts := <-loaded:
			got = slices.Equal(ts.Names(), []string{"bob"})
		case err := <-failed:
			t.Fatal(err)
		case <-timeout:
			t.Fatal("the watcher did not reload a changed file")
		}
	}
	if _, ok := s.Lookup("alice-token-0123456789"); ok {
		t.Fatal("alice is still in after the reload")
	}
}

// TestViewOpensRouterSessions: a session served through a View is one of
// the router's, so the store, the ledger and the metrics see it.
func TestViewOpensRouterSessions(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	v := NewView(r, nil)
	defer v.Close()
	s := v.OpenSession("s1", "client-a")
	if got := r.SessionsOpen(); got != 1 {
		t.Fatalf("router sessions open = %d after View.OpenSession, want 1", got)
	}
	if s.Client() != "client-a" {
		t.Errorf("client = %q, want client-a", s.Client())
	}
	s.Close()
	if got := r.SessionsOpen(); got != 0 {
		t.Errorf("router sessions open = %d after Close, want 0", got)
	}
}
