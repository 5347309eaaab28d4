package mcp_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// traceRecorder is a tool that keeps the trace context of each request.
type traceRecorder struct {
	mu  sync.Mutex
	got [][2]string
}

func (tr *traceRecorder) tool() calls.Call {
	return remoteTool("traced", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		tr.mu.Lock()
		tr.got = append(tr.got, [2]string{req.TraceParent, req.TraceState})
		tr.mu.Unlock()
		return calls.Text("ok"), nil
	})
}

func (tr *traceRecorder) last() [2]string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.got[len(tr.got)-1]
}

// TestTraceContextFromMeta: a go-sdk client's _meta traceparent and
// tracestate reach the call (SEP-414); a malformed traceparent, a
// non-string one and an oversized tracestate are dropped, beside the valid
// control.
func TestTraceContextFromMeta(t *testing.T) {
	r := calls.NewRouter(nil)
	tr := &traceRecorder{}
	if err := r.Add(tr.tool()); err != nil {
		t.Fatal(err)
	}
	cs := mcptest.Connect(t, r, nil)
	cases := []struct {
		name   string
		meta   map[string]any
		tp, ts string
	}{
		{"valid", map[string]any{"traceparent": validTP, "tracestate": "k=v"}, validTP, "k=v"},
		{"none", nil, "", ""},
		{"malformed", map[string]any{"traceparent": "00-xyz", "tracestate": "k=v"}, "", ""},
		{"uppercase hex", map[string]any{"traceparent": strings.ToUpper(validTP)}, "", ""},
		{"zero trace", map[string]any{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, "", ""},
		{"not a string", map[string]any{"traceparent": 42}, "", ""},
		{"huge tracestate", map[string]any{"traceparent": validTP, "tracestate": strings.Repeat("k=v,", 200)}, validTP, ""},
		{"control bytes in tracestate", map[string]any{"traceparent": validTP, "tracestate": "k=\x01"}, validTP, ""},
	}
	for _, c := range cases {
		p := &sdk.CallToolParams{Name: "traced", Arguments: map[string]any{}}
		if c.meta != nil {
			p.SetMeta(c.meta)
		}
		res, err := cs.CallTool(t.Context(), p)
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", c.name, err, res)
		}
		if got := tr.last(); got != [2]string{c.tp, c.ts} {
			t.Errorf("%s: the call saw %q, want %q %q", c.name, got, c.tp, c.ts)
		}
	}
}

// TestClientSendsTraceContext: a call made through mcp.Client with a trace
// context carries it to the remote server in _meta; without one, none.
func TestClientSendsTraceContext(t *testing.T) {
	remote := calls.NewRouter(nil)
	tr := &traceRecorder{}
	if err := remote.Add(tr.tool()); err != nil {
		t.Fatal(err)
	}
	_, local := serve(t, remote, nil)
	if _, err := local.Call(t.Context(), "traced", &calls.Request{TraceParent: validTP, TraceState: "a=b"}); err != nil {
		t.Fatal(err)
	}
	if got := tr.last(); got != [2]string{validTP, "a=b"} {
		t.Errorf("remote saw %q", got)
	}
	if _, err := local.Call(t.Context(), "traced", nil); err != nil {
		t.Fatal(err)
	}
	if got := tr.last(); got != [2]string{"", ""} {
		t.Errorf("remote saw %q without a trace", got)
	}
}
