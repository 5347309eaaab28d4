package mcp_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/mcp"
)

// TestHTTPMetrics: /metrics sits behind the same token and Host checks as
// the MCP endpoint, and is a 404 when no metrics handler is given.
func TestHTTPMetrics(t *testing.T) {
	t.Parallel()
	const token = "metrics-token-for-tests"
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "membrane_calls_total 1\n") })
	_, url := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{Token: token, Metrics: metrics})
	get := func(auth, host string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := get("Bearer wrong", ""); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, _ := get("Bearer "+token, "evil.example.com"); code != http.StatusForbidden {
		t.Errorf("foreign Host: %d, want 403", code)
	}
	if code, body := get("Bearer "+token, ""); code != http.StatusOK || !strings.Contains(body, "membrane_calls_total 1") {
		t.Errorf("right token: %d %q", code, body)
	}

	_, plain := serveHTTP(t, routerWithEcho(t), nil)
	resp, err := http.Get(plain + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("no metrics handler: %d, want 404", resp.StatusCode)
	}
	if _, err := (&mcp.Server{}).HTTPHandler(&mcp.HTTPOptions{Path: "/metrics", Metrics: metrics}); err == nil {
		t.Error("the MCP endpoint at /metrics beside a metrics handler was accepted")
	}
}
