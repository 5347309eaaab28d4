package mcp_test

import (
	"log/slog"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestUnknownToolCallIsLogged: a tools/call the server cannot take (a tool
// it does not have, which the SDK answers with a JSON-RPC error before any
// handler runs) never reaches the router, so no call record, ledger line or
// metric has it; the adapter logs it at info, with the name and the reason,
// so that an operator sees a model calling a tool that does not exist. A
// call of a tool that exists logs no such line (the control).
func TestUnknownToolCallIsLogged(t *testing.T) {
	var logs mcptest.SyncBuffer
	r := calls.NewRouter(nil)
	mustAdd(t, r, echoCall("echo"))
	cs := mcptest.ConnectWith(t, r, &mcp.ServerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil, nil)
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{}}); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if strings.Contains(logs.String(), "call refused") {
		t.Errorf("a served tool's call logged as refused: %s", logs.String())
	}
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "no_such_tool", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a call of an unknown tool succeeded")
	}
	out := logs.String()
	if !strings.Contains(out, "level=INFO msg=\"call refused\" call=no_such_tool") || !strings.Contains(out, "unknown tool") || !strings.Contains(out, "client=mcptest") {
		t.Errorf("log = %q, want the unknown tool's call at info with its name, client and reason", out)
	}
}
