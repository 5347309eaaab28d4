package mcpload_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcpload"
)

// serve runs membrane's real MCP HTTP handler, with one no-op call, behind
// an httptest server and returns its MCP URL.
func serve(t *testing.T, token string) string {
	t.Helper()
	r := calls.NewRouter(nil)
	err := r.Add(calls.Call{
		Name: "noop", Kind: calls.KindTool, InputSchema: []byte(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil }),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.NewServer(r, nil)
	h, err := srv.HTTPHandler(&mcp.HTTPOptions{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	return ts.URL + "/mcp"
}

func TestRun(t *testing.T) {
	url := serve(t, "t0k")
	for _, tc := range []struct {
		name, token, body string
		wantErrors        int
	}{
		{"list", "t0k", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, 0},
		{"call", "t0k", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"noop","arguments":{}}}`, 0},
		{"unknown method", "t0k", `{"jsonrpc":"2.0","id":2,"method":"no/such"}`, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := mcpload.Run(t.Context(), mcpload.Options{URL: url, Token: tc.token, Sessions: 4, Requests: 40, Body: []byte(tc.body)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 40 || len(res.Latencies) != 40 {
				t.Errorf("requests = %d, latencies = %d, want 40", res.Requests, len(res.Latencies))
			}
			if res.Errors != tc.wantErrors {
				t.Errorf("errors = %d (first: %s), want %d", res.Errors, res.FirstError, tc.wantErrors)
			}
			if (tc.wantErrors == 0) != (res.FirstError == "") {
				t.Errorf("first error = %q with %d errors", res.FirstError, res.Errors)
			}
			if res.RPS() <= 0 || res.Percentile(50) > res.Percentile(100) {
				t.Errorf("rps %v, p50 %v, max %v", res.RPS(), res.Percentile(50), res.Percentile(100))
			}
		})
	}
}

func TestRunRefused(t *testing.T) {
	url := serve(t, "t0k")
	_, err := mcpload.Run(t.Context(), mcpload.Options{URL: url, Token: "wrong", Sessions: 2, Requests: 2, Body: []byte(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: err = %v, want an initialize error with 401", err)
	}
	if _, err := mcpload.Run(t.Context(), mcpload.Options{URL: url, Sessions: 3, Requests: 2, Body: []byte("{}")}); err == nil {
		t.Error("fewer requests than sessions: no error")
	}
}
