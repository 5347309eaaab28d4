// Command sdkserver is the baseline of membrane's benchmarks: a bare go-sdk
// MCP server with one no-op tool, over stdio or (with -http ADDR)
// streamable HTTP. It is what membrane's numbers are divided by.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	addr := flag.String("http", "", "serve streamable HTTP on ADDR")
	flag.Parse()
	s := sdk.NewServer(&sdk.Implementation{Name: "sdkserver", Version: "1"}, nil)
	s.AddTool(&sdk.Tool{Name: "noop", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			r := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}
			r.IsError = true // the same shape as membrane's no-op: a short tool error
			return r, nil
		})
	if *addr == "" {
		if err := s.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
			log.Fatal(err)
		}
		return
	}
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	log.Fatal(http.ListenAndServe(*addr, mux))
}
