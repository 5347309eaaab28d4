package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitWarm waits until the pool holds n waiting sandboxes (fills run in
// the background), failing the test if it never does.
func waitWarm(t *testing.T, s *Sandbox, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s.pool.waiting() == n {
			return
		}
	}
	t.Fatalf("the pool holds %d warm sandboxes, want %d", s.pool.waiting(), n)
}

// TestWarmPoolNeverReused checks that a call served from the pool runs in
// a sandbox of its own, made for it: its mount and pid namespaces are not
// the earlier call's, its /tmp holds nothing the earlier call wrote, the
// earlier call's background process is gone, and nothing of the sandbox's
// own set-up is visible. Allow: the session's workspace is shared across
// its calls, as it is without the pool, and the command runs as given.
func TestWarmPoolNeverReused(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.Warm = 2 })
	cs := connect(t, s)
	const probe = `readlink /proc/self/ns/mnt /proc/self/ns/pid | tr '\n' ' '; ls /tmp | tr '\n' ' '; echo; ls /proc/self/fd | sort -n | tr '\n' ' '; echo; cat /proc/[0-9]*/comm | grep -c '^sleep$' || true`
	first := ok(t, sh(t, cs, `echo secret > /tmp/mark; echo ws > ws-mark; (sleep 60 &); `+probe))
	if s.pool.hits.Load() != 0 {
		t.Fatal("the first call of a session cannot have a warm sandbox")
	}
	if len(strings.Fields(first)) < 2 {
		t.Fatalf("probe: %q", first)
	}
	// Namespace inode numbers are not compared across calls: the kernel
	// gives a freed namespace's number to the next one, and the earlier
	// sandbox is gone before the next is made. What a reused sandbox
	// would show is checked instead: each call leaves a file in /tmp and
	// a process behind, and the next must see neither.
	for i := range 3 {
		waitWarm(t, s, 1)
		out := ok(t, sh(t, cs, `cat ws-mark; echo $0; `+probe+`; echo secret > /tmp/mark; (sleep 60 &)`))
		if got := s.pool.hits.Load(); got != int64(i+1) {
			t.Fatalf("call %d: %d calls served warm, want %d", i+2, got, i+1)
		}
		lines := strings.Split(out, "\n")
		if lines[0] != "ws" {
			t.Fatalf("the session's workspace should carry across calls:\n%s", out)
		}
		if lines[1] != shScriptPath {
			t.Fatalf("a warm sh runs its command as %s, got $0 %q", shScriptPath, lines[1])
		}
		if f := strings.Fields(lines[2]); len(f) < 2 || !strings.HasPrefix(f[0], "mnt:[") || !strings.HasPrefix(f[1], "pid:[") {
			t.Fatalf("call %d: no namespaces in the probe:\n%s", i+2, out)
		}
		if strings.Contains(out, "mark") && !strings.Contains(out, "ws-mark") {
			t.Fatalf("the earlier call's /tmp is visible:\n%s", out)
		}
		if len(lines) < 5 || lines[3] != "0 1 2 3 " {
			t.Fatalf("a warm sandbox's command must hold fds 0-2 only (3 is ls's):\n%s", out)
		}
		if n := strings.TrimSpace(lines[4]); n != "0" {
			t.Fatalf("the earlier call's background sleep is visible (%s):\n%s", n, out)
		}
	}
}

// TestWarmPoolPython checks python_run from the pool: the code, its stdin,
// its exit code and its traceback are those of a fresh sandbox, and each
// call's code is its own.
func TestWarmPoolPython(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.Warm = 1 })
	if s.python == "" {
		t.Skip("no python")
	}
	cs := connect(t, s)
	ok(t, py(t, cs, "open('/tmp/x', 'w').write('old')\nprint('cold')"))
	waitWarm(t, s, 1)
	r := call(t, cs, "python_run", map[string]any{"code": "import sys, os\nprint(sys.stdin.read(), __file__, os.path.exists('/tmp/x'))", "stdin": "in"})
	if out := ok(t, r); out != "in "+scriptPath+" False\n" {
		t.Fatalf("warm python_run: %q", out)
	}
	waitWarm(t, s, 1)
	r = py(t, cs, "print('short')\nraise SystemExit(3)")
	if r.exit() != 3 || r.stdout() != "short\n" {
		t.Fatalf("exit code or output of a warm call: %d %q", r.exit(), r.stdout())
	}
	waitWarm(t, s, 1)
	r = py(t, cs, "x = 1\n1/0")
	if r.exit() != 1 || !strings.Contains(r.text, `File "`+scriptPath+`", line 2`) || !strings.Contains(r.text, "ZeroDivisionError") {
		t.Fatalf("traceback of a warm call:\n%s", r.text)
	}
	if got := s.pool.hits.Load(); got != 3 {
		t.Fatalf("%d calls served warm, want 3", got)
	}
}

// TestWarmPoolRebuiltAfterEtcChange checks that a warm sandbox made before
// the host's /etc changed is thrown away, never used: the next call sees
// the new /etc.
func TestWarmPoolRebuiltAfterEtcChange(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.Warm = 1 })
	cs := connect(t, s)
	ok(t, sh(t, cs, "true"))
	waitWarm(t, s, 1)
	// A new /etc copy, as a recheck makes after a change on the host.
	old := s.etc.latest()
	dir := old + "-changed"
	if out, err := exec.Command("cp", "-a", old, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "changed-marker"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := *s.etc.cur.Load()
	c.dir = dir
	s.etc.cur.Store(&c)
	if out := ok(t, sh(t, cs, "cat /etc/changed-marker")); out != "new\n" {
		t.Fatalf("the call after the change sees the old /etc: %q", out)
	}
	if s.pool.hits.Load() != 0 || s.pool.discards.Load() != 1 {
		t.Fatalf("the stale warm sandbox: %d hits, %d discarded; want 0 and 1", s.pool.hits.Load(), s.pool.discards.Load())
	}
	// Allow: the sandbox made after the change serves the next call.
	waitWarm(t, s, 1)
	if out := ok(t, sh(t, cs, "cat /etc/changed-marker")); out != "new\n" || s.pool.hits.Load() != 1 {
		t.Fatalf("the rebuilt warm sandbox: %q, %d hits", out, s.pool.hits.Load())
	}
}

// TestWarmPoolBounds checks that the pool holds at most Config.Warm
// sandboxes across sessions, that a session's sandboxes go when it ends,
// and that Close leaves no process (newTestSandbox checks that).
func TestWarmPoolBounds(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.Warm = 2 })
	var sessions []func() error
	for range 4 {
		cs := connect(t, s)
		ok(t, sh(t, cs, "true"))
		ok(t, py(t, cs, "pass"))
		sessions = append(sessions, cs.Close)
		if n := s.pool.size(); n > 2 {
			t.Fatalf("%d warm sandboxes, more than the bound 2", n)
		}
	}
	waitWarm(t, s, 2)
	for _, c := range sessions {
		c()
	}
	waitWarm(t, s, 0)
}
