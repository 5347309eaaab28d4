package ollama_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// BenchmarkBackendChatOverhead sends one chat to a real OpenAI-compatible
// server (Ollama's /v1) in turn (the order rotates) straight to it, read to
// its [DONE], and through membrane, over each transport a client uses:
//
//   - inmemory: go-sdk's in-memory transport to a server in this process,
//     with a third way, the router without MCP (router_µs), to tell this
//     package's share from the MCP adapter's;
//   - stdio: the membrane binary as a subprocess on its stdin and stdout,
//     as Claude Desktop runs it;
//   - http and http-2025-11-25: the membrane binary serving streamable
//     HTTP on loopback, to a client of the newest protocol (no session)
//     and to one of the newest with sessions;
//   - prose-inmemory, prose-stdio and prose-http: the same with a model
//     that answers 200 tokens (proseAnswer), the length of a real answer,
//     where the others' answer of 6 tokens (about 4 ms) is the worst case
//     for membrane's fixed costs.
//
// The straight request is the very body membrane sends, captured from one
// call through a recording proxy before the timing, so both ask the server
// for the same work. ratio is the median through membrane over the median
// straight; router_ratio the same without MCP. The target is 1.05.
//
// In inmemory the MCP share is split three ways (medians): sdk_in_µs from
// the client's CallTool to the go-sdk server handing the request to
// membrane's middleware (client encoding, the in-memory transport, the
// SDK's decoding and dispatch); adapter_µs, membrane's middleware and tool
// handler around the router; sdk_out_µs from membrane's result back to the
// client's return; mcp_router_µs is the router's share of a call through
// MCP, to set against router_µs. No call sends a progress token, so no
// progress notification is part of any of them.
func BenchmarkBackendChatOverhead(b *testing.B) {
	srv := ollamatest.Start(b)
	srv.Create(b, "scripted:latest", scripted())
	srv.Create(b, "prose:latest", ollamatest.ScriptedModel(ollamatest.Script{Answer: proseAnswer}))
	prompt := "What did the command print?"
	hc := &http.Client{}
	// chat is one model's pair of ways: straight, with the body membrane
	// sends for tool, and through a session; both check the whole answer.
	type chat struct {
		direct    func()
		tool      string
		answer    string
		viaClient func(cs *sdk.ClientSession) func()
		rounds    int // of the ways per b.Loop round (timeRotatedN)
	}
	newChat := func(tool, answer string, rounds int) chat {
		body := capturedChatBody(b, srv.URL, tool, prompt)
		viaDirect := directChat(b, hc, srv.URL, body, answer)
		viaSession := func(cs *sdk.ClientSession) func() {
			return func() {
				res, err := cs.CallTool(b.Context(), &sdk.CallToolParams{Name: tool, Arguments: map[string]any{"prompt": prompt}})
				if err != nil || res.IsError || strings.TrimSpace(firstText(res)) != strings.TrimSpace(answer) {
					b.Fatalf("membrane: %v %v", err, res)
				}
			}
		}
		viaDirect() // load the model
		return chat{direct: viaDirect, tool: tool, answer: answer, viaClient: viaSession, rounds: rounds}
	}
	tiny := newChat("chat_scripted", scriptAnswer, 1)
	// A prose chat takes 100 ms or more: fifteen rounds per b.Loop round
	// give -benchtime=2s a median of fifteen at least.
	prose := newChat("chat_prose", proseAnswer, 15)

	inMemory := func(b *testing.B, c chat) {
		r := calls.NewRouter(nil)
		m, err := ollama.New(ollama.Config{Hosts: []string{"127.0.0.1:1"}, Backends: []ollama.Backend{{Name: "friend", URL: srv.URL + "/v1"}}}, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		m.Refresh(b.Context()) // the Ollama host is down on purpose
		cs, ph := phasedConnect(b, r)
		viaMembrane := c.viaClient(cs)
		args, _ := json.Marshal(map[string]any{"prompt": prompt})
		viaRouter := func() {
			res, err := r.Call(b.Context(), c.tool, &calls.Request{Arguments: args})
			if err != nil || res.IsError || strings.TrimSpace(res.Content[0].Text) != strings.TrimSpace(c.answer) {
				b.Fatalf("router: %v %v", err, res)
			}
		}
		viaMembrane()

		var sdkIn, adapter, sdkOut, inMCP []time.Duration
		times := timeRotatedN(b, c.rounds, []func(){c.direct, viaRouter, viaMembrane}, func(k int, t0, t1 time.Time) {
			if k == 2 {
				sdkIn = append(sdkIn, ph.sdkIn.Sub(t0))
				adapter = append(adapter, ph.sdkOut.Sub(ph.sdkIn)-ph.routerOut.Sub(ph.routerIn))
				sdkOut = append(sdkOut, t1.Sub(ph.sdkOut))
				inMCP = append(inMCP, ph.routerOut.Sub(ph.routerIn))
			}
		})
		b.ReportMetric(float64(median(sdkIn).Microseconds()), "sdk_in_µs")
		b.ReportMetric(float64(median(adapter).Microseconds()), "adapter_µs")
		b.ReportMetric(float64(median(sdkOut).Microseconds()), "sdk_out_µs")
		b.ReportMetric(float64(median(inMCP).Microseconds()), "mcp_router_µs")
		md, mr := median(times[0]), median(times[1])
		b.ReportMetric(float64(mr.Microseconds()), "router_µs")
		b.ReportMetric(float64(mr)/float64(md), "router_ratio")
		reportRatio(b, md, median(times[2]))
	}
	b.Run("inmemory", func(b *testing.B) { inMemory(b, tiny) })

	// The binary, on the same server: the Ollama host is a closed port.
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	args := []string{"--ollama-host", "127.0.0.1:1", "--openai-backend", "friend=" + srv.URL + "/v1"}
	// Not the closed Ollama port's warning; a store of this run's own (the
	// default store is on, as for a user, but not the user's file, which
	// binaries run side by side would fight over).
	env := []string{"MEMBRANE_LOG_LEVEL=error", "XDG_STATE_HOME=" + b.TempDir()}
	overBinary := func(b *testing.B, c chat, cs *sdk.ClientSession) {
		viaMembrane := c.viaClient(cs)
		waitForTool(b, cs, c.tool)
		viaMembrane()
		times := timeRotatedN(b, c.rounds, []func(){c.direct, viaMembrane}, nil)
		reportRatio(b, median(times[0]), median(times[1]))
	}
	b.Run("stdio", func(b *testing.B) {
		overBinary(b, tiny, mcptest.ConnectStdio(b, bin, args, env, nil))
	})
	// One binary serves both HTTP sub-benchmarks.
	httpURL := startHTTPBinary(b, bin, args, env)
	// The newest protocol (2026-07-28: no session, every call its own
	// request), and the newest with sessions, which most HTTP clients speak.
	b.Run("http", func(b *testing.B) {
		overBinary(b, tiny, mcptest.ConnectHTTP(b, httpURL, "", nil))
	})
	b.Run("http-2025-11-25", func(b *testing.B) {
		overBinary(b, tiny, mcptest.ConnectHTTPVersion(b, httpURL, "", "2025-11-25", nil))
	})

	// The same three ways for an answer of a realistic length: the fixed
	// costs above against a chat of 200 tokens rather than 6.
	b.Run("prose-inmemory", func(b *testing.B) { inMemory(b, prose) })
	b.Run("prose-stdio", func(b *testing.B) {
		overBinary(b, prose, mcptest.ConnectStdio(b, bin, args, env, nil))
	})
	b.Run("prose-http", func(b *testing.B) {
		overBinary(b, prose, mcptest.ConnectHTTP(b, httpURL, "", nil))
	})
}

// proseAnswer is the prose model's answer, 200 tokens of one word each
// (the scripted model makes a token of every distinct word), about the
// length of a real model's answer of a paragraph or two.
var proseAnswer = func() string {
	var s strings.Builder
	for i := range 200 {
		fmt.Fprintf(&s, " word%d", i)
	}
	return s.String()
}()

// startHTTPBinary runs bin with args serving streamable HTTP on a free
// loopback port until the benchmark ends, and returns its MCP endpoint.
func startHTTPBinary(b *testing.B, bin string, args, env []string) string {
	url, _ := startHTTPBinaryPID(b, bin, args, env)
	return url
}

// startHTTPBinaryPID is startHTTPBinary that also returns the process id.
func startHTTPBinaryPID(b *testing.B, bin string, args, env []string) (string, int) {
	addr := mcptest.FreeAddr(b)
	cmd := exec.Command(bin, append([]string{"--http", addr}, args...)...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if b.Failed() {
			b.Logf("membrane stderr:\n%s", stderr.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + addr + "/mcp", cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("membrane --http %s did not come up: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// directChat returns a chat straight to the OpenAI-compatible server at
// base with body, read to its end, that fails b unless it answers answer.
func directChat(b *testing.B, hc *http.Client, base string, body []byte, answer string) func() {
	return func() {
		resp, err := hc.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if got := readDeltas(resp.Body); strings.TrimSpace(got) != strings.TrimSpace(answer) {
			b.Fatalf("direct: %q", got)
		}
	}
}

// readDeltas reads an OpenAI chat completion stream to its end and returns
// the content of its deltas.
func readDeltas(r io.Reader) string {
	var got strings.Builder
	sc := bufio.NewScanner(r)
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
	return got.String()
}

// reportRatio reports the medians of the straight and the membrane way,
// their ratio (the target's measure) and the difference.
func reportRatio(b *testing.B, direct, membrane time.Duration) {
	b.ReportMetric(float64(direct.Microseconds()), "direct_µs")
	b.ReportMetric(float64(membrane.Microseconds()), "membrane_µs")
	b.ReportMetric(float64(membrane)/float64(direct), "ratio")
	b.ReportMetric(float64((membrane - direct).Microseconds()), "overhead_µs")
}

// waitForTool waits until cs lists the tool name: the binary finds the
// backend's models after it starts serving.
func waitForTool(b *testing.B, cs *sdk.ClientSession, name string) {
	b.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		for t, err := range cs.Tools(b.Context(), nil) {
			if err == nil && t.Name == name {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the binary does not serve %s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// phases are the moments of the last tools/call through phasedConnect's
// server: when the go-sdk handed it to membrane and took the result back
// (sdkIn, sdkOut), and when membrane's router started and ended it.
// Calls are made one at a time, so plain fields do.
type phases struct {
	sdkIn, sdkOut, routerIn, routerOut time.Time
}

// phaseRouter is r, noting when each call enters and leaves it.
type phaseRouter struct {
	*calls.Router
	ph *phases
}

func (p phaseRouter) Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error) {
	p.ph.routerIn = time.Now()
	defer func() { p.ph.routerOut = time.Now() }()
	return p.Router.Call(ctx, name, req)
}

// phasedConnect is mcptest.Connect, with the moments of each tools/call
// noted: an outermost receiving middleware on the SDK server times what
// membrane's adapter does, and the router is wrapped to time the call.
func phasedConnect(b *testing.B, r *calls.Router) (*sdk.ClientSession, *phases) {
	b.Helper()
	ph := &phases{}
	srv := mcp.NewServer(phaseRouter{r, ph}, &mcp.ServerOptions{Name: "membrane", Version: "test"})
	srv.SDK().AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if method != "tools/call" {
				return next(ctx, method, req)
			}
			ph.sdkIn = time.Now()
			defer func() { ph.sdkOut = time.Now() }()
			return next(ctx, method, req)
		}
	})
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.SDK().Connect(context.Background(), st, nil)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close(); ss.Wait(); srv.Close() })
	return cs, ph
}

// capturedChatBody is the request body membrane sends to an
// OpenAI-compatible server at base for one call of tool with prompt, read
// through a recording proxy.
func capturedChatBody(b *testing.B, base, tool, prompt string) []byte {
	b.Helper()
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	var (
		mu   sync.Mutex
		body []byte
	)
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v1/chat/completions" {
			raw, _ := io.ReadAll(req.Body)
			mu.Lock()
			body = raw
			mu.Unlock()
			req.Body = io.NopCloser(bytes.NewReader(raw))
		}
		rp.ServeHTTP(w, req)
	}))
	defer rec.Close()
	r := calls.NewRouter(nil)
	m, err := ollama.New(ollama.Config{Hosts: []string{"127.0.0.1:1"}, Backends: []ollama.Backend{{Name: "friend", URL: rec.URL + "/v1"}}}, r, nil)
	if err != nil {
		b.Fatal(err)
	}
	m.Refresh(b.Context())
	args, _ := json.Marshal(map[string]any{"prompt": prompt})
	res, err := r.Call(b.Context(), tool, &calls.Request{Arguments: args})
	if err != nil || res.IsError {
		b.Fatalf("capturing the request: %v %v", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Contains(body, []byte(prompt)) {
		b.Fatalf("captured request lacks the prompt: %s", body)
	}
	return body
}

// cpuTime is the CPU time this process has used (0 where getrusage is
// missing).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
