package mcp_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/sandbox"
)

// TestTwentyParallelSessions: 20 sessions each run `sh sleep 0.2` at once
// through the real sandbox, with the router's default queue and sh's limit
// as membrane sizes it to this machine, and as small as that sizing ever
// makes it (2): every call runs, none is answered busy. (The wall time is
// BenchmarkParallelSessions' business.)
func TestTwentyParallelSessions(t *testing.T) {
	const n = 20
	for _, limit := range []int{calls.MachineConcurrency(sandbox.DefaultMemoryBytes), 2} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			sb, err := sandbox.New(sandbox.Config{Concurrency: limit}, nil)
			if err != nil {
				mcptest.Require(t, fmt.Sprintf("no sandbox here: %v", err))
			}
			defer sb.Close()
			r := calls.NewRouter(nil)
			if _, err := r.Sync("sandbox", sb.Calls()); err != nil {
				t.Fatal(err)
			}
			srv := mcp.NewServer(r, nil)
			defer srv.Close()
			var wg sync.WaitGroup
			results := make([]string, n)
			for i, p := range sessions(t, srv, n, nil) {
				wg.Go(func() {
					res, err := p.cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": fmt.Sprintf("sleep 0.2; echo %d", i)}})
					switch {
					case err != nil:
						results[i] = err.Error()
					case res.IsError:
						results[i] = "refused: " + mcptest.TextOf(res)
					default:
						results[i] = mcptest.TextOf(res)
					}
				})
			}
			wg.Wait()
			for i, got := range results {
				if want := fmt.Sprintf("exit code 0\nstdout:\n%d\n", i); !strings.HasPrefix(got, want) {
					t.Errorf("session %d: %q; want %q", i, got, want)
				}
			}
		})
	}
}
