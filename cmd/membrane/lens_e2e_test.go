package main

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls/lens"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// lensLogin logs in to the Lens at base and returns the cookie header.
func lensLogin(t *testing.T, base, token string) string {
	t.Helper()
	resp, body := mcptest.Do(t, "POST", base+"/lens/api/login", `{"token":"`+token+`"}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "membrane_lens") {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("login set no cookie: %v", resp.Header)
	return ""
}

// TestLensSecurityBinary: the Lens of the real binary gives data only to a
// browser logged in with the token, from the same origin, under a loopback
// Host; each refusal has an allowed request beside it.
func TestLensSecurityBinary(t *testing.T) {
	bin := binary(t)
	const token = "lens-e2e-token-0123456789abcdef"
	_, base, _, _ := startHTTP(t, bin, append([]string{"--token", token, "--sandbox", "rlimit"}, noOllama...)...)
	_, other, _, _ := startHTTP(t, bin, append([]string{"--token", token, "--sandbox", "rlimit"}, noOllama...)...)
	data := base + "/lens/api/overview"
	host := strings.TrimPrefix(base, "http://")

	// The page itself holds no data and loads without a login, under the CSP.
	resp, page := mcptest.Do(t, "GET", base+"/lens/", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `<script src="lens.js"`) || resp.Header.Get("Content-Security-Policy") != lens.CSP {
		t.Fatalf("page: %d CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "onclick=") || strings.Contains(page, "onload=") {
		t.Error("the page has inline script")
	}

	cookie := lensLogin(t, base, token)
	if !strings.HasSuffix(strings.SplitN(cookie, "=", 2)[0], "_"+strings.Split(host, ":")[1]) {
		t.Errorf("cookie %q is not named after the port", cookie)
	}
	for _, tc := range []struct {
		name   string
		method string
		url    string
		body   string
		hdr    map[string]string
		want   int
	}{
		{"cookie (allowed)", "GET", data, "", map[string]string{"Cookie": cookie}, 200},
		{"bearer token (allowed)", "GET", data, "", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"same-origin fetch (allowed)", "GET", data, "", map[string]string{"Cookie": cookie, "Origin": base, "Sec-Fetch-Site": "same-origin"}, 200},
		{"no token", "GET", data, "", nil, 401},
		{"wrong bearer token", "GET", data, "", map[string]string{"Authorization": "Bearer nope-" + token}, 401},
		{"made-up cookie", "GET", data, "", map[string]string{"Cookie": strings.SplitN(cookie, "=", 2)[0] + "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, 401},
		{"cross-site Origin", "GET", data, "", map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}, 403},
		{"cross-site fetch metadata", "GET", data, "", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site other port", "GET", data, "", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-site"}, 403},
		{"DNS rebinding Host", "GET", data, "", map[string]string{"Cookie": cookie, "Host": "evil.example:" + strings.Split(host, ":")[1]}, 403},
		{"events without a login", "GET", base + "/lens/api/events", "", nil, 401},
		{"events cross-site", "GET", base + "/lens/api/events", "", map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}, 403},
		{"history without a login", "GET", base + "/lens/api/calls", "", nil, 401},
		{"wrong token at the login", "POST", base + "/lens/api/login", `{"token":"wrong"}`, map[string]string{"Content-Type": "application/json"}, 401},
		{"login from another site", "POST", base + "/lens/api/login", `{"token":"` + token + `"}`, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, 403},
		{"a write", "POST", data, "{}", map[string]string{"Cookie": cookie}, 405},
	} {
		resp, body := mcptest.Do(t, tc.method, tc.url, tc.body, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %.200s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		if tc.want != 200 && (strings.Contains(body, `"tools"`) || strings.Contains(body, `"hosts"`)) {
			t.Errorf("%s: data in the refusal: %.200s", tc.name, body)
		}
		if tc.want == 401 && len(resp.Cookies()) > 0 {
			t.Errorf("%s: a cookie set on a refusal", tc.name)
		}
	}

	// A cookie from the server on another port, under this server's
	// cookie name: no data. The allow control is that server's own.
	otherCookie := lensLogin(t, other, token)
	value := strings.SplitN(otherCookie, "=", 2)[1]
	if resp, body := mcptest.Do(t, "GET", data, "", map[string]string{"Cookie": strings.SplitN(cookie, "=", 2)[0] + "=" + value}); resp.StatusCode != 401 {
		t.Errorf("another port's cookie: %d %.200s", resp.StatusCode, body)
	}
	if resp, _ := mcptest.Do(t, "GET", other+"/lens/api/overview", "", map[string]string{"Cookie": otherCookie}); resp.StatusCode != 200 {
		t.Errorf("the other server's own cookie: %d", resp.StatusCode)
	}

	// Logging out ends the cookie.
	if resp, _ := mcptest.Do(t, "POST", base+"/lens/api/logout", "", map[string]string{"Cookie": cookie}); resp.StatusCode != 204 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ := mcptest.Do(t, "GET", data, "", map[string]string{"Cookie": cookie}); resp.StatusCode != 401 {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
}

// TestLensOffBinary: off with --lens off and in a --stateless replica,
// unless --lens on says the store is shared.
func TestLensOffBinary(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 200},
		{[]string{"--lens", "off"}, 404},
		{[]string{"--stateless"}, 404},
		{[]string{"--stateless", "--lens", "on"}, 200},
	} {
		_, base, _, _ := startHTTP(t, bin, append(append([]string{"--sandbox", "rlimit"}, noOllama...), tc.args...)...)
		if resp, _ := mcptest.Do(t, "GET", base+"/lens/", "", nil); resp.StatusCode != tc.want {
			t.Errorf("%v: /lens/ %d, want %d", tc.args, resp.StatusCode, tc.want)
		}
	}
}
