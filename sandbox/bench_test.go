package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// directRun runs argv in a bubblewrap sandbox built exactly as a call's
// (same options, limits, seccomp filter and uid), straight from Go with no
// MCP, router or result handling: the floor a call is compared with.
func directRun(b *testing.B, s *Sandbox, ws string, argv []string, files map[string][]byte) {
	args, extra, pipes, err := s.bwrapArgs(&job{ws: &workspace{dir: ws}, files: files})
	if err != nil {
		b.Fatal(err)
	}
	limits, _ := s.limitArgs()
	args = append(append(append(args, "--"), limits...), argv...)
	cmd := exec.Command(s.bwrap, args...)
	cmd.ExtraFiles = extra
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = sysProcAttr(s.cred)
	err = cmd.Run()
	for _, f := range extra {
		f.Close()
	}
	pipes.close()
	if err != nil {
		b.Fatalf("direct bwrap: %v", err)
	}
}

// benchSandbox is the in-process sandbox the direct runs use, configured
// like the membrane binary under test.
func benchSandbox(b *testing.B) (*Sandbox, string) {
	requireBwrap(b)
	cfg := testConfig()
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ws, err := os.MkdirTemp(s.root+"/ws", "bench-")
	if err != nil {
		b.Fatal(err)
	}
	if s.cred != nil {
		os.Chown(ws, s.uid, s.gid)
	}
	return s, ws
}

// BenchmarkShTrue compares `sh true` through membrane over stdio with the
// same bubblewrap command run directly, interleaved in one run. The target
// is a ratio of 1.5 or less.
func BenchmarkShTrue(b *testing.B) {
	s, ws := benchSandbox(b)
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	cs := mcptest.ConnectStdio(b, bin, stdioArgs, stdioEnv, nil)
	args := map[string]any{"cmd": "true"}
	// Warm up both paths.
	directRun(b, s, ws, []string{"/bin/sh", "-c", "true"}, nil)
	call(b, cs, "sh", args)
	var direct, viaMCP time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		directRun(b, s, ws, []string{"/bin/sh", "-c", "true"}, nil)
		t1 := time.Now()
		r := call(b, cs, "sh", args)
		t2 := time.Now()
		if r.res.IsError {
			b.Fatal(r.text)
		}
		direct += t1.Sub(t0)
		viaMCP += t2.Sub(t1)
	}
	b.StopTimer()
	report(b, direct, viaMCP, "direct", "membrane")
}

// BenchmarkPythonPrint compares python_run of print(1) over stdio with a
// bare interpreter start in the same sandbox.
func BenchmarkPythonPrint(b *testing.B) {
	s, ws := benchSandbox(b)
	if s.python == "" {
		b.Skip("no python")
	}
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	cs := mcptest.ConnectStdio(b, bin, stdioArgs, stdioEnv, nil)
	args := map[string]any{"code": "print(1)"}
	argv := []string{s.python, "-c", "print(1)"}
	directRun(b, s, ws, argv, nil)
	call(b, cs, "python_run", args)
	var direct, viaMCP time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		directRun(b, s, ws, argv, nil)
		t1 := time.Now()
		r := call(b, cs, "python_run", args)
		t2 := time.Now()
		if r.res.IsError {
			b.Fatal(r.text)
		}
		direct += t1.Sub(t0)
		viaMCP += t2.Sub(t1)
	}
	b.StopTimer()
	report(b, direct, viaMCP, "bare-python", "python_run")
}

func report(b *testing.B, base, got time.Duration, baseName, gotName string) {
	n := float64(b.N)
	b.ReportMetric(float64(base.Nanoseconds())/n, baseName+"-ns/call")
	b.ReportMetric(float64(got.Nanoseconds())/n, gotName+"-ns/call")
	b.ReportMetric(float64(got)/float64(base), "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkParallel100 makes 100 sh calls at once through the MCP adapter
// and checks that none fails and that no process is left afterwards. It
// reports calls per second and the host's process count against the
// baseline taken before.
func BenchmarkParallel100(b *testing.B) {
	requireBwrap(b)
	cfg := testConfig()
	cfg.Concurrency = 100
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	cs := mcptest.Connect(b, r, nil)
	baseline := hostProcs()
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan string, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := call(b, cs, "sh", map[string]any{"cmd": fmt.Sprintf("echo %d", i)})
				if res.res.IsError || res.stdout() != fmt.Sprintf("%d\n", i) {
					errs <- res.text
				}
			}()
		}
		wg.Wait()
		total += time.Since(t0)
		close(errs)
		for e := range errs {
			b.Fatalf("a parallel call failed:\n%s", e)
		}
	}
	b.StopTimer()
	if d := waitNoDescendants(); len(d) > 0 {
		b.Fatalf("%d processes left after the parallel calls", len(d))
	}
	b.ReportMetric(100*float64(b.N)/total.Seconds(), "calls/s")
	b.ReportMetric(float64(hostProcs()-baseline), "host-procs-delta")
	b.ReportMetric(0, "ns/op")
}

func hostProcs() int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
			n++
		}
	}
	return n
}

// BenchmarkRouterShTrue is `sh true` through the router in process, no MCP:
// where the time between the direct run and the stdio call goes.
func BenchmarkRouterShTrue(b *testing.B) {
	s, ws := benchSandbox(b)
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	sess := calls.NewSession("")
	defer sess.Close()
	args := json.RawMessage(`{"cmd":"true"}`)
	var direct, routed time.Duration
	for range b.N {
		t0 := time.Now()
		directRun(b, s, ws, []string{"/bin/sh", "-c", "true"}, nil)
		t1 := time.Now()
		res, err := r.Call(context.Background(), "sh", &calls.Request{Arguments: args, Session: sess})
		t2 := time.Now()
		if err != nil || res.IsError {
			b.Fatal(err, res.TextOf())
		}
		direct += t1.Sub(t0)
		routed += t2.Sub(t1)
	}
	report(b, direct, routed, "direct", "router")
}

// BenchmarkCgroupCost runs `sh true` through the router in two sandboxes,
// one giving each call a cgroup (as membrane does where it can) and one
// without (NoCgroup), interleaved in one run: the difference is what the
// cgroup costs a call (make it, join the sandbox's init, read its OOM count,
// remove it).
func BenchmarkCgroupCost(b *testing.B) {
	requireBwrap(b)
	mk := func(noCgroup bool) (*calls.Router, *calls.Session, *Sandbox) {
		cfg := testConfig()
		cfg.NoCgroup = noCgroup
		s, err := New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		r := calls.NewRouter(nil)
		for _, c := range s.Calls() {
			r.Add(c)
		}
		sess := calls.NewSession("")
		b.Cleanup(sess.Close)
		return r, sess, s
	}
	withR, withS, withSb := mk(false)
	if withSb.cg == nil {
		b.Skipf("no cgroup here: %v", withSb.cgErr)
	}
	bareR, bareS, _ := mk(true)
	args := json.RawMessage(`{"cmd":"true"}`)
	run := func(r *calls.Router, sess *calls.Session) time.Duration {
		t0 := time.Now()
		res, err := r.Call(context.Background(), "sh", &calls.Request{Arguments: args, Session: sess})
		if err != nil || res.IsError {
			b.Fatal(err, res.TextOf())
		}
		return time.Since(t0)
	}
	run(withR, withS)
	run(bareR, bareS)
	var with, bare time.Duration
	b.ResetTimer()
	for range b.N {
		bare += run(bareR, bareS)
		with += run(withR, withS)
	}
	b.StopTimer()
	report(b, bare, with, "no-cgroup", "cgroup")
	b.ReportMetric(float64((with-bare).Nanoseconds())/float64(b.N), "cgroup-ns/call")
}
