package ollama

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// BenchmarkDiscovery measures, for a fake host with n models (capabilities
// only in /api/show, as Ollama v0.6.5 sends them), one cold discovery (list,
// n /api/show requests, naming, one router Sync), a warm refresh (nothing
// changed, everything cached), and tools/list through a real MCP client;
// with the heap the live set holds and the process RSS. Compare the rows to
// see how each grows with n.
func BenchmarkDiscovery(b *testing.B) {
	for _, n := range []int{50, 500, 2000} {
		b.Run(fmt.Sprintf("models=%d", n), func(b *testing.B) {
			ms := make([]fakeModel, n)
			for i := range ms {
				if i%5 == 4 {
					ms[i] = embedModelFake(fmt.Sprintf("embed-%04d:latest", i), 768)
				} else {
					ms[i] = chatModelFake(fmt.Sprintf("hf.co/org/model-%04d:Q4_K_M", i))
				}
			}
			f := newFake(b, ms...)
			var cold, warm, list time.Duration
			var heap uint64
			for b.Loop() {
				var before runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)

				r := calls.NewRouter(nil)
				m, err := New(Config{Hosts: []string{f.URL}}, r, nil)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if err := m.Refresh(b.Context()); err != nil {
					b.Fatal(err)
				}
				cold += time.Since(t0)
				if r.Len() != n+3 {
					b.Fatalf("%d tools for %d models", r.Len(), n)
				}
				t0 = time.Now()
				if err := m.Refresh(b.Context()); err != nil {
					b.Fatal(err)
				}
				warm += time.Since(t0)

				var after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap += after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)

				cs := mcptest.Connect(b, r, nil)
				t0 = time.Now()
				got := 0
				for _, err := range cs.Tools(b.Context(), nil) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				list += time.Since(t0)
				if got != n+3 {
					b.Fatalf("tools/list returned %d tools, want %d", got, n+3)
				}
				cs.Close()
				runtime.KeepAlive(m)
			}
			k := float64(b.N)
			b.ReportMetric(float64(cold.Microseconds())/k/1000, "cold_ms")
			b.ReportMetric(float64(warm.Microseconds())/k/1000, "warm_ms")
			b.ReportMetric(float64(list.Microseconds())/k/1000, "tools_list_ms")
			b.ReportMetric(float64(heap)/k/float64(n)/1024, "heap_KiB/model")
			b.ReportMetric(float64(rssKiB())/1024, "rss_MiB")
		})
	}
}

// rssKiB reads the process's resident set size from /proc (Linux); 0
// elsewhere.
func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// BenchmarkCallOverheadFake isolates this package's own cost per chat call:
// the same request to an NDJSON fake that answers at once, straight through
// api.Client and through the router and chat tool (argument checks, queue,
// host choice, streaming, result). The fake has no model to hide behind, so
// the difference is what membrane adds before MCP.
func BenchmarkCallOverheadFake(b *testing.B) {
	f := newFake(b, chatModelFake("m:latest"))
	m, r := newModels(b, Config{Hosts: []string{f.URL}})
	if err := m.Refresh(b.Context()); err != nil {
		b.Fatal(err)
	}
	direct := api.NewClient(mustURL(b, f.URL), newHTTPClient())
	args, _ := json.Marshal(map[string]any{"prompt": "hi"})
	ways := []func(){
		func() {
			var got string
			err := direct.Chat(b.Context(), &api.ChatRequest{Model: "m:latest", Messages: []api.Message{{Role: "user", Content: "hi"}}},
				func(r api.ChatResponse) error { got += r.Message.Content; return nil })
			if err != nil || got != "Hello world" {
				b.Fatal(err, got)
			}
		},
		func() {
			res, err := r.Call(b.Context(), "chat_m", &calls.Request{Arguments: args})
			if err != nil || res.IsError {
				b.Fatal(err, res.TextOf())
			}
		},
	}
	times := make([][]time.Duration, 2)
	for i := 0; b.Loop(); i++ {
		for j := range ways {
			k := (i + j) % 2
			t0 := time.Now()
			ways[k]()
			times[k] = append(times[k], time.Since(t0))
		}
	}
	d, v := medianOf(times[0]), medianOf(times[1])
	b.ReportMetric(float64(d.Microseconds()), "direct_µs")
	b.ReportMetric(float64(v.Microseconds()), "router_µs")
	b.ReportMetric(float64((v - d).Microseconds()), "overhead_µs")
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func mustURL(tb testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}
