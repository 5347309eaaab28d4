package ollama_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// BenchmarkBinaryGCPercent runs the membrane binary under several
// collector paces (GOGC) side by side, each over stdio and over streamable
// HTTP (the newest protocol), and times in turn (the order rotates) one
// chat through a backend on each, the same chat straight to the backend,
// and a no-op call on each (sh with an unknown argument: decoded, routed,
// refused by validation, no sandbox). "default" is the binary with GOGC
// unset, which is what users run; the others set it ("off": no collection
// until the soft memory limit, the most a pace can buy). default and 100
// are the same while the default pace is 100: their spread is the noise.
//
// The ways run in a new random order every round. Per pace P and
// transport T: P_T_ratio is its chat's median over the
// straight one's (as in BenchmarkBackendChatOverhead), P_T_noop_x its
// no-op call's median over GOGC=100's on the same transport. Memory, per
// pace, of the HTTP process: P_idle_MiB the resident size once its tools
// are listed and one call of each kind made, P_burst_MiB after a burst of
// 8 × 250 concurrent no-op calls and P_peak_MiB its high-water mark; and
// P_T_cpu_µs, the CPU time the process used per call it served while
// timed, which the machine's load stretches less than the wall time. For
// steady medians on a loaded machine, run it with -benchtime=15x (300
// rounds).
func BenchmarkBinaryGCPercent(b *testing.B) {
	srv := ollamatest.Start(b)
	srv.Create(b, "scripted:latest", scripted())
	prompt := "What did the command print?"
	body := capturedChatBody(b, srv.URL, "chat_scripted", prompt)
	viaDirect := directChat(b, &http.Client{}, srv.URL, body, scriptAnswer)
	viaDirect() // load the model

	bin := mcptest.BuildBinary(b, "./cmd/membrane")
	args := []string{"--ollama-host", "127.0.0.1:1", "--openai-backend", "friend=" + srv.URL + "/v1"}
	paces := []string{"default", "100", "200", "400", "off"}
	type proc struct {
		pace              string
		stdio, ht         *sdk.ClientSession
		stdioPID, httpPID int
	}
	var procs []proc
	for _, p := range paces {
		// GOGC= is unset for the runtime and for membrane alike; the
		// test's own GOGC, if any, must not leak into the child.
		// Each process has a call store of its own, as a user's has.
		env := []string{"MEMBRANE_LOG_LEVEL=error", "GOGC=", "GOMEMLIMIT="}
		if p != "default" {
			env = append(env, "GOGC="+p)
		}
		stdio, sp := mcptest.ConnectStdioProcess(b, bin, args, append(env, "XDG_STATE_HOME="+b.TempDir()), nil)
		url, hpid := startHTTPBinaryPID(b, bin, args, append(env, "XDG_STATE_HOME="+b.TempDir()))
		procs = append(procs, proc{pace: p, stdio: stdio, ht: mcptest.ConnectHTTP(b, url, "", nil), stdioPID: sp.Pid, httpPID: hpid})
	}
	chat := func(cs *sdk.ClientSession) func() {
		return func() {
			res, err := cs.CallTool(b.Context(), &sdk.CallToolParams{Name: "chat_scripted", Arguments: map[string]any{"prompt": prompt}})
			if err != nil || res.IsError || strings.TrimSpace(firstText(res)) != strings.TrimSpace(scriptAnswer) {
				b.Fatalf("membrane: %v %v", err, res)
			}
		}
	}
	noop := func(cs *sdk.ClientSession) func() {
		return func() {
			res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"nope": 1}})
			if err != nil || !res.IsError {
				b.Fatalf("no-op call: %v %v, want a tool error", err, res)
			}
		}
	}
	ways := []func(){viaDirect}
	for _, p := range procs {
		waitForTool(b, p.stdio, "chat_scripted")
		waitForTool(b, p.ht, "chat_scripted")
		ways = append(ways, chat(p.stdio), chat(p.ht), noop(p.stdio), noop(p.ht))
	}
	for _, w := range ways {
		w()
	}
	time.Sleep(time.Second)
	idle := make([]float64, len(procs))
	for i, p := range procs {
		idle[i] = statusMiB(p.httpPID, "VmRSS")
	}

	cpu0 := make([][2]time.Duration, len(procs))
	for i, p := range procs {
		cpu0[i] = [2]time.Duration{procCPU(p.stdioPID), procCPU(p.httpPID)}
	}
	// In a new random order every round: in a fixed cycle each way would
	// always follow the same one, and what that one leaves behind (the
	// backend's state, a cache, a collection due) would fall on it alone.
	// Twenty rounds per b.Loop round: -benchtime=2s would allow only a
	// few dozen rounds otherwise.
	times := make([][]time.Duration, len(ways))
	for b.Loop() {
		for range 20 {
			for _, k := range rand.Perm(len(ways)) {
				t0 := time.Now()
				ways[k]()
				times[k] = append(times[k], time.Since(t0))
			}
		}
	}
	for i, p := range procs {
		// Each process served one chat and one no-op call a round.
		n := time.Duration(2 * len(times[0]))
		b.ReportMetric(float64(((procCPU(p.stdioPID) - cpu0[i][0]) / n).Microseconds()), p.pace+"_stdio_cpu_µs")
		b.ReportMetric(float64(((procCPU(p.httpPID) - cpu0[i][1]) / n).Microseconds()), p.pace+"_http_cpu_µs")
	}

	direct := median(times[0])
	noop100 := [2]time.Duration{median(times[1+4*1+2]), median(times[1+4*1+3])}
	for i, p := range procs {
		t := times[1+4*i:]
		b.ReportMetric(float64(median(t[0]))/float64(direct), p.pace+"_stdio_ratio")
		b.ReportMetric(float64(median(t[1]))/float64(direct), p.pace+"_http_ratio")
		b.ReportMetric(float64(median(t[2]))/float64(noop100[0]), p.pace+"_stdio_noop_x")
		b.ReportMetric(float64(median(t[3]))/float64(noop100[1]), p.pace+"_http_noop_x")
	}
	b.ReportMetric(float64(direct.Microseconds()), "direct_µs")
	b.ReportMetric(float64(noop100[0].Microseconds()), "100_stdio_noop_µs")
	b.ReportMetric(float64(noop100[1].Microseconds()), "100_http_noop_µs")

	// The burst, one pace at a time so that each has the machine alike.
	b.StopTimer()
	for i, p := range procs {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 250 {
					noop(p.ht)()
				}
			})
		}
		wg.Wait()
		b.ReportMetric(idle[i], p.pace+"_idle_MiB")
		b.ReportMetric(statusMiB(p.httpPID, "VmRSS"), p.pace+"_burst_MiB")
		b.ReportMetric(statusMiB(p.httpPID, "VmHWM"), p.pace+"_peak_MiB")
	}
	b.ReportMetric(0, "ns/op")
}

// procCPU is the CPU time process pid's threads have used, from
// /proc/PID/task/*/schedstat (nanoseconds), or 0 where /proc does not say.
func procCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(data))
		if len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// statusMiB reads one "Key: N kB" line of /proc/PID/status, in MiB (0
// where it cannot).
func statusMiB(pid int, key string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key+":" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
