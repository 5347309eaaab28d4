package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// requireBwrap skips the test when bubblewrap cannot run here, or fails it
// when MEMBRANE_REQUIRE_E2E=1 (as CI sets).
func requireBwrap(t testing.TB) {
	t.Helper()
	why := ""
	if bwrap, _, err := findBwrap(); err != nil {
		why = err.Error()
	} else if out, err := exec.Command(bwrap, "--unshare-user", "--unshare-pid", "--ro-bind", "/", "/", "/bin/true").CombinedOutput(); err != nil {
		why = fmt.Sprintf("bwrap cannot create namespaces here: %v: %s", err, out)
	}
	if why == "" {
		return
	}
	if os.Getenv("MEMBRANE_REQUIRE_E2E") == "1" {
		t.Fatalf("MEMBRANE_REQUIRE_E2E=1 but %s (install bubblewrap: apt-get install bubblewrap)", why)
	}
	t.Skipf("needs bubblewrap: %s (set MEMBRANE_REQUIRE_E2E=1 to make this a failure)", why)
}

// requirePrlimit skips the test (fails it under MEMBRANE_REQUIRE_E2E=1)
// where util-linux prlimit, which rlimit mode uses, is missing.
func requirePrlimit(t testing.TB) {
	t.Helper()
	if _, err := findPrlimit(); err != nil {
		if os.Getenv("MEMBRANE_REQUIRE_E2E") == "1" {
			t.Fatalf("MEMBRANE_REQUIRE_E2E=1 but %v (apt-get install util-linux)", err)
		}
		t.Skipf("needs prlimit: %v", err)
	}
}

// testConfig is DefaultConfig with limits small enough that the attack
// tests end fast.
func testConfig() Config {
	c := DefaultConfig()
	c.Timeout = 20 * time.Second
	c.MaxTimeout = 60 * time.Second
	c.Procs = 64
	c.MemoryBytes = 512 << 20
	c.FileSizeBytes = 8 << 20
	c.TmpBytes = 8 << 20
	c.OutputBytes = 64 << 10
	if os.Getenv("MEMBRANE_TEST_WARM") != "" {
		c.Warm, _ = strconv.Atoi(os.Getenv("MEMBRANE_TEST_WARM"))
	}
	return c
}

// newTestSandbox returns a Sandbox for the test, closed (and checked to
// leave no process and no directory behind) by t.Cleanup.
func newTestSandbox(t testing.TB, mut func(*Config)) *Sandbox {
	t.Helper()
	requireBwrap(t)
	cfg := testConfig()
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	liveSandboxes.Store(s, true)
	t.Cleanup(func() {
		root := s.root
		err := s.Close()
		liveSandboxes.Delete(s)
		if err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := os.Stat(root); !os.IsNotExist(err) {
			t.Errorf("Close left %s behind (stat: %v)", root, err)
		}
		if d := descendants(); len(d) > 0 {
			t.Errorf("processes left behind after Close: %v", d)
		}
	})
	return s
}

// connect serves s's calls through the real MCP adapter and returns a client
// session.
func connect(t testing.TB, s *Sandbox) *sdk.ClientSession {
	t.Helper()
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	return mcptest.Connect(t, r, nil)
}

// ran is one tool call's result as a client sees it.
type ran struct {
	res  *sdk.CallToolResult
	text string
	st   map[string]any
}

// stdout and stderr come from the structured content, or, for an output
// too large to travel twice, from the text.
func (r ran) stdout() string { return r.stream("stdout") }
func (r ran) stderr() string { return r.stream("stderr") }

func (r ran) stream(name string) string {
	if s, ok := r.st[name].(string); ok {
		return s
	}
	if !r.flag("output_in_text") {
		return ""
	}
	_, rest, ok := strings.Cut(r.text, "\n"+name+":\n")
	if !ok {
		return ""
	}
	for _, end := range []string{"\nstderr:\n", "\nduration: "} {
		if i := strings.LastIndex(rest, end); i >= 0 && (name == "stdout" || end != "\nstderr:\n") {
			rest = rest[:i+1]
		}
	}
	return rest
}
func (r ran) exit() int {
	f, ok := r.st["exit_code"].(float64)
	if !ok {
		return -1
	}
	return int(f)
}
func (r ran) flag(name string) bool { b, _ := r.st[name].(bool); return b }

func call(t testing.TB, cs *sdk.ClientSession, tool string, args map[string]any) ran {
	t.Helper()
	res, text := mcptest.CallText(t, cs, tool, args)
	st, _ := res.StructuredContent.(map[string]any)
	return ran{res: res, text: text, st: st}
}

func sh(t testing.TB, cs *sdk.ClientSession, cmd string) ran {
	t.Helper()
	return call(t, cs, "sh", map[string]any{"cmd": cmd})
}

func py(t testing.TB, cs *sdk.ClientSession, code string) ran {
	t.Helper()
	return call(t, cs, "python_run", map[string]any{"code": code})
}

// ok fails the test unless r succeeded, and returns its stdout.
func ok(t testing.TB, r ran) string {
	t.Helper()
	if r.res.IsError || r.exit() != 0 {
		t.Fatalf("want success, got IsError=%v:\n%s", r.res.IsError, r.text)
	}
	return r.stdout()
}

// failed fails the test unless r is a tool error with a non-zero exit.
func failed(t testing.TB, r ran) {
	t.Helper()
	if !r.res.IsError || r.exit() == 0 {
		t.Fatalf("want a failure, got IsError=%v:\n%s", r.res.IsError, r.text)
	}
}

// descendants lists the live or zombie processes below this test process,
// as "pid comm state".
func descendants() []string {
	parent := map[int]int{}
	info := map[int]string{}
	for _, p := range mcptest.Procs() {
		parent[p.PID] = p.PPID
		info[p.PID] = fmt.Sprintf("%d %s %s", p.PID, p.Comm, p.State)
	}
	me := os.Getpid()
	warm := warmPIDs()
	var out []string
	for pid := range parent {
		if warm[pid] {
			continue
		}
		for p, n := parent[pid], 0; p > 1 && n < 64; p, n = parent[p], n+1 {
			if warm[p] {
				break
			}
			if p == me {
				out = append(out, info[pid])
				break
			}
		}
	}
	return out
}

// liveSandboxes are the test's open Sandboxes, whose warm pools may hold
// sandboxes waiting for a call: processes that are not left over from one.
var liveSandboxes sync.Map

// warmPIDs returns the pids of the bwrap processes the live sandboxes'
// pools hold waiting.
func warmPIDs() map[int]bool {
	out := map[int]bool{}
	liveSandboxes.Range(func(k, _ any) bool {
		wp := k.(*Sandbox).pool
		if wp == nil {
			return true
		}
		wp.mu.Lock()
		for _, pr := range wp.idle {
			out[pr.cmd.Process.Pid] = true
		}
		wp.mu.Unlock()
		return true
	})
	return out
}

// waitNoDescendants waits a little for processes being reaped to go, then
// returns what is left.
func waitNoDescendants() []string {
	var d []string
	for range 50 {
		if d = descendants(); len(d) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// sleepers lists host processes running exactly `sleep marker`: a unique
// marker tells a test's sleeps from everything else on the machine (the
// shell and bwrap command lines that mention the marker do not match).
func sleepers(marker string) []string {
	want := []byte("sleep\x00" + marker + "\x00")
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && (bytes.Equal(b, want) || bytes.HasSuffix(b, append([]byte("/"), want...))) {
			out = append(out, e.Name())
		}
	}
	return out
}

// reachableTempDir makes a directory for a configured workspace, removed
// after the test. Not t.TempDir: its parent is private to root, and the
// sandbox's uid must reach the directory.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "membrane-user-ws-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
