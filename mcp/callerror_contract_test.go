package mcp_test

import (
	"context"
	"errors"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestClientCallErrorIsJSONRPC pins go-sdk behaviour the orchestrator's
// spans rely on: a tools/call the server answers with a JSON-RPC error
// (here an unknown tool) fails ClientSession.CallTool with an error that
// errors.As finds a *jsonrpc.Error in, with the code (mcp.Client wraps it
// with %w; the agent sets error.type to the code). A call that works
// returns no error (the control).
func TestClientCallErrorIsJSONRPC(t *testing.T) {
	r := calls.NewRouter(nil)
	if err := r.Add(remoteTool("echo", func(_ context.Context, _ *calls.Request) (*calls.Result, error) {
		return calls.Text("ok"), nil
	})); err != nil {
		t.Fatal(err)
	}
	cs := mcptest.Connect(t, r, nil)
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{}}); err != nil {
		t.Fatalf("echo: %v", err)
	}
	_, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "no_such_tool", Arguments: map[string]any{}})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code == 0 {
		t.Fatalf("unknown tool: error %T %v, want a *jsonrpc.Error with a code", err, err)
	}
	t.Logf("code %d: %s", we.Code, we.Message)
}
