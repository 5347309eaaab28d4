package sandbox

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// spareReady returns how many sandboxes wait for the pool's spare
// workspace, and its directory.
func spareReady(s *Sandbox) (int, string) {
	wp := s.pool
	wp.mu.Lock()
	defer wp.mu.Unlock()
	n := 0
	for _, pr := range wp.idle {
		if wp.spare != "" && pr.key.ws == wp.spare {
			n++
		}
	}
	return n, wp.spare
}

// waitSpare waits until n sandboxes wait for the spare workspace and
// returns its directory.
func waitSpare(t *testing.T, s *Sandbox, n int) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got, dir := spareReady(s); got == n {
			return dir
		}
	}
	got, _ := spareReady(s)
	t.Fatalf("%d sandboxes wait for the spare workspace, want %d", got, n)
	return ""
}

// workspaceDirs returns the live sessions' workspace directories.
func workspaceDirs(s *Sandbox) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ws := range s.workspaces {
		out = append(out, ws.dir)
	}
	return out
}

// TestWarmPoolSpareFirstCall checks that a new session's first sh and
// first python_run are served warm, from the spare workspace it adopted,
// and that they see an empty workspace and nothing of another session.
func TestWarmPoolSpareFirstCall(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.Warm = 4 })
	a := connect(t, s)
	ok(t, sh(t, a, "echo secret > a-marker"))
	ok(t, py(t, a, "open('a-py', 'w').write('x')"))
	spare := waitSpare(t, s, 2)

	b := connect(t, s)
	hits := s.pool.hits.Load()
	out := ok(t, sh(t, b, "ls -A "+WorkspaceDir+"; ls -A "+WorkspaceDir+"/"+OutDir+"; cat "+WorkspaceDir+"/a-marker 2>&1 || true"))
	if got := s.pool.hits.Load() - hits; got != 1 {
		t.Fatalf("a new session's first sh: %d warm hits, want 1", got)
	}
	if !strings.HasPrefix(out, OutDir+"\n") || strings.Contains(out, "a-py") || strings.Contains(out, "secret") {
		t.Fatalf("a new session's first sh saw %q, want only an empty %s/", out, OutDir)
	}
	if dirs := workspaceDirs(s); !slices.Contains(dirs, spare) {
		t.Fatalf("the spare %s is not a session's workspace: %v", spare, dirs)
	}
	hits = s.pool.hits.Load()
	pyOut := ok(t, py(t, b, "import os; print(sorted(os.listdir('.')))"))
	if got := s.pool.hits.Load() - hits; got != 1 {
		t.Fatalf("a new session's first python_run: %d warm hits, want 1", got)
	}
	if pyOut != "['"+OutDir+"']\n" {
		t.Fatalf("a new session's first python_run saw %q", pyOut)
	}

	// Control: the first session still sees its own files.
	if out := ok(t, sh(t, a, "cat a-marker")); out != "secret\n" {
		t.Fatalf("the first session's own file: %q", out)
	}
	// The next spare is a new directory, never the adopted one: once
	// the sessions end, their room goes to it.
	a.Close()
	b.Close()
	if next := waitSpare(t, s, 2); next == spare {
		t.Fatalf("the adopted spare %s was offered again", spare)
	}
	if n := s.pool.size(); n > 4 {
		t.Fatalf("%d warm sandboxes, more than the bound 4", n)
	}
}

// TestWarmPoolSpareNeverShared starts sessions at once: each gets a
// workspace of its own, at least one of them the spare, and none sees
// another's files.
func TestWarmPoolSpareNeverShared(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.Warm = 4 })
	ok(t, sh(t, connect(t, s), "true"))
	waitSpare(t, s, 1)
	hits := s.pool.hits.Load()
	const n = 3
	var wg sync.WaitGroup
	outs := make([]string, n)
	for i := range n {
		cs := connect(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := sh(t, cs, fmt.Sprintf("touch mine-%d; ls -A", i))
			outs[i] = r.stdout()
		}()
	}
	wg.Wait()
	for i, out := range outs {
		if want := fmt.Sprintf("mine-%d\n%s\n", i, OutDir); out != want {
			t.Errorf("session %d saw %q, want %q", i, out, want)
		}
	}
	if got := s.pool.hits.Load() - hits; got < 1 {
		t.Errorf("no first call was served from the spare (%d hits)", got)
	}
	dirs := workspaceDirs(s)
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			t.Errorf("two sessions share the workspace %s", d)
		}
		seen[d] = true
	}
}

// TestWarmPoolSpareClose checks that Close kills the spare's sandboxes and
// removes its directory (newTestSandbox's cleanup checks that no process
// and no directory of the root is left too).
func TestWarmPoolSpareClose(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.Warm = 2 })
	cs := connect(t, s)
	ok(t, sh(t, cs, "true"))
	ok(t, py(t, cs, "pass"))
	// The session's next calls and the spare share the bound.
	waitWarm(t, s, 2)
	if n := s.pool.size(); n > 2 {
		t.Fatalf("%d warm sandboxes, more than the bound 2", n)
	}
	// Once the session ends, its room goes to the spare.
	cs.Close()
	dir := waitSpare(t, s, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Close left the spare %s (stat: %v)", dir, err)
	}
	if d := waitNoDescendants(); len(d) > 0 {
		t.Fatalf("processes left after Close: %v", d)
	}
}

// TestWarmPoolNoSpareForNamedWorkspace checks that a workspace the
// configuration names has no spare: sessions share it, as configured.
func TestWarmPoolNoSpareForNamedWorkspace(t *testing.T) {
	requireBwrap(t)
	dir := reachableTempDir(t)
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, RootRunAsUID, RootRunAsUID); err != nil {
			t.Fatal(err)
		}
	}
	s := newTestSandbox(t, func(c *Config) { c.Warm = 2; c.Workspace = dir })
	ok(t, sh(t, connect(t, s), "touch shared"))
	waitWarm(t, s, 1)
	if _, spare := spareReady(s); spare != "" {
		t.Fatalf("a spare %s beside the named workspace", spare)
	}
	if out := ok(t, sh(t, connect(t, s), "ls")); out != "shared\n" {
		t.Fatalf("a second session in the named workspace saw %q", out)
	}
}

// TestWarmPoolPrewarm checks that Prewarm makes the very first session's
// first sh and python_run warm, called at once, before any call has shown
// the pool their forms: each is served from the spare, in an empty
// workspace, as the script form ($0, argv[0]) a warm sandbox runs. The
// control, a sandbox without Prewarm, serves its first call fresh. (One
// Sandbox per subtest: a check for processes left behind counts another
// live Sandbox's fills in flight.)
func TestWarmPoolPrewarm(t *testing.T) {
	t.Run("prewarmed", func(t *testing.T) {
		s := newTestSandbox(t, func(c *Config) { c.Warm = 4 })
		s.Prewarm()
		cs := connect(t, s)
		if out := ok(t, sh(t, cs, `echo "$0"; ls -A`)); out != shScriptPath+"\n"+OutDir+"\n" {
			t.Fatalf("the first session's first sh saw %q, want the warm script form and an empty workspace", out)
		}
		if got := s.pool.hits.Load(); got != 1 {
			t.Fatalf("the first sh: %d warm hits, want 1", got)
		}
		if s.python != "" {
			if out := ok(t, py(t, cs, "import sys; print(sys.argv[0])")); out != scriptPath+"\n" {
				t.Fatalf("the first python_run saw %q", out)
			}
			if got := s.pool.hits.Load(); got != 2 {
				t.Fatalf("the first sh and python_run: %d warm hits, want 2", got)
			}
		}
		if n := s.pool.size(); n > 4 {
			t.Fatalf("%d warm sandboxes, more than the bound 4", n)
		}
		cs.Close()
		waitSpare(t, s, 2) // quiet before the cleanup counts processes
	})
	t.Run("control", func(t *testing.T) {
		s := newTestSandbox(t, func(c *Config) { c.Warm = 4 })
		cs := connect(t, s)
		if out := ok(t, sh(t, cs, `echo "$0"`)); out == shScriptPath+"\n" || s.pool.hits.Load() != 0 {
			t.Fatalf("without Prewarm the first sh was served warm (%q, %d hits)", out, s.pool.hits.Load())
		}
		cs.Close()
		waitSpare(t, s, 1)
	})
}

// TestWarmPoolPrewarmBounds checks that Prewarm stays within Config.Warm
// (one sandbox for a bound of one), and makes nothing for a named
// workspace, without a pool, or after Close.
func TestWarmPoolPrewarmBounds(t *testing.T) {
	t.Run("warm 1", func(t *testing.T) {
		s := newTestSandbox(t, func(c *Config) { c.Warm = 1 })
		s.Prewarm()
		waitSpare(t, s, 1)
		if n := s.pool.size(); n != 1 {
			t.Fatalf("%d warm sandboxes for a bound of 1", n)
		}
	})
	t.Run("named workspace", func(t *testing.T) {
		dir := reachableTempDir(t)
		if os.Geteuid() == 0 {
			if err := os.Chown(dir, RootRunAsUID, RootRunAsUID); err != nil {
				t.Fatal(err)
			}
		}
		s := newTestSandbox(t, func(c *Config) { c.Warm = 2; c.Workspace = dir })
		s.Prewarm()
		if n, spare := spareReady(s); n != 0 || spare != "" || s.pool.size() != 0 {
			t.Fatalf("Prewarm with a named workspace: spare %q with %d sandboxes, %d in the pool", spare, n, s.pool.size())
		}
	})
	t.Run("no pool", func(t *testing.T) {
		newTestSandbox(t, func(c *Config) { c.Warm = 0 }).Prewarm()
	})
	t.Run("closed", func(t *testing.T) {
		s := newTestSandbox(t, func(c *Config) { c.Warm = 2 })
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.Prewarm()
		if n := s.pool.size(); n != 0 {
			t.Fatalf("Prewarm after Close made %d sandboxes", n)
		}
	})
}
