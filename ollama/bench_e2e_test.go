package ollama_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// BenchmarkChatOverhead sends the same chat to the same real model two
// ways in each iteration, straight to Ollama with its own Go client and
// through membrane (MCP client, server adapter, router, chat tool, Ollama),
// and reports the ratio of their median times and the median difference.
// router_µs is the same call made on the router without MCP, to tell the
// adapter's share from this package's.
func BenchmarkChatOverhead(b *testing.B) {
	srv := ollamatest.Start(b)
	srv.Create(b, "scripted:latest", scripted())
	r := calls.NewRouter(nil)
	m, err := ollama.New(ollama.Config{Hosts: []string{srv.Host}}, r, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Refresh(b.Context()); err != nil {
		b.Fatal(err)
	}
	cs := mcptest.Connect(b, r, nil)
	direct := srv.Client()
	prompt := "What did the command print?"
	viaDirect := func() {
		var got string
		err := direct.Chat(b.Context(), &api.ChatRequest{Model: "scripted:latest", Messages: []api.Message{{Role: "user", Content: prompt}}},
			func(r api.ChatResponse) error { got += r.Message.Content; return nil })
		if err != nil || got != scriptAnswer {
			b.Fatalf("direct: %v %q", err, got)
		}
	}
	viaMembrane := func() {
		res, err := cs.CallTool(b.Context(), &sdk.CallToolParams{Name: "chat_scripted", Arguments: map[string]any{"prompt": prompt}})
		if err != nil || res.IsError || firstText(res) != scriptAnswer {
			b.Fatalf("membrane: %v %v", err, res)
		}
	}
	args, _ := json.Marshal(map[string]any{"prompt": prompt})
	viaRouter := func() {
		res, err := r.Call(b.Context(), "chat_scripted", &calls.Request{Arguments: args})
		if err != nil || res.IsError || res.Content[0].Text != scriptAnswer {
			b.Fatalf("router: %v %v", err, res)
		}
	}
	viaDirect() // load the model
	viaMembrane()

	b.ResetTimer()
	times := timeRotated(b, []func(){viaDirect, viaRouter, viaMembrane}, nil)
	b.StopTimer()
	md, mr, mm := median(times[0]), median(times[1]), median(times[2])
	b.ReportMetric(float64(md.Microseconds()), "direct_µs")
	b.ReportMetric(float64(mr.Microseconds()), "router_µs")
	b.ReportMetric(float64(mm.Microseconds()), "membrane_µs")
	b.ReportMetric(float64(mm)/float64(md), "ratio")
	b.ReportMetric(float64((mm - md).Microseconds()), "overhead_µs")
}

// timeRotated runs each of ways once per b.Loop round, in a fresh random
// order each round, and returns the times of each way. A rotation was not
// enough: it keeps every way's neighbours, and the way that always came
// right after the straight chat read 0.15-0.25x faster than an identical
// way elsewhere in the cycle. after, unless nil, is told each run's way
// and its start and end.
func timeRotated(b *testing.B, ways []func(), after func(k int, t0, t1 time.Time)) [][]time.Duration {
	return timeRotatedN(b, 1, ways, after)
}

// timeRotatedN is timeRotated with n rounds of ways per b.Loop round: for
// ways so slow that -benchtime would allow only a round or two, too few
// for a median.
func timeRotatedN(b *testing.B, n int, ways []func(), after func(k int, t0, t1 time.Time)) [][]time.Duration {
	times := make([][]time.Duration, len(ways))
	order := make([]int, len(ways))
	for b.Loop() {
		for range n {
			for j := range order {
				order[j] = j
			}
			rand.Shuffle(len(order), func(a, c int) { order[a], order[c] = order[c], order[a] })
			for _, k := range order {
				t0 := time.Now()
				ways[k]()
				t1 := time.Now()
				times[k] = append(times[k], t1.Sub(t0))
				if after != nil {
					after(k, t0, t1)
				}
			}
		}
	}
	return times
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
