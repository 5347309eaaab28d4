package mcp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// guardDo sends one request to url and returns its status and body.
func guardDo(t *testing.T, method, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	resp, b := mcptest.Do(t, method, url, body, hdr)
	return resp.StatusCode, b
}

// echoBody answers with the user the guard found and the body it read.
var echoBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	user, _ := mcp.UserFromContext(r.Context())
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	io.WriteString(w, "user="+user+" body="+string(b))
})

// TestGuardProtect: a handler behind Protect gets the MCP endpoint's
// checks, in order, and the user Verify named.
func TestGuardProtect(t *testing.T) {
	t.Parallel()
	g, err := mcp.NewGuard(&mcp.GuardOptions{
		Verify: func(tok string) (string, bool) {
			if tok == "alice-token" {
				return "alice", true
			}
			return "", false
		},
		AllowedOrigins: []string{"https://app.example.com"},
		MaxBodyBytes:   64,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(g.Protect(echoBody))
	defer ts.Close()
	auth := map[string]string{"Authorization": "Bearer alice-token"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"Authorization": "Bearer alice-token"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		method string
		body   string
		hdr    map[string]string
		want   int
		substr string
	}{
		{"right token", "POST", "hi", auth, 200, "user=alice body=hi"},
		{"no token", "POST", "hi", nil, 401, "bearer token is required"},
		{"wrong token", "POST", "hi", map[string]string{"Authorization": "Bearer bob"}, 401, "not valid"},
		{"basic scheme", "POST", "hi", map[string]string{"Authorization": "Basic YWxpY2U6eA=="}, 401, "not valid"},
		{"rebinding Host", "GET", "", with(map[string]string{"Host": "evil.example"}), 403, "DNS rebinding"},
		{"cross-site Origin", "GET", "", with(map[string]string{"Origin": "https://evil.example"}), 403, "Origin"},
		{"cross-site fetch", "GET", "", with(map[string]string{"Sec-Fetch-Site": "cross-site"}), 403, "Origin"},
		{"allowed Origin", "GET", "", with(map[string]string{"Origin": "https://app.example.com"}), 200, "user=alice"},
		{"body over the cap", "POST", strings.Repeat("x", 65), auth, 413, "64"},
		{"body at the cap", "POST", strings.Repeat("x", 64), auth, 200, strings.Repeat("x", 64)},
	}
	for _, c := range cases {
		code, body := guardDo(t, c.method, ts.URL, c.body, c.hdr)
		if code != c.want || !strings.Contains(body, c.substr) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, code, body, c.want, c.substr)
		}
	}
	// A preflight from the allowed origin is answered without a token.
	code, _ := guardDo(t, "OPTIONS", ts.URL, "", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
	if code != http.StatusNoContent {
		t.Errorf("preflight: %d, want 204", code)
	}
}

// TestGuardScreenAndCheck: Screen leaves the token to the handler, which
// checks it with Check; the Reject hook shapes refusals.
func TestGuardScreenAndCheck(t *testing.T) {
	t.Parallel()
	g, err := mcp.NewGuard(&mcp.GuardOptions{
		Token: "the-token",
		Reject: func(w http.ResponseWriter, _ *http.Request, status int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, `{"error":{"message":"`+msg+`"}}`)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if g.Open() {
		t.Error("a guard with a token says it is open")
	}
	if _, ok := g.Check("the-token"); !ok {
		t.Error("Check refused the token")
	}
	for _, bad := range []string{"", "the-token ", "the-toke", "THE-TOKEN"} {
		if _, ok := g.Check(bad); ok {
			t.Errorf("Check accepted %q", bad)
		}
	}
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if _, ok := g.Check(string(b)); !ok {
			http.Error(w, "wrong token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "logged in")
	})
	ts := httptest.NewServer(g.Screen(login))
	defer ts.Close()
	if code, body := guardDo(t, "POST", ts.URL, "the-token", nil); code != 200 || body != "logged in" {
		t.Errorf("Screen with the right token in the body: %d %q", code, body)
	}
	if code, _ := guardDo(t, "POST", ts.URL, "nope", nil); code != 401 {
		t.Errorf("Screen with a wrong token in the body: %d, want the handler's 401", code)
	}
	code, body := guardDo(t, "POST", ts.URL, "the-token", map[string]string{"Host": "evil.example"})
	if code != 403 || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("Screen still checks Host, through Reject: %d %q", code, body)
	}

	open, err := mcp.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !open.Open() {
		t.Error("the zero guard requires a token")
	}
	if _, err := mcp.NewGuard(&mcp.GuardOptions{AllowedOrigins: []string{"app.example.com"}}); err == nil {
		t.Error("an origin without a scheme was accepted")
	}
}

// TestHTTPMounts: a mount on the MCP listener gets its checks; a Public
// one skips only the token.
func TestHTTPMounts(t *testing.T) {
	t.Parallel()
	const token = "mount-token"
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page "+r.URL.Path) })
	_, url := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{Token: token, Mounts: []mcp.Mount{
		{Prefix: "/api/", Handler: page},
		{Prefix: "/lens/", Handler: page, Public: true},
	}})
	auth := map[string]string{"Authorization": "Bearer " + token}
	if code, body := guardDo(t, "GET", url+"/api/x", "", auth); code != 200 || body != "page /api/x" {
		t.Errorf("protected mount with the token: %d %q", code, body)
	}
	if code, _ := guardDo(t, "GET", url+"/api/x", "", nil); code != 401 {
		t.Errorf("protected mount without the token: %d, want 401", code)
	}
	if code, body := guardDo(t, "GET", url+"/lens/", "", nil); code != 200 || body != "page /lens/" {
		t.Errorf("public mount without the token: %d %q", code, body)
	}
	if code, _ := guardDo(t, "GET", url+"/lens/", "", map[string]string{"Host": "evil.example"}); code != 403 {
		t.Errorf("public mount with a rebinding Host: %d, want 403", code)
	}
	if code, _ := guardDo(t, "GET", url+"/lens", "", auth); code != 404 {
		t.Errorf("the prefix without its slash: %d, want 404", code)
	}
	// The MCP endpoint is unchanged beside them.
	if resp := post(t, url+"/mcp", initBody, auth); resp.StatusCode != 200 {
		t.Errorf("MCP endpoint beside mounts: %d", resp.StatusCode)
	}

	bad := [][]mcp.Mount{
		{{Prefix: "lens/", Handler: page}},
		{{Prefix: "/lens", Handler: page}},
		{{Prefix: "/lens/"}},
		{{Prefix: "/mcp/", Handler: page}},
		{{Prefix: "/", Handler: page}},
		{{Prefix: "/a/", Handler: page}, {Prefix: "/a/b/", Handler: page}},
	}
	for _, ms := range bad {
		if _, err := (&mcp.Server{}).HTTPHandler(&mcp.HTTPOptions{Mounts: ms}); err == nil {
			t.Errorf("mounts %+v accepted", ms)
		}
	}
}

// TestHTTPRulesMCP runs the shared HTTP rules (mcptest.CheckHTTPRules)
// against the MCP endpoint; every other listener runs the same.
func TestHTTPRulesMCP(t *testing.T) {
	const token = "rules-token-for-tests"
	_, url := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{Token: token, AllowedOrigins: []string{"https://app.example.com"}, MaxBodyBytes: 4 << 10})
	mcptest.CheckHTTPRules(t, mcptest.HTTPRules{
		URL: url + "/mcp", Body: initBody, OKStatus: 200, Token: token, AllowedOrigin: "https://app.example.com", MaxBody: 4 << 10,
		Header: map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
	})
}
