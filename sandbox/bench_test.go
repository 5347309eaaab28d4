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

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// directRun runs argv in a bubblewrap sandbox built exactly as a call's
// (same options, seccomp filter and uid), straight from Go with no MCP,
// router, rlimits, cgroup or result handling: the floor a call is compared
// with.
func directRun(b *testing.B, s *Sandbox, ws string, argv []string, files map[string][]byte) {
	args, extra, pipes, err := s.bwrapArgs(context.Background(), &job{ws: &workspace{dir: ws}, files: files})
	if err != nil {
		b.Fatal(err)
	}
	runBwrap(b, s, append(append(args, "--"), argv...), extra)
	pipes.close()
}

// bareBwrapArgs is the plainest bwrap spawn with the same namespaces, uid
// and read-only root as a call's, without membrane's masks, binds, private
// /etc, tmpfs caps or seccomp filter: the floor the issue measures against.
func bareBwrapArgs(s *Sandbox, argv ...string) []string {
	a := []string{"--unshare-all", "--die-with-parent", "--new-session", "--clearenv"}
	if s.bwrapFeat.disableUserns {
		a = append(a, "--unshare-user", "--disable-userns")
	}
	a = append(a, "--uid", "1000", "--gid", "1000", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--chdir", "/", "--")
	return append(a, argv...)
}

func runBwrap(b *testing.B, s *Sandbox, args []string, extra []*os.File) {
	cmd := exec.Command(s.bwrap, args...)
	cmd.ExtraFiles = extra
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = sysProcAttr(s.cred)
	err := cmd.Run()
	for _, f := range extra {
		f.Close()
	}
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

// BenchmarkShTrue compares `sh true` through membrane over stdio with two
// floors measured in the same run, interleaved: the bare bwrap spawn (same
// namespaces, uid and read-only root, nothing else) and the same bwrap
// command line a call uses (the same isolation: masks, binds, private
// /etc, tmpfs caps, seccomp), run directly. The target is
// ratio-vs-same-args of 1.3 or less (target-ratio); ratio-vs-bare-bwrap
// is what membrane's isolation and own work cost together.
//
// "warm" is membrane as it runs by default, with its pool of pre-started
// sandboxes; "cold" is --warm -1, each call setting its sandbox up. Each
// round ends with an untimed pause (pace) in which a warm sandbox for the
// next call is made, as it is between a client's calls: a model takes far
// longer than that to answer.
func BenchmarkShTrue(b *testing.B) {
	for _, pool := range []string{"warm", "cold"} {
		b.Run(pool, func(b *testing.B) { benchShTrue(b, pool) })
	}
}

// poolArgs are membrane's flags for the warm or cold form of a benchmark.
func poolArgs(pool string) []string {
	if pool == "cold" {
		return append([]string{"--warm", "-1"}, stdioArgs...)
	}
	return stdioArgs
}

// pace is the untimed pause after a round whose direct run took direct:
// room for the pool to make the next warm sandbox (about one direct run
// of work) on a loaded machine.
func pace(direct time.Duration) { time.Sleep(3*direct + 10*time.Millisecond) }

func benchShTrue(b *testing.B, pool string) {
	s, ws := benchSandbox(b)
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	cs := mcptest.ConnectStdio(b, bin, poolArgs(pool), stdioEnv, nil)
	args := map[string]any{"cmd": "true"}
	argv := []string{"/bin/sh", "-c", "true"}
	bare := func() { runBwrap(b, s, bareBwrapArgs(s, argv...), nil) }
	// Warm up every path.
	bare()
	directRun(b, s, ws, argv, nil)
	call(b, cs, "sh", args)
	pace(10 * time.Millisecond)
	var tBare, direct, viaMCP time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		bare()
		t1 := time.Now()
		directRun(b, s, ws, argv, nil)
		t2 := time.Now()
		r := call(b, cs, "sh", args)
		t3 := time.Now()
		if r.res.IsError {
			b.Fatal(r.text)
		}
		tBare += t1.Sub(t0)
		direct += t2.Sub(t1)
		viaMCP += t3.Sub(t2)
		b.StopTimer()
		pace(t2.Sub(t1))
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(tBare.Nanoseconds())/n, "bare-bwrap-ns/call")
	b.ReportMetric(float64(direct.Nanoseconds())/n, "same-args-ns/call")
	b.ReportMetric(float64(viaMCP.Nanoseconds())/n, "membrane-ns/call")
	b.ReportMetric(float64(viaMCP)/float64(tBare), "ratio-vs-bare-bwrap")
	b.ReportMetric(float64(viaMCP)/float64(direct), "ratio-vs-same-args")
	b.ReportMetric(1.3, "target-ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPythonPrint compares python_run of print(1) over stdio with a
// bare `python3 -I -S` outside any sandbox (ratio; the target, with
// the pool on, is 1.2 or less: target-ratio) and with the same interpreter
// started in a call's bwrap command line, run directly. The interpreter is
// the one membrane runs, checked to be a real binary and not a shim (such
// as pyenv's) that would slow the baseline. Rounds are paced as in
// BenchmarkShTrue.
func BenchmarkPythonPrint(b *testing.B) {
	for _, pool := range []string{"warm", "cold"} {
		b.Run(pool, func(b *testing.B) { benchPythonPrint(b, pool) })
	}
}

func benchPythonPrint(b *testing.B, pool string) {
	s, ws := benchSandbox(b)
	if s.python == "" {
		b.Skip("no python")
	}
	if real, err := resolvePython(s.python); err != nil || real != s.python {
		b.Fatalf("the baseline interpreter %s is not a real binary: %v", s.python, err)
	}
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	cs := mcptest.ConnectStdio(b, bin, append([]string{"--python", s.python}, poolArgs(pool)...), stdioEnv, nil)
	args := map[string]any{"code": "print(1)"}
	argv := []string{s.python, "-c", "print(1)"}
	bare := func() {
		if err := exec.Command(s.python, "-I", "-S", "-c", "print(1)").Run(); err != nil {
			b.Fatal(err)
		}
	}
	bare()
	directRun(b, s, ws, argv, nil)
	call(b, cs, "python_run", args)
	pace(30 * time.Millisecond)
	var tBare, direct, viaMCP time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		bare()
		t1 := time.Now()
		directRun(b, s, ws, argv, nil)
		t2 := time.Now()
		r := call(b, cs, "python_run", args)
		t3 := time.Now()
		if r.res.IsError {
			b.Fatal(r.text)
		}
		tBare += t1.Sub(t0)
		direct += t2.Sub(t1)
		viaMCP += t3.Sub(t2)
		b.StopTimer()
		pace(t2.Sub(t1))
		b.StartTimer()
	}
	b.StopTimer()
	report(b, tBare, viaMCP, "bare-python", "python_run")
	b.ReportMetric(float64(direct.Nanoseconds())/float64(b.N), "python-in-bwrap-ns/call")
	b.ReportMetric(float64(viaMCP)/float64(direct), "ratio-vs-python-in-bwrap")
	b.ReportMetric(1.2, "target-ratio")
	b.Logf("interpreter %s", s.python)
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

// BenchmarkFirstCall times the first call of a new session (sh true,
// python_run print(1)) through the router in process, in two sandboxes
// interleaved in one run: one whose pool keeps a spare workspace ready
// (spare, as membrane runs) and one without (no-spare: a first call sets
// its sandbox up, as before spares). Each round opens a session, times
// its first call, closes the session and pauses untimed (pace) for the
// pool to refill, as between clients.
//
// The first-session cases time the first call of the first session of a
// new Sandbox instead, one made for each round (with Warm 4 and Prewarm
// as "spare", and Warm 0 as "no-spare"), after an untimed pause for the start-up
// probe and anything prepared in the background, as a client's
// initialize and tools/list give it.
func BenchmarkFirstCall(b *testing.B) {
	for _, tool := range []string{"sh", "python_run"} {
		b.Run(tool, func(b *testing.B) { benchFirstCall(b, tool) })
	}
	for _, tool := range []string{"sh", "python_run"} {
		b.Run("first-session/"+tool, func(b *testing.B) { benchFirstSession(b, tool) })
	}
}

func benchFirstSession(b *testing.B, tool string) {
	requireBwrap(b)
	args := json.RawMessage(`{"cmd":"true"}`)
	if tool == "python_run" {
		args = json.RawMessage(`{"code":"print(1)"}`)
	}
	first := func(warm int) time.Duration {
		b.StopTimer()
		cfg := testConfig()
		cfg.Warm = warm
		s, err := New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if tool == "python_run" && s.python == "" {
			b.Skip("no python")
		}
		r := calls.NewRouter(nil)
		for _, c := range s.Calls() {
			r.Add(c)
		}
		if warm > 0 {
			s.Prewarm() // as membrane does once its tools are in
		}
		sess := calls.NewSession("")
		defer sess.Close()
		time.Sleep(300 * time.Millisecond)
		b.StartTimer()
		return timedCall(b, r, tool, args, sess)
	}
	var spare, cold time.Duration
	b.ResetTimer()
	alternate(b.N, func() { spare += first(4) }, func() { cold += first(0) })
	b.StopTimer()
	report(b, cold, spare, "no-spare", "spare")
}

func benchFirstCall(b *testing.B, tool string) {
	requireBwrap(b)
	mk := func(spare bool) (*calls.Router, *Sandbox) {
		cfg := testConfig()
		cfg.Warm = 4
		s, err := New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		s.pool.noSpare.Store(!spare)
		b.Cleanup(func() { s.Close() })
		if tool == "python_run" && s.python == "" {
			b.Skip("no python")
		}
		r := calls.NewRouter(nil)
		for _, c := range s.Calls() {
			r.Add(c)
		}
		return r, s
	}
	args := json.RawMessage(`{"cmd":"true"}`)
	if tool == "python_run" {
		args = json.RawMessage(`{"code":"print(1)"}`)
	}
	first := func(r *calls.Router) time.Duration {
		sess := calls.NewSession("")
		defer sess.Close()
		return timedCall(b, r, tool, args, sess)
	}
	spareR, spareS := mk(true)
	coldR, _ := mk(false)
	// Teach the spare pool the call's form; warm up both.
	first(spareR)
	first(coldR)
	pace(50 * time.Millisecond)
	var spare, cold time.Duration
	hits := spareS.pool.hits.Load()
	b.ResetTimer()
	for range b.N {
		cold += first(coldR)
		spare += first(spareR)
		b.StopTimer()
		pace(cold / time.Duration(b.N))
		b.StartTimer()
	}
	b.StopTimer()
	report(b, cold, spare, "no-spare", "spare")
	b.ReportMetric(float64(spareS.pool.hits.Load()-hits)/float64(b.N), "spare-hits/call")
}

// BenchmarkFirstCallAfterStart times the first call of the first session
// of a membrane process (sh true, python_run print(1)) over stdio, from
// the tools/call request to its result, for membrane as it runs by
// default (warm) and with --warm -1 (cold), processes alternating round
// by round. Each process is started, initialized and listed (untimed), and
// then called: at once ("at-once", a scripted client) or after a pause
// ("think", a model's turn between the list and the first call).
func BenchmarkFirstCallAfterStart(b *testing.B) {
	for _, tool := range []string{"sh", "python_run"} {
		for _, when := range []string{"at-once", "think"} {
			b.Run(tool+"/"+when, func(b *testing.B) { benchFirstCallAfterStart(b, tool, when == "think") })
		}
	}
}

func benchFirstCallAfterStart(b *testing.B, tool string, think bool) {
	requireBwrap(b)
	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	args := map[string]any{"cmd": "true"}
	if tool == "python_run" {
		args = map[string]any{"code": "print(1)"}
	}
	first := func(pool string) time.Duration {
		cmd := exec.Command(bin, poolArgs(pool)...)
		cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), stdioEnv...)
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench"}, nil).Connect(context.Background(),
			&sdk.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer cs.Close()
		if _, err := cs.ListTools(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		if think {
			time.Sleep(500 * time.Millisecond)
		}
		t0 := time.Now()
		r := call(b, cs, tool, args)
		d := time.Since(t0)
		if r.res.IsError || r.exit() != 0 {
			b.Fatal(r.text)
		}
		return d
	}
	first("warm") // the page cache
	var warm, cold time.Duration
	b.ResetTimer()
	alternate(b.N, func() { warm += first("warm") }, func() { cold += first("cold") })
	b.StopTimer()
	report(b, cold, warm, "cold", "warm")
}

// alternate runs a and b n times each, swapping which goes first every
// round, so that neither always runs in the other's wake.
func alternate(n int, a, b func()) {
	for i := range n {
		if i%2 == 0 {
			a()
			b()
		} else {
			b()
			a()
		}
	}
}

// timedCall times one call of tool through r in sess, which must succeed.
func timedCall(b *testing.B, r *calls.Router, tool string, args json.RawMessage, sess *calls.Session) time.Duration {
	t0 := time.Now()
	res, err := r.Call(context.Background(), tool, &calls.Request{Arguments: args, Session: sess})
	d := time.Since(t0)
	if err != nil || res.IsError {
		b.Fatal(err, res.TextOf())
	}
	return d
}
