package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
)

// perOp runs f n times and returns the mean time of one run: a baseline
// measured in the same process as the benchmark it is compared with.
func perOp(n int, f func()) float64 {
	start := time.Now()
	for range n {
		f()
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// BenchmarkAskOverhead measures one turn (a tool call, then an answer)
// through the agent against doing the same work by hand: two model calls
// and one router call. x_direct is the ratio; the difference is what the
// loop itself costs (events, history, argument checks, goroutines).
func BenchmarkAskOverhead(b *testing.B) {
	r := calls.NewRouter(nil)
	if err := r.Add(tool("echo", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return calls.Text("echo: hi"), nil
	})); err != nil {
		b.Fatal(err)
	}
	step := 0
	m := agent.ModelFunc(func(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
		step++
		if step%2 == 1 {
			return &agent.Reply{Message: agent.Message{ToolCalls: []agent.ToolCall{{ID: "c", Name: "echo", Arguments: `{"text":"hi"}`}}}}, nil
		}
		onDelta(agent.Delta{Content: "It said hi."})
		return &agent.Reply{Message: agent.Message{Content: "It said hi."}}, nil
	})
	ctx := context.Background()
	direct := func() {
		req := &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: "q"}}}
		rep, _ := m.Complete(ctx, req, func(agent.Delta) {})
		tc := rep.Message.ToolCalls[0]
		res, _ := r.Call(ctx, tc.Name, &calls.Request{Arguments: json.RawMessage(tc.Arguments)})
		req.Messages = append(req.Messages, rep.Message, agent.Message{Role: agent.RoleTool, Content: res.TextOf(), ToolCallID: tc.ID})
		m.Complete(ctx, req, func(agent.Delta) {})
	}
	base := perOp(2000, direct)
	a := agent.New(m, r, &agent.Options{OnEvent: func(agent.Event) {}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Ask(ctx, "q"); err != nil {
			b.Fatal(err)
		}
		a.Reset()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x_direct")
}

// BenchmarkExtractWorstCase feeds the text-call parser 64 KiB of
// adversarial text (many '{"' that never close) and compares it with one
// JSON validity check of the same bytes: x_json_valid bounds the cost of
// looking for calls in untrusted model output.
func BenchmarkExtractWorstCase(b *testing.B) {
	text := strings.Repeat(`{"name": "sh", "x": [1, 2, `, 64<<10/27)
	base := perOp(50, func() { json.Valid([]byte(text)) })
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		agent.ExtractToolCalls(text, knownTools)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x_json_valid")
}

// BenchmarkAgentToolOverhead measures one task through an agent call (the
// router's middleware, input checks, the scoped tool set, progress, the
// summary) against the same turn through agent.Ask directly: x_ask is the
// ratio.
func BenchmarkAgentToolOverhead(b *testing.B) {
	r := calls.NewRouter(nil)
	if err := r.Add(tool("echo", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return calls.Text("echo: hi"), nil
	})); err != nil {
		b.Fatal(err)
	}
	m := agent.ModelFunc(func(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
		if req.Messages[len(req.Messages)-1].Role == agent.RoleUser {
			return &agent.Reply{Message: agent.Message{ToolCalls: []agent.ToolCall{{ID: "c", Name: "echo", Arguments: `{"text":"hi"}`}}}}, nil
		}
		onDelta(agent.Delta{Content: "It said hi."})
		return &agent.Reply{Message: agent.Message{Content: "It said hi."}}, nil
	})
	c, err := agent.NewCall(agent.ToolOptions{Name: "a", Model: m, Tools: r})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Add(c); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	base := perOp(2000, func() {
		a := agent.New(m, r, &agent.Options{OnEvent: func(agent.Event) {}})
		if _, err := a.Ask(ctx, "q"); err != nil {
			b.Fatal(err)
		}
	})
	args := json.RawMessage(`{"task":"q"}`)
	b.ReportAllocs()
	for b.Loop() {
		res, err := r.Call(ctx, "agent_a", &calls.Request{Arguments: args})
		if err != nil || res.IsError {
			b.Fatal(err, res.TextOf())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x_ask")
}

// BenchmarkRenderCard renders the card of 200 tools into the default
// budget (the cut paths included) against marshalling the same tools'
// names and descriptions to JSON, the least a model is sent about them:
// x_json is the ratio.
func BenchmarkRenderCard(b *testing.B) {
	var cs []calls.Call
	type t struct{ Name, Description string }
	var ts []t
	for i := range 200 {
		c := cardCall([]string{"ollama", "sandbox", "docs", "web"}[i%4], "tool_"+strings.Repeat("x", i%9)+string(rune('a'+i%26))+string(rune('a'+i/26)),
			strings.Repeat("Does a useful thing with its input. ", 3))
		cs = append(cs, c)
		ts = append(ts, t{c.Name, c.Description})
	}
	base := perOp(200, func() { _, _ = json.Marshal(ts) })
	for b.Loop() {
		if agent.RenderCard(cs, nil) == "" {
			b.Fatal("empty card")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x_json")
}
