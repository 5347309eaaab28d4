//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// These tests run the orchestrator binary against the hostile MCP server
// (internal/hostile), each server launched over stdio through
// --mcp-config, with the real test Ollama's scripted model.

type hostileServer struct {
	name, mode string
	env        map[string]string
}

// hostileConfig writes an --mcp-config file that launches the servers.
func hostileConfig(t *testing.T, servers ...hostileServer) string {
	t.Helper()
	bin := mcptest.BuildBinary(t, "./cmd/orchestrator/internal/hostile")
	m := map[string]any{}
	for _, s := range servers {
		env := map[string]string{"HOSTILE_NAME": s.name}
		for k, v := range s.env {
			env[k] = v
		}
		m[s.name] = map[string]any{"command": bin, "args": []string{s.mode}, "env": env}
	}
	b, _ := json.Marshal(map[string]any{"mcpServers": m})
	p := filepath.Join(t.TempDir(), "mcp.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// noESC checks that nothing a terminal would act on is in s: no byte
// that is not UTF-8 (a raw C1), and no rune termsafe calls unsafe (ESC,
// C0 and C1 controls, bidi controls), but newlines and tabs.
func noESC(t *testing.T, where, s string) {
	t.Helper()
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") || termsafe.Unsafe(r) {
			t.Errorf("%s holds %U at %d: %q", where, r, i, s)
			return
		}
	}
}

func TestHostileEscapes(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"ls"}`}}, Answer: " Done."})
	cfg := hostileConfig(t, hostileServer{name: "evil", mode: "escape"})
	// A one-shot turn: the tool line, its result preview and the answer.
	r := c.run(t, c.env(t), c.args("--no-membrane", "--mcp-config", cfg, "-e", "list")...)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	noESC(t, "stdout", r.stdout)
	noESC(t, "stderr", r.stderr)
	if !strings.Contains(r.stderr, "ran: ls from evil␛]52;c;") || !strings.Contains(r.stderr, "␛[2J") {
		t.Errorf("the escapes were not shown visibly:\n%s", r.stderr)
	}
	// /tools shows descriptions made safe.
	r = c.runIn(t, c.env(t), strings.NewReader("/tools\n"), c.args("--no-membrane", "--mcp-config", cfg)...)
	noESC(t, "/tools", r.stdout+r.stderr)
	if !strings.Contains(r.stdout, "Runs a command.␛]52") {
		t.Errorf("/tools:\n%s", r.stdout)
	}
	// --json keeps the text exactly, JSON-escaped.
	r = c.run(t, c.env(t), c.args("--no-membrane", "--mcp-config", cfg, "--json", "-e", "list")...)
	noESC(t, "--json", r.stdout)
	jt := decodeTurn(t, r.stdout)
	if len(jt.ToolCalls) != 1 || !strings.Contains(jt.ToolCalls[0].Result, "\x1b]52;c;cm0gLXJmIH4=\a") || !strings.Contains(jt.ToolCalls[0].Result, "\u202eevil") {
		t.Errorf("--json lost the exact text: %+v", jt.ToolCalls)
	}
}

// A tool with a broken schema is skipped, named with its server, and
// membrane's sh still answers.
func TestHostileBadSchemaSkipped(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "membrane__sh", Args: `{"cmd":"echo hello"}`}}, Answer: " Fine."})
	cfg := hostileConfig(t, hostileServer{name: "bad", mode: "badschema"})
	r := c.run(t, c.env(t), c.args("--mcp-config", cfg, "--json", "-e", "hello")...)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	jt := decodeTurn(t, r.stdout)
	if len(jt.ToolCalls) != 1 || jt.ToolCalls[0].IsError || !strings.Contains(jt.ToolCalls[0].Result, "hello") {
		t.Errorf("membrane's sh did not answer: %+v", jt)
	}
	for _, tool := range []string{"props5", "reqx"} {
		if !strings.Contains(r.stderr, "tool="+tool) || !strings.Contains(r.stderr, "server=bad") {
			t.Errorf("no warning naming %s and its server:\n%s", tool, r.stderr)
		}
	}
}

// One bad server (a tools/list answer nested 5,000 deep, which go-sdk's
// client refuses to decode; garbage on stdout at start) is skipped with a
// message at once; the others serve. (Nested 10,000 deep, the answer never
// left the server: encoding/json refuses to write it, go-sdk drops the
// error, and the test only saw connect's 60 s bound run out.)
func TestHostileBadServersSkipped(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "good__sh", Args: `{"cmd":"hi"}`}}, Answer: " Fine."})
	cfg := hostileConfig(t,
		hostileServer{name: "deep", mode: "deep"},
		hostileServer{name: "garbage", mode: "garbage"},
		hostileServer{name: "good", mode: "plain"})
	r := c.run(t, c.env(t), c.args("--no-membrane", "--mcp-config", cfg, "--json", "-e", "hi")...)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	jt := decodeTurn(t, r.stdout)
	if len(jt.ToolCalls) != 1 || jt.ToolCalls[0].Result != "ran: hi from good" {
		t.Errorf("the good server did not answer: %+v", jt.ToolCalls)
	}
	for _, s := range []string{"skipping server deep", "skipping server garbage"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("no %q:\n%s", s, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "no answer within") {
		t.Errorf("a server was skipped for its silence, not for what it sent:\n%s", r.stderr)
	}
	// Control: with no good server left, that is an error.
	cfg = hostileConfig(t, hostileServer{name: "garbage", mode: "garbage"})
	r = c.run(t, c.env(t), c.args("--no-membrane", "--mcp-config", cfg, "-e", "hi")...)
	if r.code != 1 || !strings.Contains(r.stderr, "no MCP server could be reached") {
		t.Errorf("no servers: exit %d\n%s", r.code, r.stderr)
	}
}

// An endless nextCursor is cut off with a warning naming the server, and
// the orchestrator's memory stays bounded.
func TestHostileEndlessCursor(t *testing.T) {
	c := newChain(t, ollamatest.Script{Answer: " Fine."})
	cfg := hostileConfig(t, hostileServer{name: "endless", mode: "endless"})
	cmd := exec.CommandContext(t.Context(), c.orch, c.args("--no-membrane", "--mcp-config", cfg, "-e", "hi")...)
	cmd.Env = c.env(t)
	var out, errb mcptest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	peak := 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("exit: %v\n%s", err, errb.String())
			}
			running = false
		case <-time.After(20 * time.Millisecond):
			peak = max(peak, rssKB(cmd.Process.Pid))
		}
	}
	const limitKB = 300 << 10
	if peak == 0 || peak > limitKB {
		t.Errorf("peak RSS %d KiB (limit %d KiB)", peak, limitKB)
	}
	t.Logf("peak RSS %d KiB", peak)
	if !strings.Contains(errb.String(), "server=endless") || !strings.Contains(errb.String(), "limit") {
		t.Errorf("no warning naming the server:\n%s", errb.String())
	}
	if !strings.Contains(out.String(), "Fine.") {
		t.Errorf("no answer: %s", out.String())
	}
}

func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// --approve sh gates sh whatever name the model sees it under: a long
// server name that was shortened and hashed, and a server whose name holds
// "__". The control: --yes lets the same calls run.
func TestHostileApprovalByIdentity(t *testing.T) {
	long := "github.com/modelcontextprotocol/servers/tree/main/src/filesystem"
	servers := []string{long, "a", "a__b"}
	prefixes := mcp.ServerPrefixes(servers)
	renamed := prefixes[long] + "__sh"  // the server's part was cut and hashed
	victim := prefixes["a__b"] + "__sh" // a__b's sh
	spoof := prefixes["a"] + "__b__sh"  // a's b__sh
	if victim == spoof {
		t.Fatalf("the join is forgeable: both %q", victim)
	}
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{
		{Name: renamed, Args: `{"cmd":"one"}`}, {Name: victim, Args: `{"cmd":"two"}`}, {Name: spoof, Args: `{"cmd":"three"}`}}, Answer: " Done."})
	cfg := hostileConfig(t,
		hostileServer{name: long, mode: "plain"},
		hostileServer{name: "a", mode: "spoof"},
		hostileServer{name: "a__b", mode: "plain"})
	base := c.args("--no-membrane", "--mcp-config", cfg, "--json", "--approve", "sh", "-e", "go")

	r := c.run(t, c.env(t), base...) // no terminal, no --yes: gated calls are denied
	jt := decodeTurn(t, r.stdout)
	if len(jt.ToolCalls) != 3 {
		t.Fatalf("calls: %+v\n%s", jt.ToolCalls, r.stderr)
	}
	want := map[string]struct {
		denied bool
		result string
	}{
		renamed: {true, ""},
		victim:  {true, ""},
		spoof:   {false, "ran: three from a"}, // not sh: not gated, and it is a's
	}
	for _, tc := range jt.ToolCalls {
		w := want[tc.Name]
		if tc.Denied != w.denied || (w.result != "" && tc.Result != w.result) {
			t.Errorf("%s: denied %v result %q, want denied %v %q", tc.Name, tc.Denied, tc.Result, w.denied, w.result)
		}
	}
	r = c.run(t, c.env(t), append(base, "--yes")...)
	jt = decodeTurn(t, r.stdout)
	for _, tc := range jt.ToolCalls {
		if tc.Denied || tc.IsError {
			t.Errorf("with --yes %s: %+v", tc.Name, tc)
		}
	}
	if !strings.Contains(r.stdout, "ran: two from a__b") || !strings.Contains(r.stdout, "ran: one from "+long) {
		t.Errorf("calls reached the wrong servers: %s", r.stdout)
	}

	// A typo in --approve is refused, not silently matched to nothing.
	r = c.run(t, c.env(t), c.args("--no-membrane", "--mcp-config", cfg, "--approve", "shh", "-e", "go")...)
	if r.code != 2 || !strings.Contains(r.stderr, "--approve shh: no such tool") {
		t.Errorf("typo: exit %d\n%s", r.code, r.stderr)
	}
}

// A --timeout expiry during a call is reported as the turn's timeout.
func TestHostileTurnTimeout(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "hang", Args: `{}`}}, Answer: " Never."})
	mark := filepath.Join(t.TempDir(), "started")
	secs := fmt.Sprintf("4344.%d", os.Getpid())
	cfg := hostileConfig(t, hostileServer{name: "slow", mode: "ignoreterm", env: map[string]string{"HOSTILE_MARK": mark, "HOSTILE_SLEEP": secs}})
	r := c.run(t, c.env(t), c.args("--no-membrane", "--mcp-config", cfg, "--timeout", "20s", "--json", "-e", "wait")...)
	jt := decodeTurn(t, r.stdout)
	if r.code != 1 || !strings.Contains(jt.Error, "--timeout 20s") {
		t.Errorf("exit %d, error %q", r.code, jt.Error)
	}
	if len(jt.ToolCalls) != 1 || !strings.Contains(jt.ToolCalls[0].Result, "--timeout 20s") || strings.Contains(jt.ToolCalls[0].Result, "5m0s") {
		t.Errorf("tool calls: %+v", jt.ToolCalls)
	}
	// The server ignored SIGTERM; what was left of its process group is
	// gone too once the orchestrator has exited.
	if n := len(procsWith("sleep", secs)); n != 0 {
		t.Errorf("%d of the server's children outlived the orchestrator", n)
	}
}

// A server that breaks its session with a stray stdout line is launched
// again, and the user is told.
func TestHostileReconnect(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"x"}`}}, Answer: " Done."})
	mark := filepath.Join(t.TempDir(), "strayed")
	cfg := hostileConfig(t, hostileServer{name: "flaky", mode: "stray", env: map[string]string{"HOSTILE_MARK": mark}})
	cmd := exec.CommandContext(t.Context(), c.orch, c.args("--no-membrane", "--mcp-config", cfg, "--json")...)
	cmd.Env = c.env(t)
	stdin, _ := cmd.StdinPipe()
	var out, errb mcptest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
		}
	})
	io.WriteString(stdin, "first\n")
	until(t, "the session to break", func() bool { return strings.Contains(errb.String(), "server flaky ended") })
	until(t, "the reconnection", func() bool { return strings.Contains(errb.String(), "server flaky is back: 1 tools") })
	io.WriteString(stdin, "second\n")
	until(t, "the second answer", func() bool { return strings.Count(out.String(), "\n") >= 2 })
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	second := decodeTurn(t, lines[1])
	if len(second.ToolCalls) != 1 || second.ToolCalls[0].Result != "ran: x from flaky" {
		t.Errorf("after the reconnection: %+v", second.ToolCalls)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// A second Ctrl-C while the servers are being closed kills their process
// groups: a server that ignores SIGTERM, and its child, are not left
// behind.
func TestHostileDoubleCtrlC(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "hang", Args: `{}`}}, Answer: " Never."})
	mark := filepath.Join(t.TempDir(), "started")
	secs := fmt.Sprintf("4343.%d", os.Getpid())
	cfg := hostileConfig(t, hostileServer{name: "stubborn", mode: "ignoreterm", env: map[string]string{"HOSTILE_MARK": mark, "HOSTILE_SLEEP": secs}})
	cmd := exec.CommandContext(t.Context(), c.orch, c.args("--no-membrane", "--mcp-config", cfg, "-e", "wait")...)
	cmd.Env = c.env(t)
	var errb mcptest.SyncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	until(t, "the hanging call", func() bool { _, err := os.Stat(mark); return err == nil })
	if len(procsWith("sleep", secs)) == 0 {
		t.Fatal("the server's child is not running")
	}
	cmd.Process.Signal(syscall.SIGINT)
	until(t, "the turn to end", func() bool { return strings.Contains(errb.String(), "cancelled") })
	// The server ignores SIGTERM and its stdin's end: it is still there.
	if len(procsWith("sleep", secs)) == 0 {
		t.Fatal("the server went at the first Ctrl-C (the test proves nothing)")
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130\n%s", err, errb.String())
	}
	until(t, "the server's group to be gone", func() bool { return len(procsWith("sleep", secs)) == 0 })
}

// Ctrl-C while a server is being connected exits 130.
func TestHostileCtrlCDuringConnect(t *testing.T) {
	c := newChain(t, ollamatest.Script{Answer: " Never."})
	cfg := hostileConfig(t, hostileServer{name: "mute", mode: "slowstart"})
	cmd := exec.CommandContext(t.Context(), c.orch, c.args("--no-membrane", "--mcp-config", cfg, "-e", "hi")...)
	cmd.Env = c.env(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	until(t, "the server to start", func() bool {
		return len(procsWith(mcptest.BuildBinary(t, "./cmd/orchestrator/internal/hostile"), "slowstart")) > 0
	})
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130", err)
	}
}
