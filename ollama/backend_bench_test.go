package ollama_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// BenchmarkBackendChatOverhead sends one chat to a real OpenAI-compatible
// server (Ollama's /v1) two ways in each iteration: the streamed request
// straight to it, read to its [DONE], and through membrane (MCP client,
// server adapter, router, the backend's chat tool), and a third on the
// router without MCP (router_µs), to tell this package's share from the
// MCP adapter's. ratio is the median through membrane over the median
// straight; router_ratio the same without MCP. The target is 1.05.
func BenchmarkBackendChatOverhead(b *testing.B) {
	srv := ollamatest.Start(b)
	srv.Create(b, "scripted:latest", scripted())
	r := calls.NewRouter(nil)
	m, err := ollama.New(ollama.Config{Hosts: []string{"127.0.0.1:1"}, Backends: []ollama.Backend{{Name: "friend", URL: srv.URL + "/v1"}}}, r, nil)
	if err != nil {
		b.Fatal(err)
	}
	m.Refresh(b.Context()) // the Ollama host is down on purpose
	cs := mcptest.Connect(b, r, nil)
	prompt := "What did the command print?"
	body, _ := json.Marshal(map[string]any{
		"model": "scripted:latest", "stream": true, "stream_options": map[string]any{"include_usage": true},
		"messages": []map[string]any{{"role": "user", "content": prompt}},
	})
	hc := &http.Client{}
	viaDirect := func() {
		resp, err := hc.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var got strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			d, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || d == "[DONE]" {
				continue
			}
			var c struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
			}
			json.Unmarshal([]byte(d), &c)
			for _, ch := range c.Choices {
				got.WriteString(ch.Delta.Content)
			}
		}
		if strings.TrimSpace(got.String()) != strings.TrimSpace(scriptAnswer) {
			b.Fatalf("direct: %q", got.String())
		}
	}
	viaMembrane := func() {
		res, err := cs.CallTool(b.Context(), &sdk.CallToolParams{Name: "chat_scripted", Arguments: map[string]any{"prompt": prompt}})
		if err != nil || res.IsError || strings.TrimSpace(firstText(res)) != strings.TrimSpace(scriptAnswer) {
			b.Fatalf("membrane: %v %v", err, res)
		}
	}
	args, _ := json.Marshal(map[string]any{"prompt": prompt})
	viaRouter := func() {
		res, err := r.Call(b.Context(), "chat_scripted", &calls.Request{Arguments: args})
		if err != nil || res.IsError || strings.TrimSpace(res.Content[0].Text) != strings.TrimSpace(scriptAnswer) {
			b.Fatalf("router: %v %v", err, res)
		}
	}
	viaDirect() // load the model
	viaMembrane()

	ways := []func(){viaDirect, viaRouter, viaMembrane}
	times := make([][]time.Duration, len(ways))
	for i := 0; b.Loop(); i++ {
		for j := range ways {
			k := (i + j) % len(ways)
			t0 := time.Now()
			ways[k]()
			times[k] = append(times[k], time.Since(t0))
		}
	}
	md, mr, mm := median(times[0]), median(times[1]), median(times[2])
	b.ReportMetric(float64(md.Microseconds()), "direct_µs")
	b.ReportMetric(float64(mr.Microseconds()), "router_µs")
	b.ReportMetric(float64(mr)/float64(md), "router_ratio")
	b.ReportMetric(float64(mm.Microseconds()), "membrane_µs")
	b.ReportMetric(float64(mm)/float64(md), "ratio")
	b.ReportMetric(float64((mm - md).Microseconds()), "overhead_µs")
}

// BenchmarkToolsListBackends lists the tools of 500 models spread over
// three real OpenAI-compatible servers (Ollama's /v1), served through
// one, two and all three backends, to show how the time of one tools/list
// and membrane's memory grow with the models. list_µs_per_model and
// heap_KiB_per_model are the slopes; rss_MiB is the process's resident
// size after the listing.
func BenchmarkToolsListBackends(b *testing.B) {
	const total, servers = 500, 3
	var urls []string
	for s := range servers {
		srv := ollamatest.Start(b)
		for i := s; i < total; i += servers {
			srv.Create(b, fmt.Sprintf("model-%03d:latest", i), ollamatest.ChatModel())
		}
		urls = append(urls, srv.URL)
	}
	for n := 1; n <= servers; n++ {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			runtime.GC()
			heap0 := heapInUse()
			r := calls.NewRouter(nil)
			var bs []ollama.Backend
			for i := range n {
				bs = append(bs, ollama.Backend{Name: fmt.Sprintf("b%d", i), URL: urls[i]})
			}
			m, err := ollama.New(ollama.Config{Hosts: []string{"127.0.0.1:1"}, Backends: bs}, r, nil)
			if err != nil {
				b.Fatal(err)
			}
			m.Refresh(b.Context())
			cs := mcptest.Connect(b, r, nil)
			models := 0
			for b.Loop() {
				models = 0
				for _, err := range cs.Tools(b.Context(), nil) {
					if err != nil {
						b.Fatal(err)
					}
					models++
				}
			}
			models -= 3 // the generic tools
			want := 0
			for i := range total {
				if i%servers < n {
					want++
				}
			}
			if models != want {
				b.Fatalf("%d model tools, want %d", models, want)
			}
			runtime.GC()
			heap := heapInUse() - heap0
			per := float64(b.Elapsed().Microseconds()) / float64(b.N)
			b.ReportMetric(float64(models), "models")
			b.ReportMetric(per, "list_µs")
			b.ReportMetric(per/float64(models), "list_µs_per_model")
			b.ReportMetric(float64(heap)/1024/float64(models), "heap_KiB_per_model")
			b.ReportMetric(rssMiB(), "rss_MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// rssMiB is this process's resident set size from /proc (0 elsewhere).
func rssMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
