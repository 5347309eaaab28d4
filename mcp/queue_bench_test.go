package mcp_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/sandbox"
)

// BenchmarkParallelSessions runs `sh sleep 0.2` from 20 sessions at once
// through the real sandbox, with sh's limit sized to the machine, and
// reports the wall time as ratios against baselines measured in the same
// run: x-ideal against the ideal with that limit (one call's time for each
// round of limit calls), x-floor against one call alone (every call at
// once). Refused calls are counted; there should be none.
//
//	go test -run X -bench ParallelSessions -benchtime 5x ./mcp/
func BenchmarkParallelSessions(b *testing.B) {
	const n = 20
	limit := calls.MachineConcurrency(sandbox.DefaultMemoryBytes)
	sb, err := sandbox.New(sandbox.Config{Concurrency: limit}, nil)
	if err != nil {
		b.Skipf("no sandbox here: %v", err)
	}
	defer sb.Close()
	r := calls.NewRouter(nil)
	if _, err := r.Sync("sandbox", sb.Calls()); err != nil {
		b.Fatal(err)
	}
	srv := mcp.NewServer(r, nil)
	defer srv.Close()
	var cs []*sdk.ClientSession
	for _, p := range sessions(b, srv, n, nil) {
		cs = append(cs, p.cs)
	}
	sleep := &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "sleep 0.2"}}
	one := func(c *sdk.ClientSession) (time.Duration, bool) {
		t0 := time.Now()
		res, err := c.CallTool(context.Background(), sleep)
		if err != nil {
			b.Fatal(err)
		}
		if res.IsError {
			if m, _ := res.StructuredContent.(map[string]any); m["reason"] == string(calls.ReasonBusy) {
				return time.Since(t0), false
			}
			b.Fatalf("sh: %v", res.Content[0].(*sdk.TextContent).Text)
		}
		return time.Since(t0), true
	}
	// The baseline: one call alone, the best of five.
	var singles []time.Duration
	for range 5 {
		d, _ := one(cs[0])
		singles = append(singles, d)
	}
	single := slices.Min(singles)
	rounds := (n + limit - 1) / limit

	var wall time.Duration
	refused := 0
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		t0 := time.Now()
		for _, c := range cs {
			wg.Go(func() {
				if _, ok := one(c); !ok {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		wall += time.Since(t0)
	}
	per := wall / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(time.Duration(rounds)*single), "x-ideal")
	b.ReportMetric(float64(per)/float64(single), "x-floor")
	b.ReportMetric(float64(refused)/float64(b.N), "refused/op")
	b.ReportMetric(float64(limit), "limit")
}
