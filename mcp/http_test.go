package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`

// serveHTTP starts membrane's HTTP handler for r on a loopback port.
func serveHTTP(t *testing.T, r *calls.Router, o *mcp.HTTPOptions) (*mcp.Server, string) {
	t.Helper()
	srv := mcp.NewServer(r, nil)
	h, err := srv.HTTPHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return srv, ts.URL
}

func post(t *testing.T, url, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func routerWithEcho(t testing.TB) *calls.Router { return mcptest.EchoRouter(t) }

func TestHTTPHostCheck(t *testing.T) {
	t.Parallel()
	_, url := serveHTTP(t, routerWithEcho(t), nil)
	for _, host := range []string{"evil.example", "evil.example:8765", "127.0.0.1.nip.io"} {
		resp := post(t, url+"/mcp", initBody, map[string]string{"Host": host})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("Host %s: status %d, want 403", host, resp.StatusCode)
		}
	}
	for _, host := range []string{"localhost:1", "127.0.0.1", "[::1]:8765"} {
		resp := post(t, url+"/mcp", initBody, map[string]string{"Host": host})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("Host %s: status %d, want 200", host, resp.StatusCode)
		}
	}
	// Health endpoints too: a rebinding page must not read them.
	req, _ := http.NewRequest(http.MethodGet, url+"/readyz", nil)
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("/readyz with evil Host: %d, want 403", resp.StatusCode)
	}
}

func TestHTTPAllowedHosts(t *testing.T) {
	t.Parallel()
	_, url := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{AllowedHosts: []string{"membrane.internal"}})
	if resp := post(t, url+"/mcp", initBody, map[string]string{"Host": "membrane.internal:443"}); resp.StatusCode != http.StatusOK {
		t.Errorf("allowed host: %d, want 200", resp.StatusCode)
	}
	if resp := post(t, url+"/mcp", initBody, map[string]string{"Host": "other.internal"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("other host: %d, want 403", resp.StatusCode)
	}
}

func TestHTTPOriginCheck(t *testing.T) {
	t.Parallel()
	_, url := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{AllowedOrigins: []string{"https://app.example.com"}})
	for _, origin := range []string{"https://evil.example", "null", "http://localhost:9999"} {
		if resp := post(t, url+"/mcp", initBody, map[string]string{"Origin": origin}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s: %d, want 403", origin, resp.StatusCode)
		}
	}
	if resp := post(t, url+"/mcp", initBody, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site fetch without Origin: %d, want 403", resp.StatusCode)
	}
	// Same origin, and no Origin at all (CLI clients), pass.
	if resp := post(t, url+"/mcp", initBody, map[string]string{"Origin": url}); resp.StatusCode != http.StatusOK {
		t.Errorf("same origin: %d, want 200", resp.StatusCode)
	}
	resp := post(t, url+"/mcp", initBody, map[string]string{"Origin": "https://app.example.com"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("allowed origin: %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// A CORS preflight from the allowed origin needs no token.
	req, _ := http.NewRequest(http.MethodOptions, url+"/mcp", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != http.StatusNoContent || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Mcp-Session-Id") {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
}

func TestHTTPToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token-for-tests"
	_, url := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{Token: token})
	for name, auth := range map[string]string{
		"missing":    "",
		"wrong":      "Bearer nope",
		"prefix":     "Bearer " + token[:5],
		"longer":     "Bearer " + token + "x",
		"basic":      "Basic " + token,
		"empty":      "Bearer ",
		"raw secret": token,
	} {
		hdr := map[string]string{}
		if auth != "" {
			hdr["Authorization"] = auth
		}
		resp := post(t, url+"/mcp", initBody, hdr)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s token: %d, want 401", name, resp.StatusCode)
		}
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s token: WWW-Authenticate = %q", name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if resp := post(t, url+"/mcp", initBody, map[string]string{"Authorization": "bearer " + token}); resp.StatusCode != http.StatusOK {
		t.Errorf("right token: %d, want 200", resp.StatusCode)
	}
	// A real client with the token lists and calls.
	cs := mcptest.ConnectHTTP(t, url+"/mcp", token, nil)
	if _, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "authorized"}); text != "authorized" {
		t.Errorf("echo = %q", text)
	}
	// Health endpoints need no token and show nothing secret.
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.Contains(string(body), token) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestHTTPBodyLimit(t *testing.T) {
	t.Parallel()
	_, url := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{MaxBodyBytes: 1 << 10})
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 2<<10) + `"}}`
	if resp := post(t, url+"/mcp", big, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body with length: %d, want 413", resp.StatusCode)
	}
	// Without a Content-Length (chunked), the limit applies while reading.
	req, _ := http.NewRequest(http.MethodPost, url+"/mcp", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked body: %d, want 413", resp.StatusCode)
	}
	if resp := post(t, url+"/mcp", initBody, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("small body after big ones: %d, want 200", resp.StatusCode)
	}
}

func TestCheckListen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8765", "", true},
		{"localhost:8765", "", true},
		{"[::1]:8765", "", true},
		{"127.0.0.2:1", "", true},
		{"0.0.0.0:8765", "", false},
		{":8765", "", false},
		{"[::]:8765", "", false},
		{"192.0.2.1:8765", "", false},
		{"example.com:8765", "", false},
		{"0.0.0.0:8765", "tok", true},
		{"no-port", "", false},
	} {
		err := mcp.CheckListen(tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, %q) = %v, want ok=%v", tc.addr, tc.token, err, tc.ok)
		}
		// A refusal is typed, for the program to name its token settings.
		var nt *mcp.NoTokenError
		if err != nil && tc.addr != "no-port" && (!errors.As(err, &nt) || nt.Addr != tc.addr || !strings.Contains(err.Error(), "set a token")) {
			t.Errorf("error %q (%T) is not a NoTokenError for %s", err, err, tc.addr)
		}
		if tc.addr == "no-port" && errors.As(err, &nt) {
			t.Errorf("a malformed address is not a missing token: %v", err)
		}
	}
}

func TestHTTPReadyz(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	backends := []mcp.BackendStatus{
		{URL: "http://user:pw@10.0.0.1:11434/?key=abc", Up: false, Err: "connection refused"},
		{URL: "http://127.0.0.1:11434", Up: true, Models: 3},
	}
	srv, url := serveHTTP(t, r, &mcp.HTTPOptions{Backends: func() []mcp.BackendStatus { return backends }})
	get := func() (int, map[string]any, string) {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("readyz body %q: %v", body, err)
		}
		return resp.StatusCode, v, string(body)
	}
	if code, v, _ := get(); code != http.StatusServiceUnavailable || v["tools"] != 0.0 {
		t.Errorf("empty router: %d %v, want 503", code, v)
	}
	mustAdd(t, r, echoCall("echo"))
	code, v, body := get()
	if code != http.StatusOK || v["status"] != "ready" || v["tools"] != 1.0 {
		t.Errorf("loaded: %d %s", code, body)
	}
	if strings.Contains(body, "pw") || strings.Contains(body, "abc") {
		t.Errorf("readyz leaks credentials: %s", body)
	}
	if !strings.Contains(body, `"up":true`) || !strings.Contains(body, "connection refused") {
		t.Errorf("readyz hides backend state: %s", body)
	}
	srv.Close()
	if code, _, _ := get(); code != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d, want 503", code)
	}
	resp, err := http.Get(url + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %d", resp.StatusCode)
	}
}

func TestHTTPOptionsErrors(t *testing.T) {
	t.Parallel()
	srv := mcp.NewServer(calls.NewRouter(nil), nil)
	defer srv.Close()
	for _, o := range []*mcp.HTTPOptions{
		{Path: "mcp"},
		{Path: "/healthz"},
		{AllowedOrigins: []string{"app.example.com"}},
		{AllowedOrigins: []string{"https://app.example.com/path"}},
		{AllowedHosts: []string{" "}},
	} {
		if _, err := srv.HTTPHandler(o); err == nil {
			t.Errorf("HTTPHandler(%+v) accepted a bad option", o)
		}
	}
}

// TestHTTPListChanged checks that a connected HTTP client hears about added
// and removed calls.
func TestHTTPListChanged(t *testing.T) {
	t.Parallel()
	r := routerWithEcho(t)
	_, url := serveHTTP(t, r, nil)
	checkListChanged(t, r, "HTTP", func(o *sdk.ClientOptions) *sdk.ClientSession { return mcptest.ConnectHTTP(t, url+"/mcp", "", o) })
}

func TestHTTPStateless(t *testing.T) {
	t.Parallel()
	r := routerWithEcho(t)
	_, url := serveHTTP(t, r, &mcp.HTTPOptions{Stateless: true})
	resp := post(t, url+"/mcp", initBody, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") != "" {
		t.Errorf("stateless initialize: %d, session id %q", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"))
	}
	cs := mcptest.ConnectHTTP(t, url+"/mcp", "", nil)
	for i := 0; i < 3; i++ {
		if _, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "hi"}); text != "hi" {
			t.Errorf("echo = %q", text)
		}
	}
}

// TestHTTPSessionIdle checks that an idle stateful session is closed, and
// its calls.Session with it.
func TestHTTPSessionIdle(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	closed := make(chan struct{})
	mustAdd(t, r, call("touch", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		req.Session.OnClose(func() { close(closed) })
		return calls.Text("ok"), nil
	}))
	_, url := serveHTTP(t, r, &mcp.HTTPOptions{SessionIdleTimeout: 200 * time.Millisecond})
	cs := mcptest.ConnectHTTP(t, url+"/mcp", "", nil)
	mcptest.CallText(t, cs, "touch", nil)
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("idle session was never closed")
	}
}

// TestHTTPCancel checks that cancelling a call over HTTP cancels the
// handler.
func TestHTTPCancel(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	started := make(chan struct{})
	stopped := make(chan struct{})
	mustAdd(t, r, call("hang", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		close(started)
		<-ctx.Done()
		close(stopped)
		return nil, ctx.Err()
	}))
	_, url := serveHTTP(t, r, nil)
	cs := mcptest.ConnectHTTP(t, url+"/mcp", "", nil)
	ctx, cancel := context.WithCancel(t.Context())
	go cs.CallTool(ctx, &sdk.CallToolParams{Name: "hang"})
	<-started
	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling over HTTP did not cancel the handler")
	}
}

// FuzzHTTPBody posts arbitrary bodies, with and without a session, to the
// MCP endpoint: no panic, no 5xx, and every error body is JSON.
func FuzzHTTPBody(f *testing.F) {
	for _, s := range []string{
		initBody, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`,
		`[]`, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, `{`, `null`, `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":{"a":1},"method":"x"}`, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
	} {
		f.Add([]byte(s), false)
	}
	r := routerWithEcho(f)
	srv := mcp.NewServer(r, nil)
	f.Cleanup(srv.Close)
	h, err := srv.HTTPHandler(&mcp.HTTPOptions{MaxBodyBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	// One real session to send requests in.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(initBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	h.ServeHTTP(rec, req)
	sid := rec.Header().Get("Mcp-Session-Id")
	if sid == "" {
		f.Fatalf("no session: %d %s", rec.Code, rec.Body)
	}
	f.Fuzz(func(t *testing.T, body []byte, withSession bool) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if withSession {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.ServeHTTP(rec, req.WithContext(ctx))
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code >= 400 && rec.Code != http.StatusMethodNotAllowed && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body)
		}
	})
}
