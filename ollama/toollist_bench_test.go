package ollama_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// listSizes are the model counts BenchmarkToolsListBackends serves.
var listSizes = []int{100, 250, 500, 1000}

// listPaths are the ways BenchmarkToolsListBackends lists tools, each a
// client that reads the reply's bytes without decoding them (a real client
// is another program, whose decoding is its own cost), except "client":
//
//   - stdio: membrane's stdio transport (ResilientStdioTransport) over
//     pipes, a 2025-11-25 session;
//   - http: a stateful 2025-11-25 session over HTTP on loopback;
//   - modern: the sessionless 2026-07-28 protocol over HTTP;
//   - sdk: the stateful session's list taken through go-sdk's encoding
//     every time (params the list cache leaves to the SDK), which is what
//     the first list after every change of the tool set costs;
//   - client: a go-sdk client in this process (in-memory transport), whose
//     decoding of the list counts too: what the benchmark measured before
//     it split the paths.
var listPaths = []string{"stdio", "http", "modern", "sdk", "client"}

// BenchmarkToolsListBackends serves 100, 250, 500 and 1,000 models spread
// over three real OpenAI-compatible servers (Ollama's /v1) through three
// backends, one membrane server (Models, router, MCP server) per size, and
// lists each size's tools on every path (listPaths) in every iteration,
// sizes and paths interleaved, so that the machine's load falls on all of
// them alike. For each path:
//
//   - <path>_µs_per_tool and <path>_cpu_µs_per_tool: the growth of one
//     list's median time and median process CPU time (user and system:
//     what a loaded machine stretches less) per tool, a least-squares
//     slope over the sizes;
//   - <path>_ms: the median time of one list of the largest size;
//   - <path>_growth: the time per tool at the largest size over that at
//     the smallest (1: it grows linearly; more: faster).
//
// And for memory: heap_KiB_per_tool, the slope of the heap a size's
// membrane server retains (after a GC, its caches full), and rss_MiB, the
// process's resident size at the end (the clients' buffers and the other
// sizes' servers included: the heap is the server's own measure).
// list_KiB_per_tool is the size of
// the encoded list per tool. The log has the table of every size.
func BenchmarkToolsListBackends(b *testing.B) {
	const servers = 3
	var srvs []*ollamatest.Server
	for range servers {
		srvs = append(srvs, ollamatest.Start(b))
	}
	type size struct {
		tools int
		heap  int64
		bytes int
		list  map[string]func() []byte
		ref   map[string][sha256.Size]byte // of each path's list
		times map[string][]time.Duration
		cpu   map[string][]time.Duration
	}
	var sizes []*size
	created := 0
	for _, total := range listSizes {
		for ; created < total; created++ {
			srvs[created%servers].Create(b, fmt.Sprintf("model-%04d:latest", created), ollamatest.ChatModel())
		}
		// The clients' buffers are made first, big enough for every
		// list, so that the heap measured is the server's alone.
		spare := make([][]byte, 6)
		for i := range spare {
			spare[i] = make([]byte, 0, (total+3)*5<<10)
		}
		runtime.GC()
		heap0 := heapLive()
		r := calls.NewRouter(nil)
		var bs []ollama.Backend
		for i, s := range srvs {
			bs = append(bs, ollama.Backend{Name: fmt.Sprintf("b%d", i), URL: s.URL})
		}
		m, err := ollama.New(ollama.Config{Hosts: []string{"127.0.0.1:1"}, Backends: bs}, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		m.Refresh(b.Context()) // the Ollama host is down on purpose
		sz := &size{tools: r.Len(), list: listers(b, r, spare), ref: map[string][sha256.Size]byte{},
			times: map[string][]time.Duration{}, cpu: map[string][]time.Duration{}}
		if sz.tools != total+3 { // the generic tools
			b.Fatalf("%d tools for %d models", sz.tools, total)
		}
		for _, p := range listPaths {
			if p == "client" {
				continue
			}
			got := sz.list[p]()
			if p != "sdk" {
				got = sz.list[p]() // now from the cache, where there is one
			}
			sz.ref[p] = sha256.Sum256(got)
			if p == "http" {
				sz.bytes = len(got)
			}
			listed := 0
			for line := range bytes.Lines(got) {
				var msg struct {
					Result struct {
						Tools []json.RawMessage `json:"tools"`
					} `json:"result"`
				}
				if err := json.Unmarshal(line, &msg); err != nil {
					b.Fatalf("%s, %d tools: %v: %.200s", p, sz.tools, err, line)
				}
				listed += len(msg.Result.Tools)
			}
			if listed != sz.tools {
				b.Fatalf("%s, %d tools: %d listed: %.200s", p, sz.tools, listed, got)
			}
		}
		runtime.GC()
		sz.heap = heapLive() - heap0
		runtime.KeepAlive(m)
		sz.list["client"] = clientLister(b, r, sz.tools)
		sizes = append(sizes, sz)
	}

	for i := 0; b.Loop(); i++ {
		for j := range sizes {
			sz := sizes[(i+j)%len(sizes)]
			for k := range listPaths {
				p := listPaths[(i+k)%len(listPaths)]
				c0, t0 := cpuTime(), time.Now()
				got := sz.list[p]()
				t1, c1 := time.Now(), cpuTime()
				if p != "client" && sha256.Sum256(got) != sz.ref[p] {
					b.Fatalf("%s, %d tools: the list changed: %.200s", p, sz.tools, got)
				}
				sz.times[p] = append(sz.times[p], t1.Sub(t0))
				sz.cpu[p] = append(sz.cpu[p], c1-c0)
			}
		}
	}

	tools := make([]float64, len(sizes))
	heap := make([]float64, len(sizes))
	for i, sz := range sizes {
		tools[i], heap[i] = float64(sz.tools), float64(sz.heap)/1024
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-6s %6s %12s %12s %12s\n", "path", "tools", "median_µs", "cpu_µs", "µs_per_tool")
	for _, p := range listPaths {
		ts, cs := make([]float64, len(sizes)), make([]float64, len(sizes))
		for i, sz := range sizes {
			ts[i] = float64(median(sz.times[p]).Microseconds())
			cs[i] = float64(median(sz.cpu[p]).Microseconds())
			fmt.Fprintf(&table, "%-6s %6d %12.0f %12.0f %12.2f\n", p, sz.tools, ts[i], cs[i], ts[i]/tools[i])
		}
		last := len(sizes) - 1
		b.ReportMetric(slope(tools, ts), p+"_µs_per_tool")
		b.ReportMetric(slope(tools, cs), p+"_cpu_µs_per_tool")
		b.ReportMetric(ts[last]/1000, p+"_ms")
		b.ReportMetric((ts[last]/tools[last])/(ts[0]/tools[0]), p+"_growth")
	}
	for _, sz := range sizes {
		fmt.Fprintf(&table, "heap %6d tools: %8.0f KiB retained, list %7d bytes\n", sz.tools, float64(sz.heap)/1024, sz.bytes)
	}
	b.Logf("lists per path and size (medians of %d):\n%s", len(sizes[0].times["http"]), table.String())
	last := sizes[len(sizes)-1]
	b.ReportMetric(slope(tools, heap), "heap_KiB_per_tool")
	b.ReportMetric(float64(last.bytes)/1024/float64(last.tools), "list_KiB_per_tool")
	b.ReportMetric(rssMiB(), "rss_MiB")
	b.ReportMetric(0, "ns/op")
}

// heapLive is the heap the last GC found live (the caller runs one).
func heapLive() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(ys))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// listers serves r over each raw path of listPaths and returns, for each,
// a function that lists the tools once and returns the JSON-RPC message of
// the reply as it came.
func listers(b *testing.B, r *calls.Router, spare [][]byte) map[string]func() []byte {
	b.Helper()
	srv := mcp.NewServer(r, nil)
	h, err := srv.HTTPHandler(nil)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(h)
	b.Cleanup(func() { ts.Close(); srv.Close() })
	hc := ts.Client()
	buf := bytes.NewBuffer(spare[0])
	post := func(body string, hdr map[string]string) []byte {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		buf.Reset()
		if _, err := buf.ReadFrom(resp.Body); err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode/100 != 2 {
			b.Fatalf("%s: %d %.200s", body, resp.StatusCode, buf.Bytes())
		}
		if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
			hdr["Mcp-Session-Id"] = sid
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			for line := range bytes.SplitSeq(buf.Bytes(), []byte("\n")) {
				if bytes.HasPrefix(line, []byte(`data: {"jsonrpc":"2.0","id":`)) {
					return line[len("data: "):]
				}
			}
			b.Fatalf("no reply in the event stream: %.200s", buf.Bytes())
		}
		return bytes.TrimSpace(buf.Bytes())
	}
	const version = "2025-11-25"
	session := map[string]string{"Mcp-Protocol-Version": version}
	post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`, session)
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, session)
	const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`
	modern := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}
	stdio := stdioLister(b, srv, spare[1])
	// params are a request's params, with the cursor of a later page.
	params := func(meta, cursor string) string {
		if cursor == "" {
			return `{` + meta + `}`
		}
		if meta != "" {
			meta = "," + meta
		}
		return `{"cursor":"` + cursor + `"` + meta + `}`
	}
	return map[string]func() []byte{
		"stdio": pages(spare[2], stdio),
		"http": pages(spare[3], func(cursor string) []byte {
			return post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":`+params("", cursor)+`}`, session)
		}),
		"modern": pages(spare[4], func(cursor string) []byte {
			return post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":`+params(modernMeta, cursor)+`}`, modern)
		}),
		// A progress token: the cache leaves the request to the SDK.
		"sdk": pages(spare[5], func(cursor string) []byte {
			return post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":`+params(`"_meta":{"progressToken":"p"}`, cursor)+`}`, session)
		}),
	}
}

// pages lists every page with page (given the cursor, "" for the first),
// as a client does when a list has more than the server's page size
// (go-sdk's is 1,000), and returns the replies, one a line.
func pages(all []byte, page func(cursor string) []byte) func() []byte {
	return func() []byte {
		all = all[:0]
		for cursor := ""; ; {
			msg := page(cursor)
			all = append(append(all, msg...), '\n')
			// The cursor comes before the tools; it is base64, never
			// escaped.
			head := msg[:min(len(msg), 512)]
			i := bytes.Index(head, []byte(`"nextCursor":"`))
			if i < 0 {
				return all
			}
			rest := head[i+len(`"nextCursor":"`):]
			cursor = string(rest[:bytes.IndexByte(rest, '"')])
		}
	}
}

// stdioLister serves srv over membrane's stdio transport on pipes, opens a
// 2025-11-25 session and returns a function that lists the tools and
// returns the reply's line (for the page at cursor, "" the first).
func stdioLister(b *testing.B, srv *mcp.Server, line []byte) func(cursor string) []byte {
	b.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(ctx, &mcp.ResilientStdioTransport{In: inR, Out: outW})
	}()
	b.Cleanup(func() { cancel(); inW.Close(); outR.Close(); <-done })
	rd := bufio.NewReaderSize(outR, 64<<10)
	// reply writes msg and returns the line of the reply to id.
	reply := func(msg string, id string) []byte {
		if _, err := io.WriteString(inW, msg+"\n"); err != nil {
			b.Fatal(err)
		}
		if id == "" {
			return nil
		}
		for {
			line = line[:0]
			for {
				chunk, err := rd.ReadSlice('\n')
				line = append(line, chunk...)
				if err == bufio.ErrBufferFull {
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				break
			}
			if bytes.HasPrefix(line, []byte(`{"jsonrpc":"2.0","id":`+id+`,`)) {
				return bytes.TrimSpace(line)
			}
		}
	}
	reply(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`, "0")
	reply(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, "")
	return func(cursor string) []byte {
		if cursor != "" {
			return reply(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"`+cursor+`"}}`, "1")
		}
		return reply(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "1")
	}
}

// clientLister connects a go-sdk client to r in this process and returns
// a function that lists the tools through it (checking that there are
// want), returning nil.
func clientLister(b *testing.B, r *calls.Router, want int) func() []byte {
	b.Helper()
	cs := mcptest.Connect(b, r, nil)
	return func() []byte {
		n := 0
		for _, err := range cs.Tools(b.Context(), nil) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != want {
			b.Fatalf("the go-sdk client listed %d tools, want %d", n, want)
		}
		return nil
	}
}
