// Command sdkserver is the baseline of membrane's benchmarks: a bare go-sdk
// MCP server (mcptest.BareServer) over stdio or (with -http ADDR)
// streamable HTTP, serving one no-op tool or (with -tools FILE) the tools of
// a JSON array, such as membrane's own tools/list. It is what membrane's
// numbers are divided by.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

func main() {
	addr := flag.String("http", "", "serve streamable HTTP on ADDR")
	file := flag.String("tools", "", "a JSON array of MCP tools to serve instead of one no-op")
	flag.Parse()
	var tools []*sdk.Tool
	if *file != "" {
		data, err := os.ReadFile(*file)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.Unmarshal(data, &tools); err != nil {
			log.Fatalf("%s: %v", *file, err)
		}
	}
	s := mcptest.BareServer(tools...)
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
