package mcptest

import (
	"context"
	"encoding/json"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// BareNoop is the tool a BareServer serves when it is given none.
var BareNoop = &sdk.Tool{Name: "noop", InputSchema: json.RawMessage(`{"type":"object"}`)}

// BareServer is the floor membrane's benchmarks are measured against: a
// go-sdk server with nothing of membrane's in it, serving tools (BareNoop
// when there are none), each answering any call with a short tool error,
// the same shape as membrane's no-op (sh with an unknown argument).
func BareServer(tools ...*sdk.Tool) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "bare", Version: "1"}, nil)
	if len(tools) == 0 {
		tools = []*sdk.Tool{BareNoop}
	}
	for _, t := range tools {
		s.AddTool(t, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			r := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}
			r.IsError = true
			return r, nil
		})
	}
	return s
}
