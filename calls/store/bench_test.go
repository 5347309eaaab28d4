package store

import (
	"encoding/json"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// cpuTime is the CPU time this process has used so far (user and system,
// every thread: the store's own goroutine, the driver, the GC).
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStoreObserve measures what recording one finished call costs the
// store: ns/op is one row, cpu_us/row the CPU the process spent on it
// (the number that competes with the calls on a small machine, and that a
// loaded machine distorts least), allocs/op the Go allocations behind it
// (the GC's share). "noop" is the call BenchmarkObservedCall makes; "sh"
// one with a sandbox record and a longer command.
func BenchmarkStoreObserve(b *testing.B) {
	now := time.Now()
	for _, tc := range []struct {
		name  string
		event calls.Event
	}{
		{"noop", calls.Event{Type: calls.EventCallFinished, Call: "noop", Kind: calls.KindTool, Session: "s", Arguments: json.RawMessage(`{"x":1}`),
			Outcome: calls.OutcomeOK, Duration: 20 * time.Microsecond}},
		{"sh", calls.Event{Type: calls.EventCallFinished, Call: "sh", Kind: calls.KindTool, Group: "sandbox", Session: "mcp-session-4f1c2a", Client: "claude-code",
			Arguments: json.RawMessage(`{"cmd":"ls -la /workspace && go test ./... 2>&1 | tail -20","timeout_s":60}`),
			Outcome:   calls.OutcomeToolError, Reason: "exit code 1", Duration: 1500 * time.Millisecond, ResultBytes: 4096,
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			Info:        &calls.Info{Run: &calls.RunInfo{ExitCode: 1, Isolation: "bwrap", StdoutBytes: 3900, StderrBytes: 196, Start: 4 * time.Millisecond, Wall: 1490 * time.Millisecond}}}},
	} {
		{
			b.Run(tc.name, func(b *testing.B) {
				s, err := Open(filepath.Join(b.TempDir(), "membrane.db"), &Options{MaxBytes: -1, MaxAge: -1})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				s.Observe(calls.Event{Type: calls.EventSessionOpened, Session: tc.event.Session, Time: now})
				e := tc.event
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime(b)
				for i := range b.N {
					e.ID = uint64(i + 1)
					e.Time = now.Add(time.Duration(i) * time.Microsecond)
					s.Observe(e)
				}
				s.Flush()
				b.StopTimer()
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu_us/row")
				if n, err := s.Count(b.Context(), Filter{}); err != nil || n != b.N {
					b.Fatalf("%d rows stored of %d (%v)", n, b.N, err)
				}
			})
		}
	}
}
