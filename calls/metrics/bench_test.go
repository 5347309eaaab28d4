package metrics_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/calls/metrics"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// observedRouter is a router with one no-op call; with on, the audit ledger
// (to a file), the trace store and the metrics observe it.
func observedRouter(b *testing.B, on bool) *calls.Router {
	r := calls.NewRouter(nil)
	if err := r.Add(calls.Call{
		Name: "noop", Description: "does nothing", Kind: calls.KindTool,
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) {
			return calls.Text("ok"), nil
		}),
	}); err != nil {
		b.Fatal(err)
	}
	if on {
		l, err := ledger.Open(filepath.Join(b.TempDir(), "audit.jsonl"), nil)
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(filepath.Join(b.TempDir(), "membrane.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		r.Observe(l)
		r.Observe(st)
		r.Observe(metrics.New(r, nil))
		b.Cleanup(func() { r.Close(); l.Close(); st.Close() })
	}
	return r
}

// BenchmarkObservedCall measures a no-op call with the audit ledger, the
// trace store and the metrics on against the same call with both off, in the same run,
// alternating in rounds of 50 calls so that both see the same machine.
// x_off is the median over the rounds of the ratio (1.0: observing costs
// nothing), x_off_total the ratio of the whole times, where every pause
// of a loaded machine counts in whichever round it fell; dropped counts
// the events the observers lost (none, while the store keeps up: a burst
// of up to calls.DefaultObserverBuffer events is absorbed).
func BenchmarkObservedCall(b *testing.B) {
	ways := map[string]func(b *testing.B, r *calls.Router) func(){
		// The router alone: the tightest loop, the worst case for the ratio.
		"router": func(b *testing.B, r *calls.Router) func() {
			req := &calls.Request{Arguments: json.RawMessage(`{"x":1}`), Session: calls.NewSession("s")}
			return func() {
				if _, err := r.Call(context.Background(), "noop", req); err != nil {
					b.Fatal(err)
				}
			}
		},
		// A real MCP client over go-sdk's in-memory transport.
		"mcp-inmemory": func(b *testing.B, r *calls.Router) func() {
			cs := mcptest.Connect(b, r, nil)
			p := &sdk.CallToolParams{Name: "noop", Arguments: map[string]any{"x": 1}}
			return func() {
				if res, err := cs.CallTool(context.Background(), p); err != nil || res.IsError {
					b.Fatal(err)
				}
			}
		},
	}
	for _, name := range []string{"router", "mcp-inmemory"} {
		b.Run(name, func(b *testing.B) {
			offR, onR := observedRouter(b, false), observedRouter(b, true)
			off, on := ways[name](b, offR), ways[name](b, onR)
			x := mcptest.AlternateRatios(b, 50, off, on)
			b.ReportMetric(x.Median, "x_off")
			b.ReportMetric(x.Total, "x_off_total")
			var dropped uint64
			for _, s := range onR.ObserverStats() {
				dropped += s.Dropped
			}
			b.ReportMetric(float64(dropped), "dropped")
		})
	}
}
