package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

func noopRouter(tb testing.TB) *calls.Router { return mcptest.NoopRouter(tb, nil) }

// sdkBaseline is the same no-op tool on a bare go-sdk server over its
// in-memory transport: the floor membrane is measured against.
func sdkBaseline(b *testing.B) *sdk.ClientSession {
	s := sdk.NewServer(&sdk.Implementation{Name: "bare", Version: "1"}, nil)
	s.AddTool(&sdk.Tool{Name: "noop", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}, nil
		})
	st, ct := sdk.NewInMemoryTransports()
	ss, err := s.Connect(context.Background(), st, nil)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "b"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close(); ss.Wait() })
	return cs
}

// timeCalls makes n no-op calls on cs and returns the time per call.
func timeCalls(b *testing.B, cs *sdk.ClientSession, n int) time.Duration {
	p := &sdk.CallToolParams{Name: "noop", Arguments: map[string]any{}}
	start := time.Now()
	for range n {
		res, err := cs.CallTool(context.Background(), p)
		if err != nil || res.IsError {
			b.Fatalf("call: %v %v", res, err)
		}
	}
	return time.Since(start) / time.Duration(n)
}

// BenchmarkAdapterRoundTrip measures a no-op call through membrane's adapter
// (router, middleware, per-session state) in process, over in-memory, stdio
// pipes and loopback HTTP, each against the bare SDK in-memory call measured
// in the same run (x_sdk is the ratio; 1.0 means no overhead).
func BenchmarkAdapterRoundTrip(b *testing.B) {
	transports := map[string]func(b *testing.B) *sdk.ClientSession{
		"inmemory": func(b *testing.B) *sdk.ClientSession { return mcptest.Connect(b, noopRouter(b), nil) },
		"stdio-pipes": func(b *testing.B) *sdk.ClientSession {
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			srv := mcp.NewServer(noopRouter(b), nil)
			go srv.Run(context.Background(), &mcp.ResilientStdioTransport{In: inR, Out: outW})
			cs, err := sdk.NewClient(&sdk.Implementation{Name: "b"}, nil).Connect(context.Background(), &sdk.IOTransport{Reader: outR, Writer: inW}, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { cs.Close(); inW.Close(); srv.Close() })
			return cs
		},
		"http": func(b *testing.B) *sdk.ClientSession {
			srv := mcp.NewServer(noopRouter(b), nil)
			h, err := srv.HTTPHandler(nil)
			if err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(h)
			b.Cleanup(func() { srv.Close(); ts.Close() })
			return mcptest.ConnectHTTP(b, ts.URL+"/mcp", "", nil)
		},
	}
	for _, name := range []string{"inmemory", "stdio-pipes", "http"} {
		b.Run(name, func(b *testing.B) {
			base := sdkBaseline(b)
			cs := transports[name](b)
			timeCalls(b, base, 50) // warm up both
			timeCalls(b, cs, 50)
			b.ResetTimer()
			per := timeCalls(b, cs, b.N)
			b.StopTimer()
			basePer := timeCalls(b, base, max(b.N, 200))
			b.ReportMetric(float64(per.Nanoseconds())/1e3, "µs/call")
			b.ReportMetric(float64(basePer.Nanoseconds())/1e3, "µs/sdk_call")
			b.ReportMetric(float64(per)/float64(basePer), "x_sdk")
		})
	}
}
