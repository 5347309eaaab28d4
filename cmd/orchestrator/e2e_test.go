package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/session"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// The end-to-end tests run the real chain: the orchestrator binary, a real
// Ollama serving a scripted model on /v1, the real membrane binary over
// stdio or HTTP, and real bubblewrap. They fail instead of skipping when
// MEMBRANE_REQUIRE_E2E=1.

func needBwrap(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		mcptest.Require(t, "bubblewrap (bwrap) is missing (run `make test-deps`)")
	}
}

type chain struct {
	orch, membrane string
	ollama         *ollamatest.Server
	model          string
}

// newChain builds both binaries and starts a test Ollama holding a scripted
// model.
func newChain(t *testing.T, s ollamatest.Script) *chain {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: -short")
	}
	needBwrap(t)
	c := &chain{
		orch:     mcptest.BuildBinary(t, "./cmd/orchestrator"),
		membrane: mcptest.BuildBinary(t, "./cmd/membrane"),
		ollama:   ollamatest.Start(t),
		model:    "scripted",
	}
	c.ollama.Create(t, c.model, ollamatest.ScriptedModel(s))
	return c
}

func (c *chain) env(t *testing.T, extra ...string) []string {
	env := append(os.Environ(), "NO_COLOR=1", "OLLAMA_HOST="+c.ollama.Host, "XDG_STATE_HOME="+t.TempDir())
	return append(env, extra...)
}

func (c *chain) args(extra ...string) []string {
	return append([]string{"--membrane", c.membrane, "--base-url", c.ollama.URL + "/v1", "--model", c.model}, extra...)
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *chain) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return c.runIn(t, env, nil, args...)
}

// runIn is run with stdin read from in (nil: none).
func (c *chain) runIn(t *testing.T, env []string, in io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.orch, args...)
	cmd.Env = env
	cmd.Stdin = in
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r := result{code, out.String(), errb.String()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("orchestrator %v\nexit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
	})
	return r
}

func decodeTurn(t *testing.T, s string) session.TurnJSON {
	t.Helper()
	var jt session.TurnJSON
	if err := json.Unmarshal([]byte(s), &jt); err != nil {
		t.Fatalf("--json output is not one JSON object: %v\n%s", err, s)
	}
	return jt
}

func TestE2EStdioChain(t *testing.T) {
	c := newChain(t, ollamatest.Script{})

	t.Run("json", func(t *testing.T) {
		r := c.run(t, c.env(t), c.args("--json", "-e", "say hello")...)
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		jt := decodeTurn(t, r.stdout)
		if jt.Answer != "The command printed hello." || jt.Steps != 2 || jt.Model != "scripted" || jt.Error != "" {
			t.Errorf("turn = %+v", jt)
		}
		if len(jt.ToolCalls) != 1 {
			t.Fatalf("tool calls = %+v", jt.ToolCalls)
		}
		tc := jt.ToolCalls[0]
		if tc.Name != "sh" || tc.IsError || string(tc.Arguments) != `{"cmd":"echo hello"}` || !strings.Contains(tc.Result, "stdout:\nhello\n") {
			t.Errorf("tool call = %+v", tc)
		}
		// The result came from bubblewrap, not a host shell.
		if !strings.Contains(tc.Result, "isolation: ") {
			t.Errorf("result does not say how it was isolated: %q", tc.Result)
		}
		if jt.Usage.CompletionTokens == 0 || jt.DurationMS <= 0 || tc.DurationMS <= 0 {
			t.Errorf("usage %+v, duration %v, call duration %v", jt.Usage, jt.DurationMS, tc.DurationMS)
		}
	})

	t.Run("text", func(t *testing.T) {
		r := c.run(t, c.env(t), c.args("-e", "say hello")...)
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		if r.stdout != "The command printed hello.\n" {
			t.Errorf("stdout = %q: it must hold the answer only", r.stdout)
		}
		if !strings.Contains(r.stderr, `✓ sh {"cmd":"echo hello"} · `) || !strings.Contains(r.stderr, "─ 2 steps · 1 tool call · ") {
			t.Errorf("stderr lacks the tool line or the summary:\n%s", r.stderr)
		}
		if strings.Contains(r.stderr, "\x1b[") {
			t.Errorf("colour codes with NO_COLOR set:\n%q", r.stderr)
		}
	})

	t.Run("found next to the orchestrator", func(t *testing.T) {
		dir := t.TempDir()
		orch := filepath.Join(dir, "orchestrator")
		if err := os.Link(c.orch, orch); err != nil {
			copyFile(t, c.orch, orch)
		}
		if err := os.Symlink(c.membrane, filepath.Join(dir, "membrane")); err != nil {
			t.Fatal(err)
		}
		cc := *c
		cc.orch = orch
		env := append(c.env(t), "PATH=/usr/bin:/bin") // no membrane on PATH
		r := cc.run(t, env, "--base-url", c.ollama.URL+"/v1", "--model", c.model, "-e", "say hello")
		if r.code != 0 || r.stdout != "The command printed hello.\n" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})

	t.Run("the only model is the default", func(t *testing.T) {
		r := c.run(t, c.env(t), "--membrane", c.membrane, "--base-url", c.ollama.URL+"/v1", "-e", "say hello")
		if r.code != 0 || r.stdout != "The command printed hello.\n" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestE2EHTTPChain(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	addr := mcptest.FreeAddr(t)
	const token = "e2e-secret-token"
	srv := exec.Command(c.membrane, "--http", addr)
	srv.Env = append(c.env(t), "MEMBRANE_TOKEN="+token)
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
		if t.Failed() {
			t.Logf("membrane --http logs:\n%s", logs.String())
		}
	})
	waitHTTP(t, "http://"+addr+"/healthz")
	url := "http://" + addr + "/mcp"

	r := c.run(t, c.env(t, "MEMBRANE_TOKEN="+token), "--server-url", url, "--base-url", c.ollama.URL+"/v1", "--model", c.model, "--json", "-e", "say hello")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	jt := decodeTurn(t, r.stdout)
	if jt.Answer != "The command printed hello." || len(jt.ToolCalls) != 1 || !strings.Contains(jt.ToolCalls[0].Result, "hello") {
		t.Errorf("turn = %+v", jt)
	}

	r = c.run(t, c.env(t), "--server-url", url, "--token", "wrong", "--base-url", c.ollama.URL+"/v1", "--model", c.model, "-e", "say hello")
	if r.code != 1 || !strings.Contains(r.stderr, "server membrane ("+url+")") || !strings.Contains(r.stderr, "--token or MEMBRANE_TOKEN") ||
		strings.Contains(r.stderr, "sending") {
		t.Errorf("with a wrong token: exit %d, stderr %q", r.code, r.stderr)
	}
	// The server's root instead of /mcp: the advice names the right URL.
	r = c.run(t, c.env(t, "MEMBRANE_TOKEN="+token), "--server-url", "http://"+addr+"/", "--base-url", c.ollama.URL+"/v1", "--model", c.model, "-e", "say hello")
	if r.code != 1 || !strings.Contains(r.stderr, "try --server-url "+url) {
		t.Errorf("without /mcp: exit %d, stderr %q", r.code, r.stderr)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s never answered 200: %v", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Two calls in one step run at the same time: each waits for the other's
// file in the session's shared /workspace, so run one after the other, the
// first would give up and fail.
func TestE2EParallelToolCalls(t *testing.T) {
	meet := func(me, other string) string {
		cmd := fmt.Sprintf("touch /workspace/%s; for i in $(seq 400); do [ -e /workspace/%s ] && break; sleep 0.05; done; [ -e /workspace/%s ] && echo met-%s", me, other, other, me)
		b, _ := json.Marshal(map[string]string{"cmd": cmd})
		return string(b)
	}
	c := newChain(t, ollamatest.Script{
		Calls:  []ollamatest.ToolCall{{Name: "sh", Args: meet("a", "b")}, {Name: "sh", Args: meet("b", "a")}},
		Answer: " Both met.",
	})
	r := c.run(t, c.env(t), c.args("--json", "-e", "meet")...)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	jt := decodeTurn(t, r.stdout)
	if jt.Answer != "Both met." || len(jt.ToolCalls) != 2 || jt.Steps != 2 {
		t.Fatalf("turn = %+v", jt)
	}
	for i, want := range []string{"met-a", "met-b"} {
		tc := jt.ToolCalls[i]
		if tc.IsError || !strings.Contains(tc.Result, want) || tc.Step != 1 {
			t.Errorf("call %d = %+v, want %s: the calls did not run at the same time", i, tc, want)
		}
	}
}

func TestE2EMaxSteps(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo again"}`}}, Loop: true})
	r := c.run(t, c.env(t), c.args("--json", "--max-steps", "3", "-e", "loop")...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	jt := decodeTurn(t, r.stdout)
	if !jt.MaxStepsReached || jt.Steps != 3 || len(jt.ToolCalls) != 3 || !strings.Contains(jt.Error, "step limit") {
		t.Errorf("turn = %+v", jt)
	}
	r = c.run(t, c.env(t), c.args("--max-steps", "2", "-e", "loop")...)
	if r.code != 1 || !strings.Contains(r.stderr, "orchestrator: step limit reached without a final answer (2 steps)") {
		t.Errorf("text mode: exit %d, stderr %q", r.code, r.stderr)
	}
	// One step is one step: "1 step", in the error and the summary.
	r = c.run(t, c.env(t), c.args("--max-steps", "1", "-e", "loop")...)
	if r.code != 1 || !strings.Contains(r.stderr, "(1 step)") || !strings.Contains(r.stderr, "─ 1 step ·") || strings.Contains(r.stderr, "1 steps") {
		t.Errorf("--max-steps 1: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestE2EToolErrorFedBack(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo broken >&2; exit 3"}`}}, Answer: " It failed with code 3."})
	r := c.run(t, c.env(t), c.args("--json", "-e", "fail")...)
	if r.code != 0 {
		t.Fatalf("exit %d: a tool error must not fail the turn", r.code)
	}
	jt := decodeTurn(t, r.stdout)
	tc := jt.ToolCalls[0]
	if !tc.IsError || !strings.HasPrefix(tc.Result, "error: exit code 3") || !strings.Contains(tc.Result, "broken") {
		t.Errorf("tool call = %+v", tc)
	}
	if jt.Answer != "It failed with code 3." || jt.Steps != 2 {
		t.Errorf("the model did not answer after the error: %+v", jt)
	}
}

func TestE2EApproval(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	r := c.run(t, c.env(t), c.args("--json", "--approve", "sh,python_run", "-e", "say hello")...)
	jt := decodeTurn(t, r.stdout)
	if r.code != 0 || len(jt.ToolCalls) != 1 || !jt.ToolCalls[0].Denied || strings.Contains(jt.ToolCalls[0].Result, "stdout") {
		t.Errorf("without a terminal or --yes: exit %d, %+v", r.code, jt.ToolCalls)
	}
	if !strings.Contains(r.stderr, "denied sh: it needs approval and there is no terminal") {
		t.Errorf("stderr does not say why: %s", r.stderr)
	}
	r = c.run(t, c.env(t), c.args("--json", "--approve", "sh", "--yes", "-e", "say hello")...)
	jt = decodeTurn(t, r.stdout)
	if r.code != 0 || jt.ToolCalls[0].Denied || !strings.Contains(jt.ToolCalls[0].Result, "hello") {
		t.Errorf("with --yes: %+v", jt.ToolCalls)
	}
}

// TestE2EToolSelection: a glob that matches no tool stops the start with
// exit 2 and says which; --exclude-tools sh keeps the model's sh call from
// running, and --tools sh (the control) lets it run.
func TestE2EToolSelection(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	r := c.run(t, c.env(t), c.args("--json", "--tools", "shh", "-e", "say hello")...)
	if r.code != 2 || !strings.Contains(r.stderr, "--tools shh: matches no tool") {
		t.Errorf("a glob matching nothing: exit %d, stderr %s", r.code, r.stderr)
	}
	r = c.run(t, c.env(t), c.args("--json", "--exclude-tools", "sh", "-e", "say hello")...)
	jt := decodeTurn(t, r.stdout)
	if len(jt.ToolCalls) != 1 || !jt.ToolCalls[0].IsError || !strings.Contains(jt.ToolCalls[0].Result, `unknown tool "sh"`) ||
		strings.Contains(jt.ToolCalls[0].Result, "hello") || !strings.Contains(jt.ToolCalls[0].Result, "python_run") {
		t.Errorf("with --exclude-tools sh: exit %d, %+v", r.code, jt.ToolCalls)
	}
	r = c.run(t, c.env(t), c.args("--json", "--tools", "sh", "-e", "say hello")...)
	jt = decodeTurn(t, r.stdout)
	if r.code != 0 || len(jt.ToolCalls) != 1 || !strings.Contains(jt.ToolCalls[0].Result, "hello") {
		t.Errorf("with --tools sh: exit %d, %+v", r.code, jt.ToolCalls)
	}
}

// Two servers from --mcp-config: tool names get the server's prefix, and the
// model's call to box__sh reaches the right one.
func TestE2EMCPConfigPrefixes(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "box__sh", Args: `{"cmd":"echo from box"}`}}, Answer: " Done."})
	cfg := fmt.Sprintf(`{"mcpServers": {
		"box": {"command": %q, "env": {"MEMBRANE_LOG_LEVEL": "warn"}},
		"other": {"command": %q}
	}}`, c.membrane, c.membrane)
	path := filepath.Join(t.TempDir(), "servers.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.run(t, c.env(t), "--no-membrane", "--mcp-config", path, "--base-url", c.ollama.URL+"/v1", "--model", c.model, "--json", "-e", "go")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	jt := decodeTurn(t, r.stdout)
	if len(jt.ToolCalls) != 1 || jt.ToolCalls[0].Name != "box__sh" || !strings.Contains(jt.ToolCalls[0].Result, "from box") {
		t.Errorf("tool calls = %+v", jt.ToolCalls)
	}
}

// A model that writes its tool call as text (a fake endpoint, since the
// real runtime turns the scripted model's text into a structured call):
// the orchestrator recognises it, runs it through real membrane, and does
// not print the call's JSON as the answer.
func TestE2EToolCallWrittenAsText(t *testing.T) {
	needBwrap(t)
	if testing.Short() {
		t.Skip("end-to-end: -short")
	}
	orch := mcptest.BuildBinary(t, "./cmd/orchestrator")
	membrane := mcptest.BuildBinary(t, "./cmd/membrane")
	var mu sync.Mutex
	var toolResults []string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Messages []struct {
				Role    string `json:"role"`
				Content any    `json:"content"`
			} `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		last := body.Messages[len(body.Messages)-1]
		w.Header().Set("Content-Type", "text/event-stream")
		content := "I'll check.\n```json\n{\"name\": \"sh\", \"arguments\": {\"cmd\": \"echo from-text\"}}\n```"
		if last.Role == "tool" {
			mu.Lock()
			toolResults = append(toolResults, fmt.Sprint(last.Content))
			mu.Unlock()
			content = "It printed from-text."
		}
		for _, piece := range []string{content[:len(content)/2], content[len(content)/2:]} {
			b, _ := json.Marshal(map[string]any{"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "fake",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": piece}}}})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer fake.Close()
	c := &chain{orch: orch}
	env := append(os.Environ(), "NO_COLOR=1", "OLLAMA_HOST=127.0.0.1:1", "XDG_STATE_HOME="+t.TempDir())
	r := c.run(t, env, "--membrane", membrane, "--base-url", fake.URL+"/v1", "--model", "fake", "--extract-text-calls=true", "-e", "check")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	if r.stdout != "I'll check.\nIt printed from-text.\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "· from text") {
		t.Errorf("stderr does not mark the call as found in text:\n%s", r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(toolResults) != 1 || !strings.Contains(toolResults[0], "from-text") {
		t.Errorf("tool results sent back = %q", toolResults)
	}

	// Off: the text is the answer, nothing runs.
	r = c.run(t, env, "--membrane", membrane, "--base-url", fake.URL+"/v1", "--model", "fake", "--json", "-e", "check")
	jt := decodeTurn(t, r.stdout)
	if r.code != 0 || len(jt.ToolCalls) != 0 || !strings.Contains(jt.Answer, `"name": "sh"`) {
		t.Errorf("extraction is off for a non-Ollama endpoint by default: %+v", jt)
	}
}

// Ctrl-C in the REPL cancels the turn and kills the running tool's
// process; the session goes on.
func TestE2ECancelKillsRunningTool(t *testing.T) {
	const marker = "4242.5"
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"sleep ` + marker + `"}`}}, Answer: " Slept."})
	cmd := exec.Command(c.orch, c.args()...)
	cmd.Env = c.env(t)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr mcptest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}()

	fmt.Fprintln(stdin, "sleep please")
	until(t, "the sleep to start", func() bool { return len(procsWith("sleep", marker)) > 0 })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	until(t, "the sleep to be killed", func() bool { return len(procsWith("sleep", marker)) == 0 })
	until(t, "the REPL to say it cancelled", func() bool { return strings.Contains(stderr.String(), "cancelled") })
	select {
	case err := <-exited:
		t.Fatalf("Ctrl-C ended the session: %v", err)
	default:
	}

	// The session still works: commands and another question.
	fmt.Fprintln(stdin, "/tools")
	until(t, "/tools to list sh", func() bool {
		return strings.Contains(stdout.String(), "  sh ") && strings.Contains(stdout.String(), "Run a command")
	})
	fmt.Fprintln(stdin, "/exit")
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after /exit: %v", err)
		}
	case <-t.Context().Done():
		t.Fatal("/exit did not end the session")
	}
}

// until polls ok. The limit only keeps a broken build from hanging the
// test run; nothing is measured against it.
func until(t *testing.T, what string, ok func() bool) {
	t.Helper()
	giveUp := time.After(20 * time.Second)
	for !ok() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-giveUp:
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// procsWith returns the pids whose command line is exactly args.
func procsWith(args ...string) []int {
	want := strings.Join(args, "\x00")
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.TrimRight(string(b), "\x00") == want {
			out = append(out, pid)
		}
	}
	return out
}

// The REPL reads questions from a pipe too, one per line; --json prints one
// object per question.
func TestE2EREPLFromAPipe(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	cmd := exec.Command(c.orch, c.args("--json")...)
	cmd.Env = c.env(t)
	cmd.Stdin = strings.NewReader("say hello\n/clear\n/model scripted\nagain\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		jt := decodeTurn(t, sc.Text())
		if jt.Answer != "The command printed hello." {
			t.Errorf("line %d: %+v", n, jt)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d JSON lines, want 2:\n%s", n, out)
	}
}
