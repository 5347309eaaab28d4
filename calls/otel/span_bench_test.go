package otel_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/otel"
	"github.com/membrane-mcp/membrane/calls/otel/oteltest"
)

// childCPU is the CPU time of the process's one child, the Jaeger (Linux;
// zero elsewhere).
func childCPU() time.Duration {
	ts, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range ts {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			st, _ := os.ReadFile("/proc/" + f + "/stat")
			fs := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
			u, _ := strconv.Atoi(fs[11])
			s, _ := strconv.Atoi(fs[12])
			return time.Duration(u+s) * 10 * time.Millisecond
		}
	}
	return 0
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func finished(i int) calls.Event {
	return calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: uint64(i), Call: "noop", Kind: calls.KindTool,
		Session: "s", Arguments: json.RawMessage(`{"x":1}`), Outcome: calls.OutcomeOK, Duration: 30 * time.Microsecond, ResultBytes: 2}
}

// BenchmarkSpan is the whole cost of one call's span, from the finished
// event to its bytes sent to a real Jaeger v1.76, over OTLP/HTTP and gRPC:
// cpu_ns/span counts every goroutine of this process (the exporter's too),
// and jaeger_cpu_ns/span the collector's, which runs on the same cores. The
// calls are paced (a flush every 512) so that none is lost to a full
// queue; dropped says whether any was.
func BenchmarkSpan(b *testing.B) {
	bin, why := oteltest.JaegerPath()
	if bin == "" {
		b.Skip(why)
	}
	j := oteltest.StartJaeger(b, bin)
	for _, proto := range []string{"http/protobuf", "grpc"} {
		b.Run(proto, func(b *testing.B) {
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
			}
			b.ReportAllocs()
			c0, j0 := cpuNow(), childCPU()
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
			b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu_ns/span")
			b.ReportMetric(float64(childCPU()-j0)/float64(b.N), "jaeger_cpu_ns/span")
			st := tr.Stats()
			b.ReportMetric(float64(st.Dropped), "dropped")
			b.ReportMetric(float64(st.Exported), "exported")
			tr.Shutdown(b.Context())
		})
	}
}
