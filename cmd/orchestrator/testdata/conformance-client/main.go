// Command conformance-client is the orchestrator's MCP client (mcp.Connect,
// as the orchestrator uses it) wrapped for the official conformance
// suite's client scenarios: `conformance client --command BIN` runs it
// with the mock server's URL as its last argument and the scenario in
// MCP_CONFORMANCE_SCENARIO. It connects (server/discover, falling back to
// initialize), lists the tools and calls each through the router: the
// suite's add_numbers with two numbers, any other with no arguments.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: conformance-client URL")
		os.Exit(2)
	}
	url := os.Args[len(os.Args)-1]
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	r := calls.NewRouter(nil)
	c, err := mcp.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url}, r, &mcp.ClientOptions{
		Name: "conformance", ProtocolVersion: os.Getenv("MCP_CONFORMANCE_PROTOCOL_VERSION"), Logger: log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	defer c.Close()
	log.Info("connected", "scenario", os.Getenv("MCP_CONFORMANCE_SCENARIO"), "protocol", c.ProtocolVersion())
	for _, t := range c.Tools() {
		args := json.RawMessage(`{}`)
		if t.Name == "add_numbers" {
			args = json.RawMessage(`{"a":2,"b":3}`)
		}
		res, err := r.Call(ctx, t.Local, &calls.Request{Arguments: args})
		if err != nil {
			fmt.Fprintln(os.Stderr, "call", t.Name+":", err)
			os.Exit(1)
		}
		fmt.Println(t.Name+":", res.TextOf())
	}
}
