// Command mcpgo is a peer baseline of membrane's benchmarks: a
// mark3labs/mcp-go server over streamable HTTP that serves the tools of a
// tools/list result read from a file (membrane's own, in the benchmark),
// each answering a call with a short tool error. It lives in its own module
// so that mcp-go is never linked into membrane's binaries.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	addr := flag.String("http", "127.0.0.1:0", "serve streamable HTTP on ADDR")
	file := flag.String("tools", "", "a JSON array of MCP tools (name, description, inputSchema) to serve")
	flag.Parse()
	var tools []struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if *file != "" {
		data, err := os.ReadFile(*file)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.Unmarshal(data, &tools); err != nil {
			log.Fatalf("%s: %v", *file, err)
		}
	} else {
		tools = append(tools, struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			InputSchema json.RawMessage `json:"inputSchema"`
		}{Name: "noop", InputSchema: json.RawMessage(`{"type":"object"}`)})
	}
	s := server.NewMCPServer("mcpgo", "1", server.WithToolCapabilities(true))
	for _, t := range tools {
		s.AddTool(mcp.NewToolWithRawSchema(t.Name, t.Description, t.InputSchema),
			func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultError("ok"), nil
			})
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	log.Fatal(http.ListenAndServe(*addr, mux))
}
