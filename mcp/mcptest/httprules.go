package mcptest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// HTTPRules describes an endpoint behind membrane's HTTP security layer
// (mcp.Guard) for CheckHTTPRules.
type HTTPRules struct {
	// URL is the endpoint, such as http://127.0.0.1:PORT/mcp.
	URL string
	// Body is a POST body the endpoint answers with OKStatus once the
	// request passes the layer; Header is sent with it (Content-Type, say).
	Body     string
	Header   map[string]string
	OKStatus int
	// Token is the bearer token the endpoint wants ("" for none).
	Token string
	// AllowedOrigin is a browser origin the endpoint allows ("" for none).
	AllowedOrigin string
	// MaxBody is the endpoint's body limit (0: not checked).
	MaxBody int64
}

// CheckHTTPRules checks, with a control beside each refusal, the rules
// every HTTP listener of membrane keeps: a foreign Host is 403 (DNS
// rebinding) and a loopback one passes; a foreign or cross-site Origin is
// 403 and none, the same or an allowed one passes; a missing or wrong
// token is 401 with WWW-Authenticate and the right one passes; a body over
// the limit is 413, with or without a Content-Length.
func CheckHTTPRules(t *testing.T, r HTTPRules) {
	t.Helper()
	u, err := url.Parse(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	do := func(t *testing.T, body string, hdr map[string]string, chunked bool) *http.Response {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.URL, rd)
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1
		}
		for k, v := range r.Header {
			req.Header.Set(k, v)
		}
		if r.Token != "" {
			req.Header.Set("Authorization", "Bearer "+r.Token)
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
				continue
			}
			if v == "" {
				req.Header.Del(k)
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	want := func(t *testing.T, what string, resp *http.Response, status int) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
		}
	}
	t.Run("host", func(t *testing.T) {
		for _, h := range []string{"evil.example", "evil.example:" + u.Port(), "127.0.0.1.nip.io"} {
			want(t, "Host "+h, do(t, r.Body, map[string]string{"Host": h}, false), http.StatusForbidden)
		}
		for _, h := range []string{"localhost:" + u.Port(), "127.0.0.1", u.Host} {
			want(t, "Host "+h, do(t, r.Body, map[string]string{"Host": h}, false), r.OKStatus)
		}
	})
	t.Run("origin", func(t *testing.T) {
		for _, o := range []string{"https://evil.example", "null", "http://localhost:1"} {
			want(t, "Origin "+o, do(t, r.Body, map[string]string{"Origin": o}, false), http.StatusForbidden)
		}
		want(t, "cross-site fetch", do(t, r.Body, map[string]string{"Sec-Fetch-Site": "cross-site"}, false), http.StatusForbidden)
		want(t, "no Origin", do(t, r.Body, nil, false), r.OKStatus)
		want(t, "same origin", do(t, r.Body, map[string]string{"Origin": u.Scheme + "://" + u.Host}, false), r.OKStatus)
		if r.AllowedOrigin != "" {
			resp := do(t, r.Body, map[string]string{"Origin": r.AllowedOrigin}, false)
			want(t, "allowed origin", resp, r.OKStatus)
			if resp.Header.Get("Access-Control-Allow-Origin") != r.AllowedOrigin {
				t.Errorf("allowed origin: no CORS header")
			}
		}
	})
	if r.Token != "" {
		t.Run("token", func(t *testing.T) {
			for name, auth := range map[string]string{
				"missing": "", "wrong": "Bearer nope", "prefix": "Bearer " + r.Token[:len(r.Token)/2],
				"longer": "Bearer " + r.Token + "x", "basic": "Basic " + r.Token, "raw": r.Token,
			} {
				resp := do(t, r.Body, map[string]string{"Authorization": auth}, false)
				want(t, name+" token", resp, http.StatusUnauthorized)
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s token: WWW-Authenticate %q", name, resp.Header.Get("WWW-Authenticate"))
				}
			}
			want(t, "right token, lower-case scheme", do(t, r.Body, map[string]string{"Authorization": "bearer " + r.Token}, false), r.OKStatus)
		})
	}
	if r.MaxBody > 0 {
		t.Run("body", func(t *testing.T) {
			big := r.Body + strings.Repeat(" ", int(r.MaxBody))
			want(t, "oversized body", do(t, big, nil, false), http.StatusRequestEntityTooLarge)
			want(t, "oversized chunked body", do(t, big, nil, true), http.StatusRequestEntityTooLarge)
			want(t, "body within the limit", do(t, r.Body, nil, true), r.OKStatus)
		})
	}
}
