package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/diag"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

func TestTimeout(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)
	r := call(t, cs, "sh", map[string]any{"cmd": "echo started; sleep 30", "timeout_s": 0.3})
	if !r.res.IsError || !r.flag("timed_out") || !r.flag("killed") {
		t.Fatalf("want a timed-out tool error:\n%s", r.text)
	}
	if r.stdout() != "started\n" {
		t.Errorf("output before the timeout should be kept, got %q", r.stdout())
	}
	if ts, _ := r.st["timeout_s"].(float64); ts != 0.3 {
		t.Errorf("timeout_s = %v, want 0.3", r.st["timeout_s"])
	}
	// Asking for more than MaxTimeout is clamped, and the result says so.
	r = call(t, cs, "sh", map[string]any{"cmd": "true", "timeout_s": 1e6})
	ok(t, r)
	if ts, _ := r.st["timeout_s"].(float64); ts != testConfig().MaxTimeout.Seconds() || !strings.Contains(r.text, "clamped") {
		t.Errorf("want timeout clamped to %v, got %v:\n%s", testConfig().MaxTimeout.Seconds(), r.st["timeout_s"], r.text)
	}
	// The default applies when none is asked for.
	r = sh(t, cs, "true")
	if ts, _ := r.st["timeout_s"].(float64); ts != testConfig().Timeout.Seconds() {
		t.Errorf("default timeout_s = %v", r.st["timeout_s"])
	}
}

func TestCancelMidRun(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)
	marker := strconv.Itoa(700000 + os.Getpid()%99999)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "sleep " + marker + " & sleep " + marker + "; wait"}})
		done <- err
	}()
	waitFor(t, func() bool { return len(sleepers(marker)) == 2 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled call should not return a result")
	}
	// The server kills the tree when it sees notifications/cancelled.
	waitFor(t, func() bool { return len(sleepers(marker)) == 0 })
	if d := waitNoDescendants(); len(d) > 0 {
		t.Fatalf("processes left after cancel: %v", d)
	}
	// Allow: the session still works.
	if out := ok(t, sh(t, cs, "echo next")); out != "next\n" {
		t.Fatalf("%q", out)
	}
}

func TestParallelCalls(t *testing.T) {
	const n = 6
	s := newTestSandbox(t, func(c *Config) { c.Concurrency = n })
	cs := connect(t, s)
	var wg sync.WaitGroup
	outs := make([]ran, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tool, arg := "sh", map[string]any{"cmd": fmt.Sprintf("sleep 0.3; echo %d > f%d; cat f%d", i, i, i)}
			if i%2 == 1 {
				tool, arg = "python_run", map[string]any{"code": fmt.Sprintf("import time; time.sleep(0.3); print(%d)", i)}
			}
			outs[i] = call(t, cs, tool, arg)
		}()
	}
	wg.Wait()
	for i, r := range outs {
		if out := ok(t, r); out != fmt.Sprintf("%d\n", i) {
			t.Errorf("call %d: %q", i, out)
		}
	}
	if d := waitNoDescendants(); len(d) > 0 {
		t.Fatalf("left behind: %v", d)
	}
}

// TestBusy: with the router's queue turned off, a call over Concurrency is
// answered busy at once; with the queue (the default), it waits its turn.
func TestBusy(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.Concurrency = 1 })
	for _, tc := range []struct {
		name  string
		queue int
		busy  bool
	}{{"fail fast", -1, true}, {"queued", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := calls.NewRouter(&calls.RouterOptions{QueueLength: tc.queue})
			for _, c := range s.Calls() {
				if err := r.Add(c); err != nil {
					t.Fatal(err)
				}
			}
			cs := mcptest.Connect(t, r, nil)
			marker := strconv.Itoa(600000 + os.Getpid()%99999)
			done := make(chan ran, 1)
			go func() { done <- sh(t, cs, "sleep 0."+marker) }()
			waitFor(t, func() bool { return len(sleepers("0."+marker)) == 1 })
			r2 := sh(t, cs, "echo second")
			if got := r2.res.IsError && strings.Contains(r2.text, "busy"); got != tc.busy {
				t.Fatalf("a call over Concurrency (busy %v, want %v):\n%s", got, tc.busy, r2.text)
			}
			if !tc.busy && strings.TrimSpace(ok(t, r2)) != "second" {
				t.Fatalf("the queued call: %s", r2.text)
			}
			ok(t, <-done)
			// Allow: once the first is done, the next runs.
			ok(t, sh(t, cs, "echo third"))
		})
	}
}

func TestWorkspaceLifetime(t *testing.T) {
	s := newTestSandbox(t, nil)
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	sess := calls.NewSession("")
	do := func(sess *calls.Session, tool, args string) *calls.Result {
		t.Helper()
		res, err := r.Call(t.Context(), tool, &calls.Request{Arguments: json.RawMessage(args), Session: sess})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := do(sess, "sh", `{"cmd":"echo kept > note"}`); res.IsError {
		t.Fatal(res.TextOf())
	}
	// Lasts across calls and tools.
	res := do(sess, "python_run", `{"code":"print(open('note').read().strip())"}`)
	if res.IsError || !strings.Contains(res.TextOf(), "stdout:\nkept\n") {
		t.Fatalf("python_run should read what sh wrote:\n%s", res.TextOf())
	}
	dir := sess.Workspace()
	if dir == "" {
		t.Fatal("the session's workspace was not recorded")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "note")); err != nil || string(b) != "kept\n" {
		t.Fatalf("host workspace: %q, %v", b, err)
	}
	// Another session does not see it.
	other := calls.NewSession("")
	if res := do(other, "sh", `{"cmd":"cat note"}`); !res.IsError {
		t.Fatalf("another session read the file:\n%s", res.TextOf())
	}
	other.Close()
	// Make it hard to remove: a read-only directory and a link out.
	do(sess, "sh", `{"cmd":"mkdir -p ro/deep && touch ro/deep/f && chmod 0 ro/deep ro && ln -s /etc/passwd link"}`)
	sess.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("workspace %s still there after the session closed (%v)", dir, err)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	// A call on a closed session is refused, not run.
	if res, err := r.Call(t.Context(), "sh", &calls.Request{Arguments: json.RawMessage(`{"cmd":"true"}`), Session: sess}); !errors.Is(err, calls.ErrSessionEnded) {
		t.Fatalf("call on a closed session: %v, %v; want calls.ErrSessionEnded", res, err)
	}
}

func TestWorkspaceGoneAfterMCPSession(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)
	ok(t, sh(t, cs, "echo x > f"))
	s.mu.Lock()
	var dir string
	for _, ws := range s.workspaces {
		dir = ws.dir
	}
	s.mu.Unlock()
	if dir == "" {
		t.Fatal("no workspace recorded")
	}
	cs.Close()
	waitFor(t, func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) })
}

func TestSessionEndKillsItsCalls(t *testing.T) {
	s := newTestSandbox(t, nil)
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	sess := calls.NewSession("")
	marker := strconv.Itoa(500000 + os.Getpid()%99999)
	done := make(chan *calls.Result, 1)
	go func() {
		res, _ := r.Call(context.Background(), "sh", &calls.Request{Arguments: json.RawMessage(`{"cmd":"sleep ` + marker + `"}`), Session: sess})
		done <- res
	}()
	waitFor(t, func() bool { return len(sleepers(marker)) == 1 })
	sess.Close()
	res := <-done
	if !res.IsError || !strings.Contains(res.TextOf(), "cancelled") {
		t.Fatalf("want a cancelled result:\n%s", res.TextOf())
	}
	if left := sleepers(marker); len(left) > 0 {
		t.Fatal(left)
	}
}

func TestCloseKillsEverything(t *testing.T) {
	requireBwrap(t)
	s, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	marker := strconv.Itoa(400000 + os.Getpid()%99999)
	done := make(chan *calls.Result, 1)
	go func() {
		res, _ := r.Call(context.Background(), "sh", &calls.Request{Arguments: json.RawMessage(`{"cmd":"setsid sleep ` + marker + ` & sleep ` + marker + `"}`)})
		done <- res
	}()
	waitFor(t, func() bool { return len(sleepers(marker)) == 2 })
	root := s.root
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if res := <-done; !res.IsError {
		t.Fatalf("a call running at Close should fail:\n%s", res.TextOf())
	}
	if left := sleepers(marker); len(left) > 0 {
		t.Fatal(left)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("%s left behind", root)
	}
	res, err := r.Call(context.Background(), "sh", &calls.Request{Arguments: json.RawMessage(`{"cmd":"true"}`)})
	if err != nil || !res.IsError || !strings.Contains(res.TextOf(), "shut down") {
		t.Fatalf("call after Close: %v %s", err, res.TextOf())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestStdinAndExitCode(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)
	r := call(t, cs, "sh", map[string]any{"cmd": "tr a-z A-Z", "stdin": "hello\n"})
	if out := ok(t, r); out != "HELLO\n" {
		t.Fatalf("%q", out)
	}
	r = call(t, cs, "python_run", map[string]any{"code": "import sys; print(sys.stdin.read()[::-1])", "stdin": "abc"})
	if out := ok(t, r); out != "cba\n" {
		t.Fatalf("%q", out)
	}
	r = sh(t, cs, "echo oops >&2; exit 7")
	failed(t, r)
	if r.exit() != 7 || r.stderr() != "oops\n" || !strings.Contains(r.text, "exit code 7") {
		t.Fatalf("exit 7:\n%s", r.text)
	}
	r = py(t, cs, "raise SystemExit(3)")
	if r.exit() != 3 {
		t.Fatalf("python exit 3:\n%s", r.text)
	}
	// Without stdin, the process reads end-of-file at once.
	if out := ok(t, sh(t, cs, "cat; echo eof")); out != "eof\n" {
		t.Fatalf("%q", out)
	}
	// The isolation is in every result, as text and as structured content.
	iso, _ := r.st["isolation"].(map[string]any)
	if iso["mode"] != "bwrap" || iso["network"] != "none" || iso["seccomp"] != true {
		t.Fatalf("isolation: %v", iso)
	}
	if !strings.Contains(r.text, "isolation: bubblewrap") {
		t.Fatalf("no isolation in the text:\n%s", r.text)
	}
}

func TestArgumentErrors(t *testing.T) {
	s := newTestSandbox(t, nil)
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	for _, tc := range []struct{ tool, args, want string }{
		{"sh", `{}`, "cmd is required"},
		{"sh", `{"cmd":"  "}`, "cmd is required"},
		{"sh", `{"cmd":"true","extra":1}`, `unknown field "extra"`},
		{"sh", `{"cmd":1}`, "cannot unmarshal number"},
		{"sh", `{"cmd":"true","timeout_s":0}`, "timeout_s must be a positive"},
		{"sh", `{"cmd":"true","timeout_s":-1}`, "timeout_s must be a positive"},
		{"sh", `{"cmd":"true","timeout_s":"5"}`, "cannot unmarshal string"},
		{"sh", `{"cmd":"a\u0000b"}`, "NUL"},
		{"sh", `{"cmd":"true"} {}`, "trailing data"},
		{"python_run", `{"cmd":"print(1)"}`, `unknown field "cmd"`},
		{"python_run", `{"code":""}`, "code is required"},
	} {
		res, err := r.Call(t.Context(), tc.tool, &calls.Request{Arguments: json.RawMessage(tc.args)})
		if err != nil {
			t.Fatalf("%s %s: Go error %v", tc.tool, tc.args, err)
		}
		if !res.IsError || !strings.Contains(res.TextOf(), tc.want) || !strings.Contains(res.TextOf(), "It takes {") {
			t.Errorf("%s %s: want a tool error with %q and the usage, got:\n%s", tc.tool, tc.args, tc.want, res.TextOf())
		}
	}
}

func TestBwrapMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := bwrapFallbacks
	bwrapFallbacks = nil
	t.Cleanup(func() { bwrapFallbacks = old })
	if _, err := findPrlimit(); err != nil {
		t.Skip(err)
	}
	s, err := New(testConfig(), nil)
	if err != nil {
		t.Fatalf("New must not fail because bwrap is missing: %v", err)
	}
	defer s.Close()
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	res, err := r.Call(t.Context(), "sh", &calls.Request{Arguments: json.RawMessage(`{"cmd":"echo never"}`)})
	if err != nil {
		t.Fatal(err)
	}
	text := res.TextOf()
	if !res.IsError || !strings.Contains(text, "bubblewrap") || !strings.Contains(text, "apt-get install bubblewrap") || !strings.Contains(text, "sandbox mode to rlimit") || strings.Contains(text, "--sandbox") {
		t.Fatalf("want a tool error saying how to fix it:\n%s", text)
	}
	var fail bool
	for _, c := range Diagnose(t.Context(), testConfig()) {
		if c.Name == "bubblewrap" && c.Status == diag.StatusFail && strings.Contains(c.Fix, "sandbox mode to rlimit") && c.Setting == "sandbox.mode" {
			fail = true
		}
	}
	if !fail {
		t.Fatal("Diagnose should fail the bubblewrap check")
	}
}

// TestNamespacesUnavailable uses a bwrap that fails the way bubblewrap
// fails where user namespaces are forbidden (a Docker container with the
// default seccomp profile): the only fault here a real bwrap cannot show on
// this machine.
func TestNamespacesUnavailable(t *testing.T) {
	requireBwrap(t)
	real, _, _ := findBwrap()
	dir, err := os.MkdirTemp("", "membrane-fake-bwrap-") // reachable by uid 65534
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = --help ]; then exec %s --help; fi\n"+
		"echo 'bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n", real)
	if err := os.WriteFile(filepath.Join(dir, "bwrap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	s, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cs := connect(t, s)
	r := sh(t, cs, "echo never")
	if !r.res.IsError || !strings.Contains(r.text, "sandbox could not start: bwrap: No permissions") ||
		!strings.Contains(r.text, "sandbox mode to rlimit") || strings.Contains(r.text, "--sandbox") || !strings.Contains(r.text, "seccomp=unconfined") {
		t.Fatalf("want a clear setup error:\n%s", r.text)
	}
	var fail bool
	for _, c := range Diagnose(t.Context(), testConfig()) {
		if c.Name == "sandbox namespaces" && c.Status == diag.StatusFail {
			fail = true
		}
	}
	if !fail {
		t.Fatal("Diagnose should fail the namespaces check")
	}
}

func TestRlimitMode(t *testing.T) {
	requireBwrap(t) // a comparable machine
	requirePrlimit(t)
	s := newTestSandbox(t, func(c *Config) { c.Mode = ModeRlimit; c.Procs = 32 })
	if s.prlimit == "" || s.selfExe != "" {
		t.Fatalf("rlimit mode with prlimit installed must use it: prlimit %q, helper %q", s.prlimit, s.selfExe)
	}
	checkRlimitMode(t, s)
}

// TestRlimitModeWithoutPrlimit runs rlimit mode where prlimit is missing,
// as on macOS: membrane's own limits helper sets the rlimits. It is the
// code path macOS runs, exercised here on Linux.
func TestRlimitModeWithoutPrlimit(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) {
		hidePrlimit(t) // after newTestSandbox's own check for prlimit
		c.Mode = ModeRlimit
		c.Procs = 32
	})
	if s.selfExe == "" || s.prlimit != "" {
		t.Fatalf("rlimit mode without prlimit must use the limits helper: prlimit %q, helper %q", s.prlimit, s.selfExe)
	}
	checkRlimitMode(t, s)
	cs := connect(t, s)
	// Every limit holds, in the units the config gives (bytes, seconds,
	// counts), and the hard limits too, so the code cannot raise them.
	out := ok(t, sh(t, cs, `ulimit -t; ulimit -f; ulimit -c; ulimit -Hn; ulimit -Hv; (ulimit -n 512) 2>/dev/null && echo raised || echo capped`))
	want := fmt.Sprintf("%d\n%d\n0\n256\n%d\ncapped\n", testConfig().CPUSeconds, (8<<20)/512, 512<<10)
	if out != want {
		t.Fatalf("limits set by the helper:\n got %q\nwant %q", out, want)
	}
	// The process cap counts the uid's processes plus the call's share.
	nproc := ok(t, py(t, cs, "import resource; s, h = resource.getrlimit(resource.RLIMIT_NPROC); print(s == h, s >= 32)"))
	if nproc != "True True\n" {
		t.Fatalf("RLIMIT_NPROC: soft == hard, at least Procs: %q", nproc)
	}
	// The file-size cap stops a large write.
	if r := sh(t, cs, `head -c 9000000 /dev/zero > big; echo exit=$?; ls -l big | awk '{print $5}'`); !strings.Contains(r.text, "exit=1") && !strings.Contains(r.text, "exit=153") {
		t.Fatalf("file-size cap did not hold:\n%s", r.text)
	}
	// Memory: an allocation past the cap fails.
	mr := py(t, cs, "try:\n    b = bytearray(600 << 20)\n    print('allocated')\nexcept MemoryError:\n    print('denied')")
	if out := ok(t, mr); out != "denied\n" {
		t.Fatalf("memory cap did not hold: %q", out)
	}
	// A missing command is a clear error, not a hang.
	if r := call(t, cs, "sh", map[string]any{"cmd": "exec /nonexistent/x"}); !r.res.IsError {
		t.Fatalf("want a tool error:\n%s", r.text)
	}
	// Diagnose says who sets the limits.
	var found bool
	for _, c := range Diagnose(t.Context(), Config{Mode: ModeRlimit}) {
		if c.Name == "prlimit" && c.Status == diag.StatusOK && strings.Contains(c.Detail, "membrane sets the rlimits itself") {
			found = true
		}
	}
	if !found {
		t.Error("Diagnose should say membrane sets the rlimits itself")
	}
}

// TestBwrapLimitsOnInit checks the rlimits of a bubblewrap call, which
// membrane sets on the sandbox's init (no prlimit process): each holds at
// the configured value, soft and hard, so the code cannot raise one; and
// they follow the config. It runs with prlimit out of reach, to show the
// call needs none.
func TestBwrapLimitsOnInit(t *testing.T) {
	requireBwrap(t)
	hidePrlimit(t)
	for _, procs := range []int{40, 64} {
		s := newTestSandbox(t, func(c *Config) { c.Procs = procs; c.OpenFiles = 200 })
		cs := connect(t, s)
		out := ok(t, sh(t, cs, `ulimit -t; ulimit -Ht; ulimit -f; ulimit -c; ulimit -n; ulimit -Hn; ulimit -v; ulimit -Hv; ulimit -p; ulimit -Hp; (ulimit -n 512) 2>/dev/null && echo raised || echo capped; (ulimit -Hp 1000) 2>/dev/null && echo raised || echo capped`))
		c := testConfig()
		// With a pids cgroup, pids.max is the limit and RLIMIT_NPROC a
		// backstop above it.
		nproc := procs
		if s.cg != nil && s.cg.limitsPids {
			nproc += nprocBackstop
		}
		want := fmt.Sprintf("%d\n%d\n%d\n0\n200\n200\n%d\n%d\n%d\n%d\ncapped\ncapped\n",
			c.CPUSeconds, c.CPUSeconds, c.FileSizeBytes/512, c.MemoryBytes>>10, c.MemoryBytes>>10, nproc, nproc)
		if out != want {
			t.Fatalf("Procs %d: limits in the sandbox:\n got %q\nwant %q", procs, out, want)
		}
	}
}

// hidePrlimit makes findPrlimit fail for the rest of the test.
func hidePrlimit(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	old := prlimitFallbacks
	prlimitFallbacks = nil
	t.Cleanup(func() { prlimitFallbacks = old })
}

func checkRlimitMode(t *testing.T, s *Sandbox) {
	t.Helper()
	cs := connect(t, s)
	r := sh(t, cs, "ulimit -n; ulimit -v; echo hi > f; cat f; pwd")
	out := ok(t, r)
	lines := strings.Split(out, "\n")
	if lines[0] != "256" || lines[1] != strconv.Itoa(512<<10) || lines[2] != "hi" {
		t.Fatalf("limits in rlimit mode: %q", out)
	}
	iso, _ := r.st["isolation"].(map[string]any)
	if iso["mode"] != "rlimit" || !strings.Contains(r.text, "rlimit only (weak)") {
		t.Fatalf("results must say rlimit:\n%s", r.text)
	}
	// Timeout and output caps hold.
	tr := call(t, cs, "sh", map[string]any{"cmd": "sleep 30", "timeout_s": 0.3})
	if !tr.flag("timed_out") {
		t.Fatalf("%s", tr.text)
	}
	if fr := sh(t, cs, "yes"); !fr.flag("stdout_truncated") {
		t.Fatalf("flood not capped:\n%.200s", fr.text)
	}
	// The environment is still clean.
	t.Setenv("MEMBRANE_TEST_SECRET", "x")
	if out := ok(t, sh(t, cs, "env")); strings.Contains(out, "MEMBRANE_TEST_SECRET") {
		t.Fatal("environment leaked in rlimit mode")
	}
	if os.Geteuid() == 0 {
		// As root the process runs as an unprivileged uid, so the process
		// cap holds even without a user namespace.
		if out := ok(t, sh(t, cs, "id -u")); out != strconv.Itoa(RootRunAsUID)+"\n" {
			t.Fatalf("rlimit mode as root should run as %d, got %q", RootRunAsUID, out)
		}
		fb := call(t, cs, "sh", map[string]any{"cmd": `f(){ f|f & }; f; sleep 2`, "timeout_s": 30})
		if fb.flag("timed_out") {
			t.Fatalf("fork bomb not capped in rlimit mode:\n%s", fb.text)
		}
		if d := waitNoDescendants(); len(d) > 0 {
			t.Fatalf("fork bomb left %d processes", len(d))
		}
	}
}

func TestUserWorkspace(t *testing.T) {
	requireBwrap(t)
	dir := reachableTempDir(t)
	if os.Geteuid() == 0 {
		// Root-owned: refused with a fix, since the sandbox runs as 65534.
		_, err := New(Config{Workspace: dir}, nil)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "chown") {
			t.Fatalf("want a config error that says to chown, got %v", err)
		}
		if err := os.Chown(dir, RootRunAsUID, RootRunAsUID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "ws-link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	s := newTestSandbox(t, func(c *Config) { c.Workspace = link })
	a, b := connect(t, s), connect(t, s)
	if out := ok(t, sh(t, a, "cat input.txt; echo from-a > shared.txt")); out != "from host\n" {
		t.Fatalf("%q", out)
	}
	if out := ok(t, sh(t, b, "cat shared.txt")); out != "from-a\n" {
		t.Fatalf("a user workspace is shared by sessions: %q", out)
	}
	a.Close()
	b.Close()
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, "shared.txt")); err != nil {
		t.Fatalf("a user workspace must outlive sessions: %v", err)
	}
}

func TestPythonResolution(t *testing.T) {
	p, err := findPython(nil)
	if err != nil {
		t.Skip(err)
	}
	if got, err := resolvePython(p); err != nil || got != p {
		t.Fatalf("resolvePython(%s) = %s, %v", p, got, err)
	}
	if strings.Contains(p, "shims") {
		t.Fatalf("resolved to a shim: %s", p)
	}
	// A shim script is refused with a way out.
	shim := filepath.Join(t.TempDir(), "python3")
	os.WriteFile(shim, []byte("#!/bin/sh\nexec "+p+" \"$@\"\n"), 0o755)
	if _, err := resolvePython(shim); err == nil || !strings.Contains(err.Error(), "shim") {
		t.Fatalf("a shim should be refused: %v", err)
	}
	if _, err := New(Config{Python: shim}, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("New with a shim: %v", err)
	}
	// PATH order is respected, shims skipped.
	t.Setenv("PATH", filepath.Dir(shim)+":"+os.Getenv("PATH"))
	if got, _ := findPython(nil); got != p {
		t.Fatalf("findPython with a shim first on PATH = %s, want %s", got, p)
	}
	if _, err := exec.LookPath("pyenv"); err == nil {
		t.Logf("pyenv present; resolved %s", p)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Mode: "docker"}, `mode "docker"`},
		{Config{Timeout: -1}, "Timeout"},
		{Config{Timeout: time.Hour, MaxTimeout: time.Minute}, "longer than MaxTimeout"},
		{Config{OpenFiles: 3}, "OpenFiles"},
		{Config{Procs: 1}, "Procs"},
		{Config{MemoryBytes: 1 << 20}, "MemoryBytes"},
		{Config{Workspace: "/nonexistent/dir"}, "workspace"},
		{Config{OutputBytes: 5 << 20}, "16 MiB"},
		{Config{WorkspaceBytes: -1}, "WorkspaceBytes"},
		{Config{WorkspaceFiles: -1}, "WorkspaceFiles"},
	} {
		_, err := New(tc.cfg, nil)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want ErrConfig mentioning %q", tc.cfg, err, tc.want)
		}
	}
	c, err := Config{}.normalize()
	if err != nil || !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("Config{} should normalize to DefaultConfig: %+v %v", c, err)
	}
}

func TestDiagnose(t *testing.T) {
	requireBwrap(t)
	checks := Diagnose(t.Context(), testConfig())
	seen := map[string]diag.Check{}
	for _, c := range checks {
		seen[c.Name] = c
		if c.Status != diag.StatusOK && c.Fix == "" {
			t.Errorf("%s is %s with no fix", c.Name, c.Status)
		}
	}
	for _, name := range []string{"sandbox mode", "bubblewrap", "prlimit", "sandbox namespaces", "python", "sandbox uid", "sandbox network", "sandbox limits", "sandbox memory", "sandbox workspace quota"} {
		c, ok := seen[name]
		if !ok {
			t.Errorf("no %q check", name)
			continue
		}
		if c.Status == diag.StatusFail {
			t.Errorf("%s failed: %s", name, c.Detail)
		}
	}
	// The memory check says which cap applies: a cgroup where membrane
	// can make one, else RLIMIT_AS with memfds refused, else a warning.
	mem := seen["sandbox memory"].Detail
	s := newTestSandbox(t, nil)
	switch s.MemoryCap() {
	case MemoryCgroup1:
		if !strings.Contains(mem, "cgroup v1 memory.limit_in_bytes") {
			t.Errorf("sandbox memory: %q", mem)
		}
	case MemoryCgroup2:
		if !strings.Contains(mem, "cgroup v2 memory.max") {
			t.Errorf("sandbox memory: %q", mem)
		}
	}
	nc := testConfig()
	nc.NoCgroup = true
	for _, c := range Diagnose(t.Context(), nc) {
		if c.Name == "sandbox memory" && (c.Status != diag.StatusOK || !strings.Contains(c.Detail, "memfd_create and System V shared memory refused")) {
			t.Errorf("without a cgroup: %+v", c)
		}
	}
	nc.AllowMemfd = true
	for _, c := range Diagnose(t.Context(), nc) {
		if c.Name == "sandbox memory" && (c.Status != diag.StatusWarn || c.Fix == "") {
			t.Errorf("memfds allowed without a cgroup should warn: %+v", c)
		}
	}
	// rlimit mode is a warning, with the reason.
	for _, c := range Diagnose(t.Context(), Config{Mode: ModeRlimit}) {
		if c.Name == "sandbox mode" && c.Status != diag.StatusWarn {
			t.Errorf("rlimit mode should warn: %+v", c)
		}
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

func TestLongCommand(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)
	// Over the kernel's 128 KiB limit for one exec argument.
	cmd := "x=0\n" + strings.Repeat("x=$((x+1))\n", 20000) + "echo $x"
	if out := ok(t, sh(t, cs, cmd)); out != "20000\n" {
		t.Fatalf("%q", out)
	}
	// The sandbox's init shows no host path.
	if out := ok(t, sh(t, cs, `tr '\0' ' ' </proc/1/cmdline`)); strings.Contains(out, s.root) || strings.Contains(out, "--bind") {
		t.Fatalf("host paths visible in /proc/1/cmdline: %s", out)
	}
}

func TestPythonOutOfReachAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs sandboxes as another uid")
	}
	dir, _ := copyPython(t, os.TempDir(), "membrane-private-py-", 0o700)
	bin := filepath.Join(dir, "bin")
	_, err := New(Config{Python: filepath.Join(bin, "python3")}, nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "out of reach") {
		t.Fatalf("want a config error, got %v", err)
	}
	// Found on PATH instead (a pyenv version directory first on PATH),
	// the private interpreter is skipped and the system one used: a
	// python_run that works, not one disabled.
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	s := newTestSandbox(t, nil)
	if s.python == "" || strings.HasPrefix(s.python, dir) {
		t.Fatalf("python with a private interpreter first on PATH: %q (%v)", s.python, s.pythonErr)
	}
	if out := ok(t, py(t, connect(t, s), "print(6*7)")); out != "42\n" {
		t.Fatalf("python_run: %q", out)
	}
}

// copyPython copies the system's interpreter to DIR/bin/python3, DIR a new
// directory of the given mode under parent, removed when the test ends.
func copyPython(t *testing.T, parent, prefix string, mode os.FileMode) (dir, python string) {
	t.Helper()
	p, err := findPython(nil)
	if err != nil {
		t.Skip(err)
	}
	dir, err = os.MkdirTemp(parent, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, mode)
	python = filepath.Join(dir, "bin", "python3")
	b, err := os.ReadFile(p)
	if err == nil {
		err = os.Mkdir(filepath.Dir(python), 0o755)
	}
	if err == nil {
		err = os.WriteFile(python, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir, python
}

// TestPythonUnderTmp checks that an interpreter whose installation lies
// under /tmp is bound into the sandbox over its private /tmp, not hidden by
// it.
func TestPythonUnderTmp(t *testing.T) {
	dir, copyPy := copyPython(t, "/tmp", "membrane-tmp-py-", 0o755)
	s := newTestSandbox(t, func(c *Config) { c.Python = copyPy })
	r := py(t, connect(t, s), "import sys; print(sys.executable)")
	if out := ok(t, r); strings.TrimSpace(out) != copyPy {
		t.Fatalf("python_run with %s: %q\n%s", copyPy, out, r.text)
	}
	// Allow: the sandbox's own /tmp is still private and writable.
	if out := ok(t, sh(t, connect(t, s), "echo x > /tmp/f && cat /tmp/f && ls "+dir+"/bin")); out != "x\npython3\n" {
		t.Fatalf("%q", out)
	}
}

// TestNoLeaks runs calls that finish, fail, time out and get cancelled, then
// closes the sandbox, and checks that no goroutine, process or descriptor
// is left.
func TestNoLeaks(t *testing.T) {
	requireBwrap(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fds := openFDs(t)
	s, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	sess := calls.NewSession("")
	for _, args := range []string{`{"cmd":"echo ok"}`, `{"cmd":"exit 3"}`, `{"cmd":"sleep 10","timeout_s":0.2}`, `{"cmd":"yes"}`} {
		if _, err := r.Call(t.Context(), "sh", &calls.Request{Arguments: json.RawMessage(args), Session: sess}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	r.Call(ctx, "python_run", &calls.Request{Arguments: json.RawMessage(`{"code":"import time; time.sleep(10)"}`), Session: sess})
	cancel()
	sess.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := waitNoDescendants(); len(d) > 0 {
		t.Fatalf("processes left: %v", d)
	}
	if now := openFDs(t); now > fds {
		t.Fatalf("%d descriptors open after Close, %d before", now, fds)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestProgress(t *testing.T) {
	old := progressEvery
	progressEvery = 100 * time.Millisecond
	t.Cleanup(func() { progressEvery = old })
	s := newTestSandbox(t, nil)
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	var (
		mu  sync.Mutex
		got []float64
		tot float64
		msg string
	)
	cs := mcptest.Connect(t, r, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			mu.Lock()
			got = append(got, req.Params.Progress)
			tot, msg = req.Params.Total, req.Params.Message
			mu.Unlock()
		},
	})
	p := &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "sleep 0.6", "timeout_s": 5}}
	p.SetProgressToken("tok")
	if _, err := cs.CallTool(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 3 })
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("progress not increasing: %v", got)
		}
	}
	if tot != 5 || !strings.Contains(msg, "sh running for") {
		t.Fatalf("total %v, message %q", tot, msg)
	}
}

func TestHide(t *testing.T) {
	requireBwrap(t)
	// A config file and a token directory under /usr, which sandboxes see.
	dir, err := os.MkdirTemp("/usr/local", "membrane-test-hide-")
	if err != nil {
		t.Skip("cannot write under /usr/local:", err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	conf := filepath.Join(dir, "membrane.yaml")
	os.WriteFile(conf, []byte("token: SECRET"), 0o644)
	tokens := filepath.Join(dir, "tokens")
	os.Mkdir(tokens, 0o755)
	os.WriteFile(filepath.Join(tokens, "t"), []byte("SECRET"), 0o644)
	os.WriteFile(filepath.Join(dir, "other"), []byte("visible"), 0o644)

	s := newTestSandbox(t, func(c *Config) { c.Hide = []string{conf, tokens, "/nonexistent", filepath.Join(t.TempDir(), "x")} })
	cs := connect(t, s)
	out := ok(t, sh(t, cs, fmt.Sprintf(`cat %s %s/t 2>&1; ls %s | wc -l; cat %s/other`, conf, tokens, tokens, dir)))
	if strings.Contains(out, "SECRET") {
		t.Fatalf("hidden files visible:\n%s", out)
	}
	// Allow: the rest of the directory is still there.
	if !strings.HasSuffix(out, "0\nvisible") {
		t.Fatalf("%q", out)
	}
}

// The network finding points at its setting by key, for the program to name
// the flag; with the network off there is nothing to advise.
func TestDiagnoseNetworkSetting(t *testing.T) {
	requireBwrap(t)
	find := func(cfg Config) diag.Check {
		for _, c := range Diagnose(t.Context(), cfg) {
			if c.Name == "sandbox network" {
				return c
			}
		}
		t.Fatal("no sandbox network check")
		return diag.Check{}
	}
	on := testConfig()
	on.Network = true
	if c := find(on); c.Status != diag.StatusWarn || c.Setting != "sandbox.network" || strings.Contains(c.Fix+c.Detail, "--") {
		t.Errorf("network on: %+v", c)
	}
	if c := find(testConfig()); c.Status != diag.StatusOK || c.Setting != "" {
		t.Errorf("network off: %+v", c)
	}
}

// TestCloseDuringProbeIsQuiet: closing a Sandbox while its start-up probe
// runs (a client that quits at once) must not log that bubblewrap cannot
// make sandboxes here: the probe was cut short, not refused.
func TestCloseDuringProbeIsQuiet(t *testing.T) {
	requireBwrap(t)
	for i := range 10 {
		var buf mcptest.SyncBuffer
		s, err := New(testConfig(), slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if i%2 == 1 {
			time.Sleep(time.Duration(i) * time.Millisecond) // let the probe get further in
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if strings.Contains(buf.String(), "cannot create a sandbox") {
			t.Fatalf("round %d: a probe cut short by Close was reported as a failure:\n%s", i, buf.String())
		}
	}
}
