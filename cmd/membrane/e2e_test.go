package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// The end-to-end tests run the real binary as a client would.

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	return mcptest.BuildBinary(t, "./cmd/membrane")
}

// noOllama points membrane at a closed port, so that the tests do not
// depend on whatever listens on 11434.
var noOllama = []string{"--ollama-host", "127.0.0.1:1"}

// privateTmp returns a TMPDIR for one membrane process. When the tests run
// as root, sandboxes run as an unprivileged uid that must be able to reach
// the sandbox's directories in it, so it and its parent are made
// traversable.
func privateTmp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// launch starts the binary over stdio with a private TMPDIR and returns the
// session and the command.
func launch(t *testing.T, bin string, args []string, opts *sdk.ClientOptions) (*sdk.ClientSession, *exec.Cmd, string) {
	t.Helper()
	tmp := privateTmp(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TMPDIR="+tmp, "XDG_STATE_HOME="+t.TempDir())
	var stderr mcptest.SyncBuffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("membrane stderr:\n%s", stderr.String())
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "e2e", Version: "1"}, opts).
		Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatalf("launch: %v\n%s", err, stderr.String())
	}
	return cs, cmd, tmp
}

// sandboxWorks skips (or fails under MEMBRANE_REQUIRE_E2E) when sh answers
// that the sandbox cannot run here.
func sandboxWorks(t *testing.T, res *sdk.CallToolResult, text string) {
	t.Helper()
	if res.IsError && (strings.Contains(text, "bubblewrap") || strings.Contains(text, "bwrap")) {
		mcptest.Require(t, "the sandbox cannot run here: "+text)
	}
}

// assertNothingLeft checks that no process carrying marker runs and that
// the private TMPDIR holds nothing.
func assertNothingLeft(t *testing.T, marker, tmp string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs := processesWith(marker)
		ents, _ := os.ReadDir(tmp)
		if len(procs) == 0 && len(ents) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("left behind: processes %v, temp entries %v", procs, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// markers numbers the markers uniqueMarker makes.
var markers atomic.Int64

// uniqueMarker returns an argument for `sleep` (secs seconds and a
// fraction) that no other process on the machine carries: the fraction is
// this test process's pid and a count, at fixed widths. A test that looks
// for leftovers by marker (processesWith) then sees only its own, not
// those of the same test run at once by someone else.
func uniqueMarker(secs int) string {
	return fmt.Sprintf("%d.%07d%06d", secs, os.Getpid(), markers.Add(1))
}

// processesWith lists the pids whose command line contains s.
func processesWith(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestLeftoverCheckIgnoresStrangers: a process of someone else's run of
// the same tests (the marker the tests used before, and one made in
// another test process) is not this run's leftover; a process with this
// run's marker (the control) is.
func TestLeftoverCheckIgnoresStrangers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	mine := uniqueMarker(317)
	other := fmt.Sprintf("317.%07d%06d", os.Getpid()+1, markers.Load())
	if len(mine) != len(other) || mine == uniqueMarker(317) {
		t.Fatalf("markers %q, %q: want fixed widths and a new one each time", mine, other)
	}
	for _, m := range []string{"317.25", other, mine} {
		c := exec.Command("sleep", m)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { c.Process.Kill(); c.Wait() }()
	}
	if got := processesWith(mine); len(got) != 1 {
		t.Fatalf("processes with this run's marker: %v, want the one sleep", got)
	}
}

func toolSet(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// TestStdioEndToEnd launches membrane as Claude Desktop does, with no
// Ollama reachable, lists and calls the sandbox tools, leaves a call
// running, closes, and checks nothing is left behind.
func TestStdioEndToEnd(t *testing.T) {
	bin := binary(t)
	cs, cmd, tmp := launch(t, bin, noOllama, nil)
	init := cs.InitializeResult()
	if init.ServerInfo.Name != "membrane" || init.Capabilities.Tools == nil || !init.Capabilities.Tools.ListChanged {
		t.Errorf("initialize = %+v", init)
	}
	names := toolSet(t, cs)
	for _, want := range []string{"sh", "python_run"} {
		if !slices.Contains(names, want) {
			t.Fatalf("tools %v lack %s", names, want)
		}
	}
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "echo hello from $(basename $SHELL 2>/dev/null || echo sh)"})
	sandboxWorks(t, res, text)
	if res.IsError || !strings.Contains(text, "hello from") {
		t.Fatalf("sh = %q (isError %v)", text, res.IsError)
	}
	res, text = mcptest.CallText(t, cs, "python_run", map[string]any{"code": "print(6*7)"})
	if res.IsError || !strings.Contains(text, "42") {
		t.Errorf("python_run = %q (isError %v)", text, res.IsError)
	}

	// A call still running when the client goes away.
	marker := uniqueMarker(317)
	started := make(chan struct{})
	go func() {
		close(started)
		cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "sleep " + marker}})
	}()
	<-started
	deadline := time.Now().Add(10 * time.Second)
	for len(processesWith(marker)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(processesWith(marker)) == 0 {
		t.Fatal("the long call never started")
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("membrane exit state after end of input: %v, want 0", cmd.ProcessState)
	}
	assertNothingLeft(t, marker, tmp)
}

// TestSignalShutdown sends SIGTERM while a call runs: membrane cancels it,
// exits 0 and leaves nothing behind.
func TestSignalShutdown(t *testing.T) {
	bin := binary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cs, cmd, tmp := launch(t, bin, append([]string{"--shutdown-timeout", "5s"}, noOllama...), nil)
			res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "true"})
			sandboxWorks(t, res, text)
			marker := uniqueMarker(318)
			errc := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "sleep " + marker}})
				errc <- err
			}()
			deadline := time.Now().Add(10 * time.Second)
			for len(processesWith(marker)) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-errc:
			case <-time.After(20 * time.Second):
				t.Fatal("the running call did not end after the signal")
			}
			cs.Close()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
				t.Errorf("exit after %v: %v, want 0", sig, cmd.ProcessState)
			}
			assertNothingLeft(t, marker, tmp)
		})
	}
}

// TestStdioAbuseBinary sends bad lines to the real binary: each gets a
// JSON-RPC error and the session lives on.
func TestStdioAbuseBinary(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, noOllama...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TMPDIR="+privateTmp(t))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	br := bufio.NewReaderSize(stdout, 1<<20)
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(stdin, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() map[string]any {
		t.Helper()
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("membrane wrote a line that is not JSON: %q", line)
			}
			if m["id"] == nil && m["method"] != nil {
				continue // a notification
			}
			return m
		}
	}
	code := func(m map[string]any) float64 {
		e, _ := m["error"].(map[string]any)
		c, _ := e["code"].(float64)
		return c
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if m := recv(); code(m) != -32600 {
		t.Errorf("before initialize: %v", m)
	}
	send(`{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if m := recv(); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	big := strings.Repeat("y", 10<<20)
	for _, tc := range []struct {
		line string
		code float64
	}{
		{`{"jsonrpc":"2.0","id":3,"method":`, -32700},
		{`[{"jsonrpc":"2.0","id":4,"method":"ping"}]`, -32600},
		{`{"jsonrpc":"2.0","id":5,"method":"nope/nope"}`, -32601},
		{`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":1}}`, -32602},
		{"{\"jsonrpc\":\"2.0\",\"id\":7,\xfe\"method\":\"ping\"}", -32700},
		{`{"jsonrpc":"2.0","id":8,"method":"ping","params":{"pad":"` + big + `"}}`, 0},
		{"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"sh\",\"arguments\":{\"cmd\":\"echo \xff\"}}}", 0},
	} {
		send(tc.line)
		m := recv()
		if code(m) != tc.code {
			t.Errorf("%.60q: reply %.200v, want code %v", tc.line, m, tc.code)
		}
		send(`{"jsonrpc":"2.0","id":100,"method":"ping"}`)
		if m := recv(); m["id"] != 100.0 || m["error"] != nil {
			t.Fatalf("session died after %.60q: %v", tc.line, m)
		}
	}
}

// startHTTP runs membrane --http on a free port and waits for /healthz.
func startHTTP(t *testing.T, bin string, args ...string) (*exec.Cmd, string, *mcptest.SyncBuffer, <-chan struct{}) {
	t.Helper()
	addr := mcptest.FreeAddr(t)
	cmd := exec.Command(bin, append([]string{"--http", addr}, args...)...)
	tmp := privateTmp(t)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TMPDIR="+tmp, "XDG_STATE_HOME="+t.TempDir())
	var stderr mcptest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("membrane stderr:\n%s", stderr.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("membrane exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("membrane never answered /healthz: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd, base, &stderr, exited
}

func TestHTTPEndToEnd(t *testing.T) {
	bin := binary(t)
	const token = "e2e-token-0123456789"
	cmd, base, stderr, exited := startHTTP(t, bin, append([]string{"--token", token}, noOllama...)...)

	// Without the token: 401.
	resp, err := http.Post(base+"/mcp", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %v", resp.StatusCode, resp.Header)
	}
	// /readyz: "starting" (503) until the sandbox is in, then ready with
	// Ollama down, and no secrets either way.
	var body []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), token) {
			t.Fatalf("/readyz shows the token: %s", body)
		}
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != 503 || !strings.Contains(string(body), "starting") || time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(string(body), `"up":false`) || !strings.Contains(string(body), `"status":"ready"`) {
		t.Errorf("/readyz: %s", body)
	}

	cs := mcptest.ConnectHTTP(t, base+"/mcp", token, nil)
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "echo over http"})
	sandboxWorks(t, res, text)
	if res.IsError || !strings.Contains(text, "over http") {
		t.Errorf("sh over HTTP = %q", text)
	}
	// SIGTERM with a session open: exit 0, promptly.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("membrane did not exit after SIGTERM: %s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// TestRefusePublicBind checks that a non-loopback address without a token
// does not start.
func TestRefusePublicBind(t *testing.T) {
	bin := binary(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		cmd := exec.Command(bin, append([]string{"--http", addr}, noOllama...)...)
		cmd.Env = append(os.Environ(), "MEMBRANE_TOKEN=")
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "without a token") {
			t.Errorf("--http %s without a token: exit %v (%v), output %q", addr, cmd.ProcessState.ExitCode(), err, out)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	bin := binary(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "membrane ") {
		t.Errorf("--version: %q %v", out, err)
	}
	out, err = exec.Command(bin, "--help").Output()
	if err != nil || !strings.Contains(string(out), "--ollama-host") {
		t.Errorf("--help: %v", err)
	}
}

func TestDoctorReportsBrokenOllama(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, append([]string{"doctor"}, noOllama...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, _ := cmd.Output()
	if cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("doctor exit %d with Ollama down, want 1:\n%s", cmd.ProcessState.ExitCode(), out)
	}
	for _, want := range []string{"FAIL", "ollama http://127.0.0.1:1", "fix:", "python", "problem"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// TestListChangedStdio adds and removes a model on a real Ollama and checks
// that a stdio client hears both.
func TestListChangedStdio(t *testing.T) {
	bin := binary(t)
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			srv := v.Start(t)
			changed := make(chan struct{}, 10)
			cs, _, _ := launch(t, bin, []string{"--ollama-host", srv.URL, "--ollama-refresh", "200ms"}, &sdk.ClientOptions{
				ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
					select {
					case changed <- struct{}{}:
					default:
					}
				},
			})
			t.Cleanup(func() { cs.Close() })
			before := toolSet(t, cs)
			waitChange := func(what string, cond func([]string) bool) []string {
				t.Helper()
				deadline := time.After(60 * time.Second)
				for {
					select {
					case <-changed:
						if names := toolSet(t, cs); cond(names) {
							return names
						}
					case <-deadline:
						t.Fatalf("no list_changed with the tools after %s; tools now %v", what, toolSet(t, cs))
					}
				}
			}
			srv.Create(t, "e2e-tiny", ollamatest.ChatModel())
			after := waitChange("create", func(names []string) bool { return len(names) > len(before) })
			var added []string
			for _, n := range after {
				if !slices.Contains(before, n) {
					added = append(added, n)
				}
			}
			if len(added) == 0 || !strings.Contains(strings.Join(added, ","), "e2e") {
				t.Errorf("added tools %v do not name the model", added)
			}
			srv.Delete(t, "e2e-tiny")
			waitChange("delete", func(names []string) bool {
				for _, a := range added {
					if slices.Contains(names, a) {
						return false
					}
				}
				return true
			})
		})
	}
}

// TestOpenAIBackendBinary serves a real OpenAI-compatible server's models
// (Ollama's /v1) through --openai-backend, with a key from a file, and
// answers a chat through one.
func TestOpenAIBackendBinary(t *testing.T) {
	bin := binary(t)
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			srv := v.Start(t)
			srv.Create(t, "friendly", ollamatest.ScriptedModel(ollamatest.Script{Answer: " Hello from a friend."}))
			key := writeFile(t, "friend.key", "not-checked-by-ollama\n")
			cs, _, _ := launch(t, bin, []string{"--ollama-host", "127.0.0.1:1", "--ollama-refresh", "200ms",
				"--openai-backend", "friend=" + srv.URL + "/v1,key-file=" + key}, nil)
			t.Cleanup(func() { cs.Close() })
			deadline := time.Now().Add(30 * time.Second)
			for !slices.Contains(toolSet(t, cs), "chat_friendly") {
				if time.Now().After(deadline) {
					t.Fatalf("no chat_friendly from the backend; tools %v", toolSet(t, cs))
				}
				time.Sleep(50 * time.Millisecond)
			}
			res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_friendly", Arguments: map[string]any{"prompt": "hi"}})
			if err != nil || res.IsError {
				t.Fatalf("chat through the backend: %v %+v", err, res)
			}
			if tc, _ := res.Content[0].(*sdk.TextContent); tc == nil || strings.TrimSpace(tc.Text) != "Hello from a friend." {
				t.Errorf("answer %+v", res.Content)
			}
		})
	}
}
