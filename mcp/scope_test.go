package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

const (
	aliceToken  = "alice-token-0123456789"
	bobToken    = "bob-token-0123456789ab"
	carolToken  = "carol-token-0123456789"
	sharedToken = "shared-token-0123456789"
)

// scopedServer serves noop, echo_a and sh over real HTTP behind scoped
// tokens read from a file, and returns the file, the store and the URL.
func scopedServer(t *testing.T) (string, *policy.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	writeTokens(t, path, `{"tokens":[
		{"name":"alice","token":"`+aliceToken+`","tools":["noop","echo_*"]},
		{"name":"bob","token":"`+bobToken+`","tools":["sh"]}]}`)
	store := policy.NewStore(nil, sharedToken)
	if _, err := store.Reload(path); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := calls.NewRouter(&calls.RouterOptions{Middleware: []calls.Middleware{pol.Middleware()}})
	for _, name := range []string{"noop", "echo_a", "sh"} {
		if err := r.Add(calls.Call{
			Name: name, Kind: calls.KindTool, InputSchema: json.RawMessage(`{"type":"object"}`),
			Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
				who := "nobody"
				if p := policy.PrincipalFrom(ctx); p != nil {
					who = p.Name
				}
				return calls.Text("ran " + req.Call.Name + " " + who), nil
			}),
		}); err != nil {
			t.Fatal(err)
		}
	}
	srv := mcp.NewServer(r, &mcp.ServerOptions{Scope: store.Scope})
	h, err := srv.HTTPHandler(&mcp.HTTPOptions{Verify: store.Verify})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return path, store, ts.URL + mcp.DefaultPath
}

func writeTokens(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestScopedTokensOverHTTP(t *testing.T) {
	t.Parallel()
	path, store, url := scopedServer(t)
	alice := mcptest.ConnectHTTP(t, url, aliceToken, nil)
	bob := mcptest.ConnectHTTP(t, url, bobToken, nil)
	shared := mcptest.ConnectHTTP(t, url, sharedToken, nil)

	if got := toolNames(t, alice); !slices.Equal(got, []string{"echo_a", "noop"}) {
		t.Fatalf("alice lists %v", got)
	}
	if got := toolNames(t, bob); !slices.Equal(got, []string{"sh"}) {
		t.Fatalf("bob lists %v", got)
	}
	if got := toolNames(t, shared); !slices.Equal(got, []string{"echo_a", "noop", "sh"}) {
		t.Fatalf("the shared token lists %v", got)
	}

	// A call outside the scope is refused; the one beside it, inside, runs.
	if res, text := mcptest.CallText(t, alice, "sh", nil); !res.IsError || !strings.Contains(text, `unknown tool "sh"`) {
		t.Fatalf("alice sh: %s", text)
	}
	if res, text := mcptest.CallText(t, alice, "noop", nil); res.IsError || text != "ran noop alice" {
		t.Fatalf("alice noop: %s", text)
	}
	if res, text := mcptest.CallText(t, bob, "noop", nil); !res.IsError {
		t.Fatalf("bob noop: %s", text)
	}

	// A reload mid-session: bob removed, carol added, alice given sh.
	writeTokens(t, path, `{"tokens":[
		{"name":"alice","token":"`+aliceToken+`","tools":["noop","sh"]},
		{"name":"carol","token":"`+carolToken+`"}]}`)
	if _, err := store.Reload(path); err != nil {
		t.Fatal(err)
	}
	if got := toolNames(t, alice); !slices.Equal(got, []string{"noop", "sh"}) {
		t.Fatalf("alice after the reload lists %v", got)
	}
	if res, text := mcptest.CallText(t, alice, "sh", nil); res.IsError || text != "ran sh alice" {
		t.Fatalf("alice sh after the reload: %s", text)
	}
	if _, err := bob.ListTools(t.Context(), nil); err == nil {
		t.Fatal("bob's removed token still works in his open session")
	}
	carol := mcptest.ConnectHTTP(t, url, carolToken, nil)
	if got := toolNames(t, carol); len(got) != 3 {
		t.Fatalf("carol lists %v", got)
	}

	// A half-written file locks nobody out.
	writeTokens(t, path, `{"tokens":[{"name":"alice","tok`)
	if _, err := store.Reload(path); err == nil {
		t.Fatal("a half-written file loaded")
	}
	if got := toolNames(t, carol); len(got) != 3 {
		t.Fatalf("carol after a bad file lists %v", got)
	}
}

// TestSessionBoundToItsToken pins go-sdk behaviour we rely on: a session
// opened with one token cannot be used with another (the SDK compares the
// user of the request's token info with the session's).
func TestSessionBoundToItsToken(t *testing.T) {
	t.Parallel()
	_, _, url := scopedServer(t)
	resp := post(t, url, initBody, map[string]string{"Authorization": "Bearer " + aliceToken})
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	for token, want := range map[string]int{aliceToken: http.StatusOK, bobToken: http.StatusForbidden} {
		resp := post(t, url, list, map[string]string{"Authorization": "Bearer " + token, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"})
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("alice's session with %s: %d, want %d", token[:5], resp.StatusCode, want)
		}
	}
}

// TestScopedTokenMaxSessions: a scoped token's max_sessions bounds its own
// sessions (429 past it), and another token still gets sessions.
func TestScopedTokenMaxSessions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	writeTokens(t, path, `{"tokens":[
		{"name":"alice","token":"`+aliceToken+`","max_sessions":2},
		{"name":"bob","token":"`+bobToken+`"}]}`)
	store := policy.NewStore(nil, "")
	if _, err := store.Reload(path); err != nil {
		t.Fatal(err)
	}
	sessionsFor := func(user string) int {
		if p, ok := store.Principal(user); ok {
			return p.MaxSessions
		}
		return 0
	}
	_, base := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{Verify: store.Verify, SessionsFor: sessionsFor})
	url := base + "/mcp"
	alice := map[string]string{"Authorization": "Bearer " + aliceToken}
	for i := range 2 {
		if resp, sid := initialize(t, url, alice); resp.StatusCode != 200 || sid == "" {
			t.Fatalf("alice's session %d of 2: status %d", i+1, resp.StatusCode)
		}
	}
	resp, sid := initialize(t, url, alice)
	if m := readSSE(t, resp); resp.StatusCode != http.StatusTooManyRequests || sid != "" || errCode(m) != mcp.CodeTooManySessions {
		t.Fatalf("alice's third session: %d %v, want 429 and code %d", resp.StatusCode, m, mcp.CodeTooManySessions)
	}
	// Allow control: bob's bound is the server's per-token default.
	for i := range 3 {
		if resp, sid := initialize(t, url, map[string]string{"Authorization": "Bearer " + bobToken}); resp.StatusCode != 200 || sid == "" {
			t.Fatalf("bob's session %d: status %d", i+1, resp.StatusCode)
		}
	}
}
