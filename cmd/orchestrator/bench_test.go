package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
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
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("bubblewrap is missing")
	}
	srv := ollamatest.Start(b)
	srv.Create(b, "scripted", ollamatest.ScriptedModel(ollamatest.Script{}))
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	ctx := context.Background()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "OLLAMA_HOST="+srv.Host, "MEMBRANE_LOG_LEVEL=error")
	r := calls.NewRouter(&calls.RouterOptions{DefaultConcurrency: -1})
	c, err := mcp.Connect(ctx, mcp.CommandTransport(cmd), r, &mcp.ClientOptions{Name: "membrane"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	model := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "scripted"})
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
