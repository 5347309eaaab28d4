package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// BenchmarkTurn measures one question through the loop on the real chain
// (scripted model on a real Ollama /v1 → sh in real membrane over stdio →
// answer) against the same three steps made by hand on the same
// connections: x_direct is what the loop adds on top of the model and the
// tool.
func BenchmarkTurn(b *testing.B) {
	ctx := context.Background()
	model, r := benchChain(b)
	tools := agent.New(model, r, nil).Tools()

	direct := func() {
		msgs := []agent.Message{{Role: agent.RoleUser, Content: "say hello"}}
		rep, err := model.Complete(ctx, &agent.Request{Messages: msgs, Tools: tools}, func(agent.Delta) {})
		if err != nil || len(rep.Message.ToolCalls) != 1 {
			b.Fatalf("direct: %v %+v", err, rep)
		}
		tc := rep.Message.ToolCalls[0]
		res, err := r.Call(ctx, tc.Name, &calls.Request{Arguments: json.RawMessage(tc.Arguments)})
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, rep.Message, agent.Message{Role: agent.RoleTool, Content: res.TextOf(), ToolCallID: tc.ID})
		if _, err := model.Complete(ctx, &agent.Request{Messages: msgs, Tools: tools}, func(agent.Delta) {}); err != nil {
			b.Fatal(err)
		}
	}
	direct() // warm the model
	start := time.Now()
	const n = 20
	for range n {
		direct()
	}
	base := float64(time.Since(start).Nanoseconds()) / n

	a := agent.New(model, r, &agent.Options{OnEvent: func(agent.Event) {}})
	for b.Loop() {
		turn, err := a.Ask(ctx, "say hello")
		if err != nil || turn.Answer != "The command printed hello." {
			b.Fatalf("turn: %v %+v", err, turn)
		}
		a.Reset()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x_direct")
}

// benchChain starts the real chain of the turn benchmarks: a test Ollama
// with the scripted model, and a real membrane over stdio whose tools are
// in the router returned.
func benchChain(b *testing.B) (*openaicompat.Client, *calls.Router) {
	b.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("bubblewrap is missing")
	}
	srv := ollamatest.Start(b)
	srv.Create(b, "scripted", ollamatest.ScriptedModel(ollamatest.Script{}))
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "OLLAMA_HOST="+srv.Host, "MEMBRANE_LOG_LEVEL=error")
	r := calls.NewRouter(&calls.RouterOptions{DefaultConcurrency: -1})
	c, err := mcp.Connect(context.Background(), mcp.CommandTransport(cmd), r, &mcp.ClientOptions{Name: "membrane"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "scripted"}), r
}

// BenchmarkTurn500Tools measures what the hostile-server defences cost
// with a server of 500 tools, against baselines measured in the same run:
//
//   - x_turn: one turn (the model is sent all 500 tools, calls one,
//     answers; the terminal output is rendered through the sanitizer)
//     against the same turn with the text written raw.
//   - x_list: listing the tools with the bounds, the schema check, the
//     digests and the router sync, against the SDK's bare listing as the
//     client did it before. The first listing checks every schema; a
//     re-listing (after list_changed) checks only tools that changed.
//   - x_first_list: the same for a client's first listing.
func BenchmarkTurn500Tools(b *testing.B) {
	ctx := context.Background()
	s := sdk.NewServer(&sdk.Implementation{Name: "many"}, nil)
	for i := range 500 {
		s.AddTool(&sdk.Tool{
			Name:        fmt.Sprintf("tool_%03d", i),
			Description: strings.Repeat("Reads a file from the project and returns its text. ", 4),
			InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","description":"the file"},"lines":{"type":"array","items":{"type":"integer"}},"mode":{"enum":["a","b"]}},"required":["path"]}`),
		}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: strings.Repeat("line of file text ✓\n", 50)}}}, nil
		})
	}
	connect := func(r *calls.Router) *mcp.Client {
		st, ct := sdk.NewInMemoryTransports()
		ss, err := s.Connect(ctx, st, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ss.Close() })
		c, err := mcp.Connect(ctx, ct, r, &mcp.ClientOptions{Name: "many"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	r := calls.NewRouter(&calls.RouterOptions{DefaultConcurrency: -1})
	c := connect(r)
	step := 0
	m := agent.ModelFunc(func(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
		if _, err := json.Marshal(req.Tools); err != nil { // what goes on the wire
			return nil, err
		}
		step++
		if step%2 == 1 {
			return &agent.Reply{Message: agent.Message{ToolCalls: []agent.ToolCall{{ID: "c", Name: "tool_007", Arguments: `{"path":"a.go"}`}}}}, nil
		}
		text := strings.Repeat("The file holds fifty lines of text. ", 20)
		onDelta(agent.Delta{Content: text})
		return &agent.Reply{Message: agent.Message{Content: text}}, nil
	})
	raw := func(e agent.Event) {
		io.WriteString(io.Discard, e.Text)
		if e.Record != nil {
			io.WriteString(io.Discard, e.Record.Name+e.Record.Arguments+e.Record.Result)
		}
	}
	before := agent.New(m, r, &agent.Options{OnEvent: raw})
	u := display.New(io.Discard, io.Discard, nil)
	after := agent.New(m, r, &agent.Options{OnEvent: u.Event})
	ask := func(a *agent.Agent) {
		if _, err := a.Ask(ctx, "q"); err != nil {
			b.Fatal(err)
		}
		u.EndTurn(nil, nil)
		a.Reset()
	}
	sdkList := func() {
		n := 0
		for _, err := range c.Session().Tools(ctx, nil) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 500 {
			b.Fatalf("%d tools", n)
		}
	}
	relist := func() {
		if _, err := c.Refresh(ctx); err != nil || r.Len() != 500 {
			b.Fatalf("refresh: %v, %d tools", err, r.Len())
		}
	}
	tBefore, tAfter := pair(20, func() { ask(before) }, func() { ask(after) })
	lBefore, lAfter := pair(20, sdkList, relist)
	first, bare := pair(5, func() { connect(calls.NewRouter(nil)) }, func() {
		st, ct := sdk.NewInMemoryTransports()
		ss, _ := s.Connect(ctx, st, nil)
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "x"}, nil).Connect(ctx, ct, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range cs.Tools(ctx, nil) {
			if err != nil {
				b.Fatal(err)
			}
		}
		cs.Close()
		ss.Close()
	})
	for b.Loop() {
		relist()
		ask(after)
	}
	b.ReportMetric(tAfter/tBefore, "x_turn")
	b.ReportMetric(lAfter/lBefore, "x_list")
	b.ReportMetric(first/bare, "x_first_list")
	b.ReportMetric((first-bare)/1e6, "ms_first_list_added")
}

// pair runs a baseline and a variant n times each, interleaved so that
// the load of a shared machine falls on both alike, and returns the mean
// time of one run of each.
func pair(n int, base, variant func()) (float64, float64) {
	var tb, tv time.Duration
	for range n {
		t0 := time.Now()
		base()
		t1 := time.Now()
		variant()
		tb += t1.Sub(t0)
		tv += time.Since(t1)
	}
	return float64(tb.Nanoseconds()) / float64(n), float64(tv.Nanoseconds()) / float64(n)
}
