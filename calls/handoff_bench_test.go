package calls

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// nopBatch is an observer of finished calls that does nothing, so that a
// benchmark sees the hand-off alone.
type nopBatch struct{}

func (nopBatch) Observe(Event)          {}
func (nopBatch) EndBatch()              {}
func (nopBatch) Wants(t EventType) bool { return t == EventCallFinished }
func (nopBatch) ObserverName() string   { return "nop" }

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandOffPaced measures the CPU the hand-off to three observers
// (as many as the ledger, the store and the metrics) costs per call when
// calls come one every 250 µs, as a no-op MCP call does: each window is
// how long the dispatcher lets events gather after the first (0: a
// wake-up of the dispatcher and of each observer per call). cpu_us is the
// process's CPU time per call beyond the same paced calls unobserved.
func BenchmarkHandOffPaced(b *testing.B) {
	for _, w := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond} {
		b.Run(fmt.Sprint("window=", w), func(b *testing.B) {
			old := busWindow
			busWindow = w
			defer func() { busWindow = old }()
			mk := func(obs ...Observer) *Router {
				r := NewRouter(&RouterOptions{Observers: obs})
				if err := r.Add(Call{Name: "noop", Description: "noop", Kind: KindTool, InputSchema: json.RawMessage(`{"type":"object"}`),
					Handler: HandlerFunc(func(context.Context, *Request) (*Result, error) { return Text("ok"), nil })}); err != nil {
					b.Fatal(err)
				}
				return r
			}
			off, on := mk(), mk(nopBatch{}, nopBatch{}, nopBatch{})
			defer on.Close()
			req := &Request{Arguments: json.RawMessage(`{"x":1}`), Session: NewSession("s")}
			const block = 200
			var cpuOff, cpuOn time.Duration
			run := func(r *Router) time.Duration {
				t0 := processCPU(b)
				for range block {
					if _, err := r.Call(context.Background(), "noop", req); err != nil {
						b.Fatal(err)
					}
					time.Sleep(250 * time.Microsecond)
				}
				time.Sleep(2 * w) // the last batch's hand-off counts here
				return processCPU(b) - t0
			}
			b.ResetTimer()
			rounds := 0
			for done := 0; done < b.N; done += block {
				cpuOff += run(off)
				cpuOn += run(on)
				rounds++
			}
			b.StopTimer()
			n := float64(rounds*block) * 1000
			b.ReportMetric(float64((cpuOn-cpuOff).Nanoseconds())/n, "cpu_us")
		})
	}
}
