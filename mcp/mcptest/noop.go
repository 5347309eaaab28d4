package mcptest

import (
	"context"
	"encoding/json"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
)

// NoopRouter returns a router, with opts, holding one call, "noop", that
// does nothing and answers "ok": the call whose cost is all overhead, for
// benchmarks of what observing a call costs.
func NoopRouter(t testing.TB, opts *calls.RouterOptions) *calls.Router {
	t.Helper()
	r := calls.NewRouter(opts)
	if err := r.Add(calls.Call{
		Name: "noop", Description: "does nothing", Kind: calls.KindTool,
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) {
			return calls.Text("ok"), nil
		}),
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// NoopWays are the ways NoopCaller calls "noop": "router", the router
// alone (the tightest loop, the worst case for a ratio), and
// "mcp-inmemory", a real go-sdk client over the in-memory transport.
var NoopWays = []string{"router", "mcp-inmemory"}

// NoopCaller returns a function that calls r's "noop" once, the way
// named (one of NoopWays), and fails t if the call fails.
func NoopCaller(t testing.TB, way string, r *calls.Router) func() {
	t.Helper()
	switch way {
	case "router":
		req := &calls.Request{Arguments: json.RawMessage(`{"x":1}`), Session: calls.NewSession("s")}
		return func() {
			if _, err := r.Call(context.Background(), "noop", req); err != nil {
				t.Fatal(err)
			}
		}
	case "mcp-inmemory":
		cs := Connect(t, r, nil)
		p := &sdk.CallToolParams{Name: "noop", Arguments: map[string]any{"x": 1}}
		return func() {
			if res, err := cs.CallTool(context.Background(), p); err != nil || res.IsError {
				t.Fatal(err)
			}
		}
	}
	t.Fatalf("no way %q to call noop", way)
	return nil
}

// Dropped sums the events r's observers lost.
func Dropped(r *calls.Router) uint64 {
	var n uint64
	for _, s := range r.ObserverStats() {
		n += s.Dropped
	}
	return n
}
