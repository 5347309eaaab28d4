package mcp_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// listServer serves membrane's default tools (testdata) plus one whose
// description needs escaping, to tokens "ta" (user alice, sees all) and
// "tb" (user bob, sees the tools *bobSees allows), and returns the router
// and the MCP URL.
func listServer(t *testing.T, bobSees *atomic.Value) (*calls.Router, string) {
	t.Helper()
	r := defaultToolsRouter(t)
	mustAdd(t, r, calls.Call{
		Name: "zz_escapes", Kind: calls.KindTool, Description: `<b>&amp;</b> "quoted" \ é ☃ ` + "\u2028",
		InputSchema: []byte(`{"type":"object","properties":{"a":{"type":"string","description":"<&>"}}}`),
		Handler:     calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil }),
	})
	srv := mcp.NewServer(r, &mcp.ServerOptions{
		Scope: func(ctx context.Context, user string) (context.Context, func(string) bool) {
			if user == "bob" {
				prefix := bobSees.Load().(string)
				return ctx, func(name string) bool { return strings.HasPrefix(name, prefix) }
			}
			return ctx, nil
		},
	})
	users := map[string]string{"ta": "alice", "tb": "bob"}
	h, err := srv.HTTPHandler(&mcp.HTTPOptions{Verify: func(tok string) (string, bool) { u, ok := users[tok]; return u, ok }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	return r, ts.URL + "/mcp"
}

// rawPost sends one message and returns the status, the content type and
// the JSON-RPC message of the reply (an SSE reply's data line).
func listPost(t *testing.T, url, token, sid, version, body string) (int, string, []byte, http.Header) {
	t.Helper()
	hdr := map[string]string{}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	if sid != "" {
		hdr["Mcp-Session-Id"] = sid
	}
	if version != "" {
		hdr["Mcp-Protocol-Version"] = version
	}
	return postMsg(t, url, body, hdr)
}

// postMsg posts body with the headers hdr and returns the status, the
// content type and the JSON-RPC message of the reply (an SSE reply's data
// line).
func postMsg(t *testing.T, url, body string, hdr map[string]string) (int, string, []byte, http.Header) {
	t.Helper()
	resp := post(t, url, body, hdr)
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	ct := resp.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "text/event-stream") {
		var msg []byte
		for line := range strings.SplitSeq(string(data), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(d, `"jsonrpc"`) {
				msg = []byte(d)
			}
		}
		data = msg
	}
	return resp.StatusCode, ct, bytes.TrimSpace(data), resp.Header
}

// openSession initializes a session of protocol version at url.
func openSession(t *testing.T, url, token, version string) string {
	t.Helper()
	st, _, data, hdr := listPost(t, url, token, "", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	sid := hdr.Get("Mcp-Session-Id")
	if st != http.StatusOK || sid == "" {
		t.Fatalf("initialize %s: %d %s", version, st, data)
	}
	if st, _, data, _ := listPost(t, url, token, sid, version, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); st != http.StatusAccepted {
		t.Fatalf("initialized: %d %s", st, data)
	}
	return sid
}

// TestToolListCacheMatchesSDK: for every session protocol version and for
// tokens that see different tools, a tools/list answered from the cache
// (application/json) is byte for byte the message the SDK sent for the
// same request (the first one, text/event-stream), with ids of both kinds;
// a change to the router, and a change of what a token's scope shows,
// both reach the next list.
func TestToolListCacheMatchesSDK(t *testing.T) {
	t.Parallel()
	var bobSees atomic.Value
	bobSees.Store("s")
	r, url := listServer(t, &bobSees)
	lists := map[string][]byte{}
	for vi, version := range []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"} {
		for _, tok := range []string{"ta", "tb"} {
			sid := openSession(t, url, tok, version)
			// The first list of a key takes the SDK's path; later ones,
			// with either kind of id, are the cache's.
			ids := []string{`7`, `"id-<&>"`}
			if vi%2 == 1 {
				ids[0], ids[1] = ids[1], ids[0]
			}
			st, ct, sdkMsg, _ := listPost(t, url, tok, sid, version, `{"jsonrpc":"2.0","id":`+ids[0]+`,"method":"tools/list"}`)
			if st != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") || !bytes.Contains(sdkMsg, []byte(`"tools"`)) {
				t.Fatalf("%s %s: first list: %d %s %.200s", version, tok, st, ct, sdkMsg)
			}
			head := `{"jsonrpc":"2.0","id":` + ids[0] + `,`
			if !bytes.HasPrefix(sdkMsg, []byte(head)) {
				t.Fatalf("%s: the SDK's message starts %.60s", version, sdkMsg)
			}
			for _, id := range ids {
				want := append([]byte(`{"jsonrpc":"2.0","id":`+id+`,`), sdkMsg[len(head):]...)
				for _, params := range []string{``, `,"params":{}`, `,"params":{"_meta":{}}`} {
					st, ct, msg, _ := listPost(t, url, tok, sid, version, `{"jsonrpc":"2.0","id":`+id+`,"method":"tools/list"`+params+`}`)
					if st != http.StatusOK || ct != "application/json" {
						t.Fatalf("%s %s: cached list: %d %s %.200s", version, tok, st, ct, msg)
					}
					if !bytes.Equal(msg, want) {
						t.Fatalf("%s %s id %s params %q: cached list differs from the SDK's:\ncached %s\nsdk    %s", version, tok, id, params, msg, want)
					}
				}
			}
			lists[version+tok] = sdkMsg[len(head):]
		}
		if bytes.Equal(lists[version+"ta"], lists[version+"tb"]) || !bytes.Contains(lists[version+"tb"], []byte(`"name":"sh"`)) || bytes.Contains(lists[version+"tb"], []byte(`"name":"read_file"`)) {
			t.Fatalf("%s: alice and bob see the wrong lists:\n%.300s\n%.300s", version, lists[version+"ta"], lists[version+"tb"])
		}
		if !bytes.Contains(lists[version+"ta"], []byte(`"name":"read_file"`)) {
			t.Fatalf("%s: alice's list lacks read_file: %.300s", version, lists[version+"ta"])
		}
	}

	// A change to the router reaches the next list of a warm session.
	sid := openSession(t, url, "ta", "2025-11-25")
	list := func(tok, sid string) (string, []byte) {
		t.Helper()
		st, ct, msg, _ := listPost(t, url, tok, sid, "2025-11-25", `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
		if st != http.StatusOK {
			t.Fatalf("list: %d %s", st, msg)
		}
		return ct, msg
	}
	list("ta", sid)
	if ct, _ := list("ta", sid); ct != "application/json" {
		t.Fatalf("warm list came as %s", ct)
	}
	mustAdd(t, r, calls.Call{Name: "added_later", Kind: calls.KindTool, InputSchema: []byte(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil })})
	for i := range 2 {
		if _, msg := list("ta", sid); !bytes.Contains(msg, []byte(`"name":"added_later"`)) {
			t.Fatalf("list %d after the change lacks the new tool: %.300s", i, msg)
		}
	}
	r.Remove("added_later")
	for i := range 2 {
		if _, msg := list("ta", sid); bytes.Contains(msg, []byte(`"name":"added_later"`)) {
			t.Fatalf("list %d after the removal still has the tool", i)
		}
	}

	// A change of what bob's scope shows, with no change to the router.
	bsid := openSession(t, url, "tb", "2025-11-25")
	list("tb", bsid)
	if _, msg := list("tb", bsid); !bytes.Contains(msg, []byte(`"name":"sh"`)) || bytes.Contains(msg, []byte(`"name":"read_file"`)) {
		t.Fatalf("bob's warm list: %.300s", msg)
	}
	bobSees.Store("read_")
	for i := range 2 {
		if _, msg := list("tb", bsid); bytes.Contains(msg, []byte(`"name":"sh"`)) || !bytes.Contains(msg, []byte(`"name":"read_file"`)) {
			t.Fatalf("bob's list %d after his scope changed: %.300s", i, msg)
		}
	}
}

// TestToolListCacheKeepsSessionChecks: a warm cache answers no request the
// SDK would refuse: another token on a session (403), an unknown session
// (404), no token (401), a list before initialize finished... each beside
// the same request made right (200).
func TestToolListCacheKeepsSessionChecks(t *testing.T) {
	t.Parallel()
	var bobSees atomic.Value
	bobSees.Store("s")
	_, url := listServer(t, &bobSees)
	const body = `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`
	sid := openSession(t, url, "ta", "2025-11-25")
	for range 2 { // warm
		if st, _, msg, _ := listPost(t, url, "ta", sid, "2025-11-25", body); st != http.StatusOK {
			t.Fatalf("alice on her session: %d %s", st, msg)
		}
	}
	if st, ct, _, _ := listPost(t, url, "ta", sid, "2025-11-25", body); st != http.StatusOK || ct != "application/json" {
		t.Fatalf("control: alice's warm list: %d %s", st, ct)
	}
	for _, tc := range []struct {
		name, tok, sid, version string
		want                    int
	}{
		{"bob on alice's session", "tb", sid, "2025-11-25", http.StatusForbidden},
		{"unknown session", "ta", "no-such-session", "2025-11-25", http.StatusNotFound},
		{"no token", "", sid, "2025-11-25", http.StatusUnauthorized},
		{"wrong token", "tx", sid, "2025-11-25", http.StatusUnauthorized},
		{"unsupported version header", "ta", sid, "1999-01-01", http.StatusBadRequest},
	} {
		if st, ct, msg, _ := listPost(t, url, tc.tok, tc.sid, tc.version, body); st != tc.want || bytes.Contains(msg, []byte(`"tools"`)) {
			t.Errorf("%s: %d %s %.200s; want %d and no list", tc.name, st, ct, msg, tc.want)
		}
	}
	// A session that has sent initialize but whose initialize failed has
	// no list either; one initialized right gets it.
	st, _, _, hdr := listPost(t, url, "ta", "", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if st != http.StatusOK {
		t.Fatal(st)
	}
	if st, _, msg, _ := listPost(t, url, "ta", hdr.Get("Mcp-Session-Id"), "2025-11-25", body); st != http.StatusOK || !bytes.Contains(msg, []byte(`"tools"`)) {
		t.Errorf("control: a list right after initialize: %d %.200s", st, msg)
	}
	// A session deleted is gone for the cache too.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, url, nil)
	req.Header.Set("Authorization", "Bearer ta")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	pollUntil(t, func() bool {
		st, _, _, _ := listPost(t, url, "ta", sid, "2025-11-25", body)
		return st == http.StatusNotFound
	}, "a deleted session still gets its list")
	// A real go-sdk client lists through the cache like any other.
	cs := mcptest.ConnectHTTP(t, url, "ta", nil)
	for i := range 3 {
		res, err := cs.ListTools(t.Context(), nil)
		if err != nil || len(res.Tools) < 9 {
			t.Fatalf("go-sdk client list %d: %v %v", i, res, err)
		}
	}
}

// pollUntil polls cond until it holds, failing with msg after a bound.
func pollUntil(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal(msg)
}

// TestToolListCacheUnderChange: lists made while tools come and go are
// each whole, and once the changes stop, the next list shows the final
// set (for -race: the cache, its snapshots and the mirror together).
func TestToolListCacheUnderChange(t *testing.T) {
	t.Parallel()
	var bobSees atomic.Value
	bobSees.Store("s")
	r, url := listServer(t, &bobSees)
	sid := openSession(t, url, "ta", "2025-11-25")
	flip := calls.Call{Name: "flip", Kind: calls.KindTool, InputSchema: []byte(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil })}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 41 {
			if i%2 == 1 {
				r.Remove("flip")
			} else if err := r.Add(flip); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	const body = `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`
	check := func() []byte {
		st, _, msg, _ := listPost(t, url, "ta", sid, "2025-11-25", body)
		if st != http.StatusOK || !bytes.HasSuffix(msg, []byte(`]}}`)) || !bytes.Contains(msg, []byte(`"name":"zz_escapes"`)) {
			t.Fatalf("list during changes: %d %.200s", st, msg)
		}
		return msg
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			check()
		}
	}
	for range 3 {
		if msg := check(); !bytes.Contains(msg, []byte(`"name":"flip"`)) {
			t.Fatalf("after the changes the list lacks flip: %.300s", msg)
		}
	}
}

// TestToolListCacheKeepsIdleSessionAlive: a client that only lists tools,
// answered from the cache, still counts as active for the SDK's idle
// timer (the cache sends one list in every quarter of the idle timeout
// through the SDK), so its session outlives the timeout; a session that
// sends nothing is closed by it (the control).
func TestToolListCacheKeepsIdleSessionAlive(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	srv := mcp.NewServer(defaultToolsRouter(t), nil)
	h, err := srv.HTTPHandler(&mcp.HTTPOptions{SessionIdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	url, version := ts.URL+"/mcp", "2025-11-25"
	busy, quiet := openSession(t, url, "", version), openSession(t, url, "", version)
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	for end := time.Now().Add(3 * idle); time.Now().Before(end); time.Sleep(idle / 20) {
		if st, _, data, _ := listPost(t, url, "", busy, version, list); st != http.StatusOK {
			t.Fatalf("a session listing every %v was dropped: %d %s", idle/20, st, data)
		}
	}
	if st, _, data, _ := listPost(t, url, "", quiet, version, list); st != http.StatusNotFound {
		t.Errorf("a session quiet for %v answered %d %s; want 404 (the idle timer works)", 3*idle, st, data)
	}
}
