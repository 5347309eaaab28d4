package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCgroupSetup is the cgroup's own part of a call, measured
// without a sandbox around it: make the cgroup with its limits, move a
// process in (as the sandbox's init is moved), read its OOM count, move the
// process out and remove the cgroup.
func BenchmarkCgroupSetup(b *testing.B) {
	cg, err := setupCgroups()
	if err != nil {
		b.Skipf("no cgroup here: %v", err)
	}
	defer cg.close()
	p := exec.Command("sleep", "1000")
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { p.Process.Kill(); p.Wait() }()
	pid := strconv.Itoa(p.Process.Pid)
	for range b.N {
		cc, err := cg.newCall(512<<20, 68)
		if err != nil {
			b.Fatal(err)
		}
		if err := cc.join(p.Process.Pid); err != nil {
			b.Fatal(err)
		}
		cc.oomKills()
		// Out again, to the base, so that the cgroup can go.
		writeCgroupFile(cg.mem, "cgroup.procs", pid)
		if cg.pids != "" {
			writeCgroupFile(cg.pids, "cgroup.procs", pid)
		}
		if err := cc.remove(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCgroupPerCall checks that a call's processes really are in its
// cgroup while it runs (the sandbox's own view says nothing), that the
// cgroup carries the limits, and that nothing is left in the hierarchy
// after the call and after Close.
func TestCgroupPerCall(t *testing.T) {
	s := newTestSandbox(t, nil)
	if s.cg == nil {
		if os.Geteuid() == 0 && os.Getenv("MEMBRANE_REQUIRE_E2E") == "1" {
			t.Fatalf("root, but no cgroup: %v", s.cgErr)
		}
		t.Skipf("no cgroup here: %v", s.cgErr)
	}
	base := s.cg.mem
	cs := connect(t, s)
	done := make(chan ran, 1)
	go func() { done <- sh(t, cs, `sleep 2 & sleep 2 & wait; echo finished`) }()
	var procs []string
	var limit string
	for range 200 {
		ents, _ := os.ReadDir(base)
		procs = nil
		for _, e := range ents {
			if e.IsDir() {
				// The call's is the cgroup with the most processes (a
				// warm sandbox waiting in the pool has its own, holding
				// just its init).
				b, _ := os.ReadFile(filepath.Join(base, e.Name(), "cgroup.procs"))
				p := strings.Fields(string(b))
				if len(p) <= len(procs) {
					continue
				}
				procs = p
				file := "memory.limit_in_bytes"
				if s.cg.kind == MemoryCgroup2 {
					file = "memory.max"
				}
				l, _ := os.ReadFile(filepath.Join(base, e.Name(), file))
				limit = strings.TrimSpace(string(l))
			}
		}
		if len(procs) >= 4 { // init, sh and two sleeps
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(procs) < 4 {
		t.Fatalf("the call's cgroup holds %v, want its init, shell and both sleeps", procs)
	}
	if limit != strconv.FormatInt(testConfig().MemoryBytes, 10) {
		t.Fatalf("memory limit %q, want %d", limit, testConfig().MemoryBytes)
	}
	if out := ok(t, <-done); out != "finished\n" {
		t.Fatalf("%q", out)
	}
	// After the call its cgroup is gone: what is left belongs to warm
	// sandboxes waiting in the pool (MEMBRANE_TEST_WARM), if any.
	// (It is removed just after the result, in the background.)
	left := func() ([]string, int) {
		warm := 0
		if s.pool != nil {
			warm = s.pool.size()
		}
		ents, _ := os.ReadDir(base)
		return dirsOf(ents), warm
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		dirs, warm := left()
		if len(dirs) <= warm {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroups left after the call: %v (%d warm sandboxes)", dirs, warm)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Fatalf("%s left after Close", base)
	}
}

func dirsOf(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
