package mcp_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcpload"
)

// defaultToolsRouter is a router holding the tools of membrane's default
// tool list as recorded in testdata (names, schemas, descriptions), each
// answering with a short text.
func defaultToolsRouter(tb testing.TB) *calls.Router {
	tb.Helper()
	data, err := os.ReadFile("testdata/default-tools.json")
	if err != nil {
		tb.Fatal(err)
	}
	var tools []struct {
		Name         string          `json:"name"`
		Title        string          `json:"title"`
		Description  string          `json:"description"`
		InputSchema  json.RawMessage `json:"inputSchema"`
		OutputSchema json.RawMessage `json:"outputSchema"`
		Annotations  struct {
			ReadOnly    bool  `json:"readOnlyHint"`
			Destructive *bool `json:"destructiveHint"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(data, &tools); err != nil {
		tb.Fatal(err)
	}
	r := calls.NewRouter(nil)
	for _, t := range tools {
		c := calls.Call{
			Name: t.Name, Title: t.Title, Description: t.Description, Kind: calls.KindTool,
			InputSchema: t.InputSchema, OutputSchema: t.OutputSchema, ReadOnly: t.Annotations.ReadOnly,
			Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil }),
		}
		if t.Annotations.Destructive != nil {
			c.Destructive = *t.Annotations.Destructive
		}
		if err := r.Add(c); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// BenchmarkInProcessToolsList is tools/list over membrane's HTTP handler,
// served and driven in one process (for -cpuprofile).
func BenchmarkInProcessToolsList(b *testing.B) {
	srv := mcp.NewServer(defaultToolsRouter(b), nil)
	defer srv.Close()
	h, err := srv.HTTPHandler(nil)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	o := mcpload.Options{URL: ts.URL + "/mcp", Sessions: 50, Requests: max(b.N, 50), Body: []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)}
	b.ResetTimer()
	res, err := mcpload.Run(b.Context(), o)
	if err != nil || res.Errors > 0 {
		b.Fatal(err, res.FirstError)
	}
	b.ReportMetric(res.RPS(), "req/s")
}
