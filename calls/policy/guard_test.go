package policy_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/policy"
)

// echoRouter serves one call, say, that answers its "text" argument,
// behind mw.
func echoRouter(t *testing.T, mw []calls.Middleware, answer *string) *calls.Router {
	t.Helper()
	r := calls.NewRouter(&calls.RouterOptions{Middleware: mw})
	_, err := r.Sync("t", []calls.Call{{Name: "say", Kind: calls.KindTool, InputSchema: json.RawMessage(`{"type":"object"}`), Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) {
		return calls.Text(*answer), nil
	})}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The guard scrubs the configured secrets and the plain tokens in use; a
// new token set moves the scrubbing to its tokens.
func TestGuardScrubsTokensInUse(t *testing.T) {
	t.Parallel()
	set, err := policy.ParseTokens([]byte(`{"tokens":[{"name":"a","token":"first-token-0123456789"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := policy.NewGuard(policy.GuardOptions{Tokens: set, Scrub: true, Secrets: []string{"configured-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if g.Tokens == nil || g.Scrubbing == nil || len(g.Middleware()) != 2 {
		t.Fatalf("guard = %+v with %d middleware", g, len(g.Middleware()))
	}
	answer := "first-token-0123456789 configured-secret second-token-0123456789"
	r := echoRouter(t, g.Middleware(), &answer)
	say := func() string {
		res, err := r.Call(t.Context(), "say", nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.TextOf()
	}
	if got := say(); strings.Contains(got, "first-token") || strings.Contains(got, "configured-secret") || !strings.Contains(got, "second-token-0123456789") {
		t.Errorf("before the reload: %q", got)
	}
	next, err := policy.ParseTokens([]byte(`{"tokens":[{"name":"b","token":"second-token-0123456789"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	g.Tokens.Replace(next)
	g.Use(next)
	if got := say(); strings.Contains(got, "second-token") || strings.Contains(got, "configured-secret") || !strings.Contains(got, "first-token-0123456789") {
		t.Errorf("after the reload: %q", got)
	}
}

// The zero options guard nothing; limits alone bring the policy in; a bad
// limit is an error.
func TestGuardMiddleware(t *testing.T) {
	t.Parallel()
	g, err := policy.NewGuard(policy.GuardOptions{})
	if err != nil || g.Tokens != nil || g.Scrubbing != nil || len(g.Middleware()) != 0 {
		t.Errorf("zero options: %+v, %v", g, err)
	}
	answer := "ok"
	r := echoRouter(t, g.Middleware(), &answer)
	if res, err := r.Call(t.Context(), "say", nil); err != nil || res.TextOf() != "ok" {
		t.Errorf("unguarded call: %v %v", res, err)
	}
	g, err = policy.NewGuard(policy.GuardOptions{Limits: []policy.Limit{{Tools: "say", PerMinute: 1, Burst: 1, PerTool: true}}})
	if err != nil || len(g.Middleware()) != 1 {
		t.Fatalf("limits: %d middleware, %v", len(g.Middleware()), err)
	}
	r = echoRouter(t, g.Middleware(), &answer)
	first, _ := r.Call(t.Context(), "say", nil)
	second, _ := r.Call(t.Context(), "say", nil)
	if first == nil || first.IsError || second == nil || !second.IsError {
		t.Errorf("a limit of 1/min: first %+v, second %+v", first, second)
	}
	if _, err := policy.NewGuard(policy.GuardOptions{Limits: []policy.Limit{{Tools: "say"}}}); err == nil {
		t.Error("a limit of no rate was taken")
	}
}
