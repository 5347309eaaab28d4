package lens

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// BenchmarkCallWithPageOpen measures a no-op call on a router that the
// trace store and the Lens observe, with one Lens page open (a stream
// read to the end, as a browser reads it) against the same call with no
// page open, in the same run, alternating in rounds so that both see the
// same machine. x_no_page is the ratio: 1.0 means an open page costs a
// call nothing. dropped counts the events the Lens lost by falling
// behind.
func BenchmarkCallWithPageOpen(b *testing.B) {
	ways := map[string]func(b *testing.B, r *calls.Router) func(){
		"router": func(b *testing.B, r *calls.Router) func() {
			req := &calls.Request{Arguments: json.RawMessage(`{"x":"1"}`), Session: calls.NewSession("s")}
			return func() {
				if _, err := r.Call(context.Background(), "noop", req); err != nil {
					b.Fatal(err)
				}
			}
		},
		"mcp-inmemory": func(b *testing.B, r *calls.Router) func() {
			cs := mcptest.Connect(b, r, nil)
			p := &sdk.CallToolParams{Name: "noop", Arguments: map[string]any{"x": "1"}}
			return func() {
				if res, err := cs.CallTool(context.Background(), p); err != nil || res.IsError {
					b.Fatal(err)
				}
			}
		},
	}
	for _, name := range []string{"router", "mcp-inmemory"} {
		b.Run(name, func(b *testing.B) {
			closed, open := newFixture(b, Options{}, true), newFixture(b, Options{}, true)
			closed.r.Add(noop("noop"))
			open.r.Add(noop("noop"))
			cookie := open.login(b)
			s := open.stream(b, cookie, "")
			go io.Copy(io.Discard, s.resp.Body)
			for open.l.streams.Load() != 1 {
				time.Sleep(time.Millisecond)
			}
			off, on := ways[name](b, closed.r), ways[name](b, open.r)
			b.ReportMetric(mcptest.Alternate(b, 200, off, on), "x_no_page")
			var dropped uint64
			for _, st := range open.r.ObserverStats() {
				if st.Name == "lens" {
					dropped += st.Dropped
				}
			}
			b.ReportMetric(float64(dropped), "dropped")
			if open.l.streams.Load() != 1 {
				b.Error("the page's stream closed during the run")
			}
		})
	}
}
