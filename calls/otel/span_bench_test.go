package otel_test

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/otel"
	"github.com/membrane-mcp/membrane/calls/otel/oteltest"
)

// selfCPU is the CPU time this process has used, to the microsecond.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func finished(i int) calls.Event {
	return calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: uint64(i), Call: "noop", Kind: calls.KindTool,
		Session: "s", Arguments: json.RawMessage(`{"x":1}`), Outcome: calls.OutcomeOK, Duration: 30 * time.Microsecond, ResultBytes: 2}
}

// BenchmarkSpan is the whole cost of one call's span, from the finished
// event to its bytes sent to a real Jaeger v1.76, over OTLP/HTTP and gRPC,
// and of a call with a traceparent and a sandbox run (two spans):
// cpu_ns/call counts every goroutine of this process (the exporter's too),
// and jaeger_cpu_ns/call the collector's, which runs on the same cores (to
// its 10 ms clock ticks: run enough calls). The
// calls are paced (a flush every 512) so that none is lost to a full
// queue; dropped says whether any was.
func BenchmarkSpan(b *testing.B) {
	bin, why := oteltest.JaegerPath()
	if bin == "" {
		b.Skip(why)
	}
	j := oteltest.StartJaeger(b, bin)
	for _, c := range []struct{ name, proto string }{{"http", "http/protobuf"}, {"grpc", "grpc"}, {"http-parent-run", "http/protobuf"}} {
		proto := c.proto
		b.Run(c.name, func(b *testing.B) {
			ep := "http://" + j.OTLPHTTP
			if proto == "grpc" {
				ep = "http://" + j.OTLPGRPC
			}
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ep)
			b.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
			// The OTLP clients read the endpoint from the process's
			// environment.
			tr, err := otel.Start(b.Context(), &otel.Options{})
			if err != nil {
				b.Fatal(err)
			}
			o := tr.Observer(nil)
			ev := make([]calls.Event, 256)
			for i := range ev {
				ev[i] = finished(i)
				if c.name == "http-parent-run" {
					// A call from a traced client that ran a process:
					// two spans, the first continuing the client's trace.
					ev[i].TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
					ev[i].Info = &calls.Info{Run: &calls.RunInfo{Isolation: "bwrap", StdoutBytes: 5, Start: time.Millisecond, Began: time.Now(), Wall: 2 * time.Millisecond}}
				}
			}
			b.ReportAllocs()
			c0, j0 := selfCPU(), oteltest.CPUTime(j.PID)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o.Observe(ev[i%len(ev)])
				if i%512 == 511 {
					// Paced, so that no span is lost to a full queue.
					if err := tr.ForceFlush(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := tr.ForceFlush(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(selfCPU()-c0)/float64(b.N), "cpu_ns/call")
			b.ReportMetric(float64(oteltest.CPUTime(j.PID)-j0)/float64(b.N), "jaeger_cpu_ns/call")
			st := tr.Stats()
			b.ReportMetric(float64(st.Dropped), "dropped")
			b.ReportMetric(float64(st.Exported), "exported")
			tr.Shutdown(b.Context())
		})
	}
}
