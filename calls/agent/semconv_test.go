package agent_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
)

// baseURLModel is a fakeModel that says where it is, as the
// OpenAI-compatible client does.
type baseURLModel struct {
	*fakeModel
	base string
}

func (m baseURLModel) BaseURL() string { return m.base }

// jsonrpcTools answers the "gone" tool with a JSON-RPC error, wrapped as
// mcp.Client wraps the go-sdk's (TestClientCallErrorIsJSONRPC in mcp pins
// that the SDK's error is a *jsonrpc.Error).
type jsonrpcTools struct{ *calls.Router }

func (j jsonrpcTools) Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error) {
	if name == "gone" {
		return nil, fmt.Errorf("mcp: membrane: call gone: %w", &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "unknown tool"})
	}
	return j.Router.Call(ctx, name, req)
}

// TestSpanSemanticConventions checks the attributes the GenAI and MCP
// semantic conventions ask of the agent's spans: the chat span's
// gen_ai.provider.name (required), server.address and server.port; a tool
// call's network.transport, and its error.type: the JSON-RPC code for a
// JSON-RPC error, tool_error for a tool error, none for a call that
// worked.
func TestSpanSemanticConventions(t *testing.T) {
	r, _ := echoRouter(t)
	add(t, r, tool("gone", func(ctx context.Context, req *calls.Request) (*calls.Result, error) { return calls.Text("never"), nil }))
	m := baseURLModel{&fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){
		callTools(agent.ToolCall{ID: "c1", Name: "echo", Arguments: `{"text":"hi"}`},
			agent.ToolCall{ID: "c2", Name: "fail", Arguments: `{}`},
			agent.ToolCall{ID: "c3", Name: "gone", Arguments: `{}`}),
		answer("done"),
	}}, "http://127.0.0.1:11434/v1"}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	a := agent.New(m, jsonrpcTools{r}, &agent.Options{TracerProvider: tp, ToolTransport: func(string) string { return "pipe" }})
	if _, err := a.Ask(t.Context(), "go"); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]map[attribute.Key]attribute.Value{}
	for _, s := range rec.Ended() {
		kv := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			kv[a.Key] = a.Value
		}
		attrs[s.Name()] = kv
	}
	chat, ok := attrs["chat "]
	if !ok {
		t.Fatalf("no chat span among %v", keys(attrs))
	}
	if chat["gen_ai.provider.name"].AsString() != "openai" || chat["server.address"].AsString() != "127.0.0.1" || chat["server.port"].AsInt64() != 11434 {
		t.Errorf("chat span: %v", chat)
	}
	for name, want := range map[string]string{"tools/call echo": "", "tools/call fail": "tool_error", "tools/call gone": "-32602"} {
		s, ok := attrs[name]
		if !ok {
			t.Fatalf("no %s span among %v", name, keys(attrs))
		}
		if got := s["error.type"].AsString(); got != want {
			t.Errorf("%s: error.type %q, want %q", name, got, want)
		}
		if s["network.transport"].AsString() != "pipe" {
			t.Errorf("%s: network.transport %q", name, s["network.transport"].AsString())
		}
	}
}

func keys(m map[string]map[attribute.Key]attribute.Value) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}
