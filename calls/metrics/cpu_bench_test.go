package metrics_test

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// cpuTime is the process's user and system time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle waits until r's observers have taken every event of the calls
// made so far (each of them wants one per call), so that their work is
// counted in the block that caused it.
func settle(b *testing.B, r *calls.Router, calls uint64) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		done := true
		for _, s := range r.ObserverStats() {
			if s.Delivered+s.Dropped < calls {
				done = false
			}
		}
		if done {
			return
		}
	}
	b.Fatal("the observers did not catch up within a minute")
}

// BenchmarkObserverCPU measures what observing costs in CPU rather than in
// time: the process's CPU time per no-op call with the ledger, the store
// and the metrics on (their goroutines, and the garbage collection of what
// they allocate, included) against the same call with them off, in
// alternating blocks of 1,000 calls. Unlike a ratio of times it hardly
// depends on how loaded the machine is, so a change in the observers can
// be measured while others work. cpu_us_observing is the difference per
// call; on two cores it is roughly what a no-op call slows by once the
// observers compete with it. The "nostore" runs leave the store out, to
// show the rest (the ledger, the metrics, the hand-off) apart from it.
func BenchmarkObserverCPU(b *testing.B) {
	for _, way := range mcptest.NoopWays {
		for _, withStore := range []bool{true, false} {
			name := way
			if !withStore {
				name += "-nostore"
			}
			b.Run(name, func(b *testing.B) { observerCPU(b, way, withStore) })
		}
	}
}

func observerCPU(b *testing.B, way string, withStore bool) {
	offR, onR := mcptest.NoopRouter(b, nil), observedBy(b, withStore)
	off, on := mcptest.NoopCaller(b, way, offR), mcptest.NoopCaller(b, way, onR)
	const block = 1000
	var cpuOff, cpuOn time.Duration
	var made uint64
	run := func(f func(), r *calls.Router) time.Duration {
		runtime.GC()
		t0 := cpuTime(b)
		for range block {
			f()
		}
		if r != nil {
			made += block
			settle(b, r, made)
		}
		return cpuTime(b) - t0
	}
	b.ResetTimer()
	rounds := 0
	for done := 0; done < b.N; done += block {
		cpuOff += run(off, nil)
		cpuOn += run(on, onR)
		rounds++
	}
	b.StopTimer()
	n := float64(rounds*block) * 1000 // µs
	b.ReportMetric(float64(cpuOff.Nanoseconds())/n, "cpu_us_off")
	b.ReportMetric(float64(cpuOn.Nanoseconds())/n, "cpu_us_on")
	b.ReportMetric(float64((cpuOn-cpuOff).Nanoseconds())/n, "cpu_us_observing")
}
