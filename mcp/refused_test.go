package mcp_test

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// TestUnknownToolCallIsLogged: a tools/call the server cannot take (a tool
// it does not have, which the SDK answers with a JSON-RPC error before any
// handler runs) never reaches the router, so no call record, ledger line or
// metric has it; the adapter logs it at info, with the name and the reason,
// so that an operator sees a model calling a tool that does not exist. A
// call of a tool that exists logs no such line (the control).
func TestUnknownToolCallIsLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	r := calls.NewRouter(nil)
	srv := mcp.NewServer(r, &mcp.ServerOptions{Logger: log})
	defer srv.Close()
	mustAdd(t, r, echoCall("echo"))
	st, ct := sdk.NewInMemoryTransports()
	if _, err := srv.SDK().Connect(t.Context(), st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "probe"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{}}); err != nil {
		t.Fatalf("echo: %v", err)
	}
	mu.Lock()
	if strings.Contains(buf.String(), "call refused") {
		t.Errorf("a served tool's call logged as refused: %s", buf.String())
	}
	mu.Unlock()
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "no_such_tool", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a call of an unknown tool succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, "level=INFO msg=\"call refused\" call=no_such_tool") || !strings.Contains(out, "unknown tool") || !strings.Contains(out, "client=probe") {
		t.Errorf("log = %q, want the unknown tool's call at info with its name, client and reason", out)
	}
}
