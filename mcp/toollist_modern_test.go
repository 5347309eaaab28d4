package mcp_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// modernParams are the params of a sessionless tools/list from a client
// called name, with extra members of params before the _meta.
func modernParams(name, extra string) string {
	return `{` + extra + `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"` + name + `","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}`
}

// modernList posts a sessionless tools/list with id and params, with
// token (none if "") and the protocol's headers, changed by hdr (a ""
// value removes the header).
func modernList(t *testing.T, url, token, id, params string, hdr map[string]string) (int, string, []byte) {
	t.Helper()
	h := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	for k, v := range hdr {
		h[k] = v
	}
	for k, v := range h {
		if v == "" {
			delete(h, k)
		}
	}
	st, ct, msg, _ := postMsg(t, url, `{"jsonrpc":"2.0","id":`+id+`,"method":"tools/list","params":`+params+`}`, h)
	return st, ct, msg
}

// TestModernToolListCacheMatchesSDK: a sessionless (2026-07-28) tools/list
// is answered from the cache (application/json) only once the SDK has
// answered the very same params, and then byte for byte as the SDK did
// (text/event-stream), with ids of both kinds, for tokens that see
// different tools; other params (another client) take the SDK's path once
// and get the same list; a change to the router, and to what a token's
// scope shows, both reach the next list.
func TestModernToolListCacheMatchesSDK(t *testing.T) {
	t.Parallel()
	var bobSees atomic.Value
	bobSees.Store("s")
	r, url := listServer(t, &bobSees)
	lists := map[string][]byte{}
	for _, tok := range []string{"ta", "tb"} {
		var first []byte
		for _, client := range []string{"one", "two"} {
			params := modernParams(tok+"-"+client, "")
			st, ct, sdkMsg := modernList(t, url, tok, `7`, params, nil)
			if st != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") || !bytes.Contains(sdkMsg, []byte(`"tools"`)) {
				t.Fatalf("%s %s: first list: %d %s %.200s", tok, client, st, ct, sdkMsg)
			}
			head := `{"jsonrpc":"2.0","id":7,`
			if !bytes.HasPrefix(sdkMsg, []byte(head)) || !bytes.Contains(sdkMsg, []byte(`"ttlMs":0`)) {
				t.Fatalf("%s: the SDK's message is %.300s", tok, sdkMsg)
			}
			if first == nil {
				first = sdkMsg
			} else if !bytes.Equal(first, sdkMsg) {
				t.Fatalf("%s: the SDK lists differently for another client:\n%s\n%s", tok, first, sdkMsg)
			}
			for _, id := range []string{`"id-<&>"`, `8`} {
				want := append([]byte(`{"jsonrpc":"2.0","id":`+id+`,`), sdkMsg[len(head):]...)
				st, ct, msg := modernList(t, url, tok, id, params, nil)
				if st != http.StatusOK || ct != "application/json" {
					t.Fatalf("%s %s: cached list: %d %s %.200s", tok, client, st, ct, msg)
				}
				if !bytes.Equal(msg, want) {
					i := 0
					for i < len(msg) && i < len(want) && msg[i] == want[i] {
						i++
					}
					t.Fatalf("%s %s id %s: cached list differs from the SDK's at byte %d:\ncached %.200s\nsdk    %.200s", tok, client, id, i, msg[max(0, i-100):], want[max(0, i-100):])
				}
			}
		}
		lists[tok] = first
	}
	if !bytes.Contains(lists["ta"], []byte(`"name":"read_file"`)) || !bytes.Contains(lists["tb"], []byte(`"name":"sh"`)) || bytes.Contains(lists["tb"], []byte(`"name":"read_file"`)) {
		t.Fatalf("alice and bob see the wrong lists:\n%.300s\n%.300s", lists["ta"], lists["tb"])
	}

	params := modernParams("ta-one", "")
	list := func(tok string) (string, []byte) {
		t.Helper()
		st, ct, msg := modernList(t, url, tok, `9`, params, nil)
		if st != http.StatusOK {
			t.Fatalf("list: %d %s", st, msg)
		}
		return ct, msg
	}
	if ct, _ := list("ta"); ct != "application/json" {
		t.Fatalf("warm list came as %s", ct)
	}
	mustAdd(t, r, calls.Call{Name: "added_later", Kind: calls.KindTool, InputSchema: []byte(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil })})
	for i, wantCT := range []string{"text/event-stream", "application/json"} {
		if ct, msg := list("ta"); !bytes.Contains(msg, []byte(`"name":"added_later"`)) || !strings.HasPrefix(ct, wantCT) {
			t.Fatalf("list %d after the change (%s) lacks the new tool: %.300s", i, ct, msg)
		}
	}
	r.Remove("added_later")
	for i := range 2 {
		if _, msg := list("ta"); bytes.Contains(msg, []byte(`"name":"added_later"`)) {
			t.Fatalf("list %d after the removal still has the tool", i)
		}
	}
	bobSees.Store("read_")
	for i := range 2 {
		if _, msg := list("tb"); bytes.Contains(msg, []byte(`"name":"sh"`)) || !bytes.Contains(msg, []byte(`"name":"read_file"`)) {
			t.Fatalf("bob's list %d after his scope changed: %.300s", i, msg)
		}
	}

	// A real go-sdk client of the sessionless protocol lists through the
	// cache like any other.
	cs := mcptest.ConnectHTTP(t, url, "ta", nil)
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("the go-sdk client speaks %s", v)
	}
	for i := range 3 {
		res, err := cs.ListTools(t.Context(), nil)
		if err != nil || len(res.Tools) < 9 {
			t.Fatalf("go-sdk client list %d: %v %v", i, res, err)
		}
	}
}

// TestModernToolListCacheKeepsChecks: with the cache warm for a request,
// the same list is refused as the SDK and the HTTP layer refuse it when
// the token, Host, Origin, body size, headers or _meta are wrong, or when
// it asks for a later page; each case beside the warm control (200 from
// the cache), and a request the SDK refused is refused again (nothing of
// an error is kept).
func TestModernToolListCacheKeepsChecks(t *testing.T) {
	t.Parallel()
	var bobSees atomic.Value
	bobSees.Store("s")
	_, url := listServer(t, &bobSees)
	params := modernParams("one", "")
	control := func(when string) {
		t.Helper()
		if st, ct, msg := modernList(t, url, "ta", `3`, params, nil); st != http.StatusOK || ct != "application/json" || !bytes.Contains(msg, []byte(`"name":"read_file"`)) {
			t.Fatalf("control %s: alice's warm list: %d %s %.200s", when, st, ct, msg)
		}
	}
	modernList(t, url, "ta", `3`, params, nil) // warm
	control("at the start")
	big := strings.Repeat(" ", 5<<20)
	for _, tc := range []struct {
		name, tok, params string
		hdr               map[string]string
		want              int
	}{
		{"no token", "", params, nil, http.StatusUnauthorized},
		{"wrong token", "tx", params, nil, http.StatusUnauthorized},
		{"foreign Host", "ta", params, map[string]string{"Host": "evil.example:80"}, http.StatusForbidden},
		{"foreign Origin", "ta", params, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"body over the limit", "ta", params[:len(params)-1] + `,"pad":"` + big + `"}`, nil, http.StatusRequestEntityTooLarge},
		{"no Mcp-Method", "ta", params, map[string]string{"Mcp-Method": ""}, http.StatusBadRequest},
		{"Mcp-Method of another method", "ta", params, map[string]string{"Mcp-Method": "tools/call"}, http.StatusBadRequest},
		{"header version unlike _meta's", "ta", params, map[string]string{"Mcp-Protocol-Version": "2099-01-01"}, http.StatusBadRequest},
		{"no clientCapabilities", "ta", strings.Replace(params, `,"io.modelcontextprotocol/clientCapabilities":{}`, ``, 1), nil, http.StatusBadRequest},
		{"clientInfo not an object", "ta", strings.Replace(params, `{"name":"one","version":"1"}`, `5`, 1), nil, http.StatusBadRequest},
		{"a later page", "ta", modernParams("one", `"cursor":"bm9wZQ",`), nil, http.StatusBadRequest},
	} {
		for i := range 2 {
			st, ct, msg := modernList(t, url, tc.tok, `3`, tc.params, tc.hdr)
			if st != tc.want || bytes.Contains(msg, []byte(`"tools"`)) || ct == "application/json" && st == http.StatusOK {
				t.Errorf("%s (%d): %d %s %.200s; want %d and no list from the cache", tc.name, i, st, ct, msg, tc.want)
			}
		}
		control("after " + tc.name)
	}
	// Bob's token on alice's warm params gets his own list.
	if st, _, msg := modernList(t, url, "tb", `3`, params, nil); st != http.StatusOK || bytes.Contains(msg, []byte(`"name":"read_file"`)) || !bytes.Contains(msg, []byte(`"name":"sh"`)) {
		t.Errorf("bob with alice's params: %d %.200s", st, msg)
	}
}
