package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcpload"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// The benchmarks run the real binary and divide by a baseline measured in
// the same run: a bare go-sdk server with one no-op tool (testdata/sdkserver)
// and, for round trips, the go-sdk in-memory transport. membrane's no-op is
// sh with an unknown argument: decoded, refused and answered as a tool error
// without starting a process, the same shape as the baseline's tool.

// The tool names of the no-op calls. Params are made afresh for each call:
// the SDK client writes the session's protocol version into their _meta, so
// params reused on another session carry the wrong one.
const (
	membraneNoop = "sh"
	sdkNoop      = "noop"
)

func benchBinaries(b *testing.B) (membrane, baseline string) {
	return mcptest.BuildBinary(b, "./cmd/membrane"), mcptest.BuildBinary(b, "./cmd/membrane/testdata/sdkserver")
}

func connectCmd(b *testing.B, bin string, args ...string) *sdk.ClientSession {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "MEMBRANE_LOG_LEVEL=warn")
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench"}, nil).Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}

func inMemoryBaseline(b *testing.B) *sdk.ClientSession {
	s := sdk.NewServer(&sdk.Implementation{Name: "bare", Version: "1"}, nil)
	s.AddTool(&sdk.Tool{Name: "noop", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}, nil
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

func perCall(b *testing.B, cs *sdk.ClientSession, tool string, n int) time.Duration {
	start := time.Now()
	for range n {
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: map[string]any{"nope": 1}})
		if err != nil || !res.IsError {
			b.Fatalf("no-op call: %v %v", res, err)
		}
	}
	return time.Since(start) / time.Duration(n)
}

// BenchmarkRoundTrip is one no-op tool call through membrane over stdio
// and over HTTP. x_inmem divides by the go-sdk in-memory call, x_bare by a
// bare go-sdk server on the same transport.
func BenchmarkRoundTrip(b *testing.B) {
	bin, base := benchBinaries(b)
	for _, tr := range []string{"stdio", "http"} {
		b.Run(tr, func(b *testing.B) {
			var cs, bare *sdk.ClientSession
			if tr == "stdio" {
				cs = connectCmd(b, bin, noOllama...)
				bare = connectCmd(b, base)
			} else {
				_, url := benchHTTP(b, bin, noOllama...)
				cs = mcptest.ConnectHTTP(b, url, "", nil)
				_, burl := benchHTTP(b, base)
				bare = mcptest.ConnectHTTP(b, burl, "", nil)

			}
			inmem := inMemoryBaseline(b)
			n := max(b.N, 200)
			perCall(b, cs, membraneNoop, 50)
			perCall(b, bare, sdkNoop, 50)
			perCall(b, inmem, sdkNoop, 50)
			b.ResetTimer()
			m := perCall(b, cs, membraneNoop, b.N)
			b.StopTimer()
			bb := perCall(b, bare, sdkNoop, n)
			im := perCall(b, inmem, sdkNoop, n)
			b.ReportMetric(float64(m.Nanoseconds())/1e3, "µs/call")
			b.ReportMetric(float64(m)/float64(im), "x_inmem")
			b.ReportMetric(float64(m)/float64(bb), "x_bare")
		})
	}
}

// benchHTTP starts bin --http on a free port and returns the process and
// its MCP URL.
func benchHTTP(b *testing.B, bin string, args ...string) (*exec.Cmd, string) {
	return benchHTTPEnv(b, bin, nil, args...)
}

// benchHTTPEnv is benchHTTP with env added to the process's environment.
func benchHTTPEnv(b *testing.B, bin string, env []string, args ...string) (*exec.Cmd, string) {
	ln := mcptest.FreeAddr(b)
	cmd := exec.Command(bin, append([]string{"--http", ln}, args...)...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "MEMBRANE_LOG_LEVEL=warn"), env...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + ln + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never came up", bin)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd, "http://" + ln + "/mcp"
}

// runLoad sends total requests of body to url from workers sessions.
func runLoad(b *testing.B, url string, workers, total int, body string) *mcpload.Result {
	res, err := mcpload.Run(b.Context(), mcpload.Options{URL: url, Sessions: workers, Requests: total, Body: []byte(body)})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// BenchmarkHTTPLoad drives membrane over HTTP with 50 concurrent sessions,
// for tools/list and a no-op call, and the bare go-sdk server the same way:
// req/s, p99 and errors for membrane, and its throughput as a share of the
// baseline's (x_bare_rps).
func BenchmarkHTTPLoad(b *testing.B) {
	bin, base := benchBinaries(b)
	_, url := benchHTTP(b, bin, noOllama...)
	_, burl := benchHTTP(b, base)
	const workers = 50
	for _, tc := range []struct{ name, body, baseBody string }{
		{"tools_list", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`},
		{"noop_call", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"sh","arguments":{"nope":1}}}`,
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"noop","arguments":{"nope":1}}}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			total := max(b.N, 2000)
			runLoad(b, url, workers, 200, tc.body) // warm up
			b.ResetTimer()
			m := runLoad(b, url, workers, total, tc.body)
			b.StopTimer()
			bb := runLoad(b, burl, workers, total, tc.baseBody)
			b.ReportMetric(m.RPS(), "req/s")
			b.ReportMetric(float64(m.Percentile(99).Microseconds())/1e3, "p99_ms")
			b.ReportMetric(float64(m.Errors), "errors")
			b.ReportMetric(bb.RPS(), "bare_req/s")
			b.ReportMetric(m.RPS()/bb.RPS(), "x_bare_rps")
		})
	}
}

// startToList launches bin over stdio, sends initialize, then initialized
// and tools/list, and returns the time from the start to the tools/list
// reply: what a client waits for before it can offer the tools to a model.
func startToList(b *testing.B, bin string, args ...string) time.Duration {
	start := time.Now()
	_, cmd, stdin, r := launchInit(b, bin, args...)
	defer func() { stdin.Close(); cmd.Wait() }()
	io.WriteString(stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"+`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`+"\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatalf("tools/list: %v", err)
		}
		if strings.HasPrefix(line, `{"jsonrpc":"2.0","id":2,`) {
			if !strings.Contains(line, `"tools"`) {
				b.Fatalf("tools/list: %s", line)
			}
			return time.Since(start)
		}
	}
}

// startToInit launches bin over stdio, sends initialize and returns the
// time to the reply and the process (still running).
func startToInit(b *testing.B, bin string, args ...string) (time.Duration, *exec.Cmd, io.WriteCloser) {
	d, cmd, stdin, _ := launchInit(b, bin, args...)
	return d, cmd, stdin
}

// launchInit is startToInit, also returning the reader of the process's
// stdout for what follows.
func launchInit(b *testing.B, bin string, args ...string) (time.Duration, *exec.Cmd, io.WriteCloser, *bufio.Reader) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "MEMBRANE_LOG_LEVEL=warn")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`+"\n")
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	d := time.Since(start)
	if err != nil || !strings.Contains(line, `"result"`) {
		b.Fatalf("initialize: %q %v", line, err)
	}
	return d, cmd, stdin, r
}

func rssMB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkStartup measures process start to the initialize reply over
// stdio with no Ollama reachable, and the idle RSS after it, for membrane
// and the bare go-sdk server.
func BenchmarkStartup(b *testing.B) {
	bin, base := benchBinaries(b)
	measure := func(bin string, args ...string) (time.Duration, float64) {
		var total time.Duration
		var rss float64
		n := max(b.N, 5)
		for i := range n {
			d, cmd, stdin := startToInit(b, bin, args...)
			total += d
			if i == n-1 {
				time.Sleep(300 * time.Millisecond) // idle
				rss = rssMB(cmd.Process.Pid)
			}
			stdin.Close()
			cmd.Wait()
		}
		return total / time.Duration(n), rss
	}
	measure(bin, noOllama...) // warm the page cache
	b.ResetTimer()
	m, mrss := measure(bin, noOllama...)
	b.StopTimer()
	bb, brss := measure(base)
	b.ReportMetric(float64(m.Microseconds())/1e3, "ms_to_init")
	b.ReportMetric(float64(m)/float64(bb), "x_bare")
	b.ReportMetric(mrss, "idle_rss_MB")
	b.ReportMetric(brss, "bare_rss_MB")
}

// BenchmarkShTrueHandleVsSession is `sh true` over HTTP with the
// sessionless protocol (2026-07-28) and a workspace handle, against the
// same call of a 2025-11-25 client in a session, on one membrane. The two
// alternate call by call, so that load on the machine falls on both
// alike; x_session is the ratio (target: at most 1.10).
func BenchmarkShTrueHandleVsSession(b *testing.B) {
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	_, url := benchHTTP(b, bin, noOllama...)
	connect := func(version string) *sdk.ClientSession {
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench"}, nil).Connect(b.Context(),
			&sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, &sdk.ClientSessionOptions{ProtocolVersion: version})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cs.Close() })
		return cs
	}
	modern, old := connect(newProto), connect("2025-11-25")
	if modern.ID() != "" || old.ID() == "" {
		b.Fatalf("sessions: %q (want none), %q (want one)", modern.ID(), old.ID())
	}
	sh := func(cs *sdk.ClientSession, args map[string]any) (*sdk.CallToolResult, time.Duration) {
		start := time.Now()
		res, err := cs.CallTool(b.Context(), &sdk.CallToolParams{Name: "sh", Arguments: args})
		d := time.Since(start)
		if err != nil || res.IsError {
			b.Fatalf("sh true: %v %v", err, mcptest.TextOf(res))
		}
		return res, d
	}
	first, _ := sh(modern, map[string]any{"cmd": "true"})
	handle, _ := first.StructuredContent.(map[string]any)["workspace"].(string)
	if handle == "" {
		b.Fatal("no workspace handle in the first sessionless result")
	}
	withHandle := map[string]any{"cmd": "true", "workspace": handle}
	for range 5 {
		sh(modern, withHandle)
		sh(old, map[string]any{"cmd": "true"})
	}
	n := max(b.N, 30)
	var tm, to time.Duration
	b.ResetTimer()
	for i := range n {
		if i%2 == 0 {
			_, d := sh(modern, withHandle)
			tm += d
			_, d = sh(old, map[string]any{"cmd": "true"})
			to += d
		} else {
			_, d := sh(old, map[string]any{"cmd": "true"})
			to += d
			_, d = sh(modern, withHandle)
			tm += d
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((tm/time.Duration(n)).Microseconds())/1e3, "ms/handle_call")
	b.ReportMetric(float64((to/time.Duration(n)).Microseconds())/1e3, "ms/session_call")
	b.ReportMetric(float64(tm)/float64(to), "x_session")
}

// BenchmarkFirstToolsList measures process start to the first tools/list
// reply over stdio (sh and python_run listed; no Ollama reachable), for
// membrane and the bare go-sdk server, interleaved. The target is 50 ms.
func BenchmarkFirstToolsList(b *testing.B) {
	bin, base := benchBinaries(b)
	startToList(b, bin, noOllama...) // warm the page cache
	startToList(b, base)
	n := max(b.N, 5)
	var m, bb time.Duration
	b.ResetTimer()
	for range n {
		m += startToList(b, bin, noOllama...)
		bb += startToList(b, base)
	}
	b.StopTimer()
	b.ReportMetric(float64((m/time.Duration(n)).Microseconds())/1e3, "ms_to_tools_list")
	b.ReportMetric(float64((bb/time.Duration(n)).Microseconds())/1e3, "bare_ms_to_tools_list")
	b.ReportMetric(float64(m)/float64(bb), "x_bare")
	b.ReportMetric(0, "ns/op")
}
