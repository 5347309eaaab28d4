package observers_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/observers"
	"github.com/membrane-mcp/membrane/calls/otel/oteltest"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// BenchmarkTracedCall measures a no-op call with every observer on (the
// ledger, the store, the metrics, and tracing exporting OTLP over HTTP to
// a real Jaeger v1.76) against the same call with all of them off, in the
// same run, alternating in rounds (x_off: the median ratio; x_off_total:
// the ratio of the whole times). At the end it asks Jaeger whether the
// spans arrived, and reports how many were sent and how many the tracer's
// queue lost.
func BenchmarkTracedCall(b *testing.B) {
	bin, why := oteltest.JaegerPath()
	if bin == "" {
		b.Skip(why)
	}
	j := oteltest.StartJaeger(b, bin)
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+j.OTLPHTTP)
	b.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	// The router alone makes calls faster than an export of 512 spans
	// comes back from Jaeger; with the default queue (2,048) a burst
	// loses spans, which then cost nothing. A queue that holds the
	// whole run makes every call's span paid for.
	b.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "65536")
	for _, way := range mcptest.NoopWays {
		b.Run(way, func(b *testing.B) {
			dir := b.TempDir()
			set, err := observers.Open(&observers.Options{
				ServiceName: "membrane-bench-" + way,
				AuditLog:    filepath.Join(dir, "audit.jsonl"),
				Store:       filepath.Join(dir, "membrane.db"),
			})
			if err != nil {
				b.Fatal(err)
			}
			if set.Tracer == nil {
				b.Fatal("tracing is off though OTEL_EXPORTER_OTLP_ENDPOINT is set")
			}
			offR := mcptest.NoopRouter(b, nil)
			onR := mcptest.NoopRouter(b, &calls.RouterOptions{Observers: set.RouterObservers(), Redact: set.Scrub.String})
			set.AttachMetrics(onR, nil)
			off, on := mcptest.NoopCaller(b, way, offR), mcptest.NoopCaller(b, way, onR)
			x := mcptest.AlternateRatios(b, 50, off, on)
			b.ReportMetric(x.Median, "x_off")
			b.ReportMetric(x.Total, "x_off_total")
			b.ReportMetric(float64(mcptest.Dropped(onR)), "dropped")
			set.Close(onR, nil) // exports the last spans
			// Spans the tracer's queue lost would cost less than spans
			// sent: say how many (none is expected).
			st := set.Tracing.Stats()
			b.ReportMetric(float64(st.Dropped), "spans_dropped")
			b.ReportMetric(float64(st.Exported), "spans_exported")
			// Jaeger batches what it receives for 100 ms before it
			// lists it; this waits for that, it asserts no time.
			for i := 0; !jaegerHas(b, j, "membrane-bench-"+way); i++ {
				if i == 300 {
					b.Fatalf("Jaeger at %s holds no spans of membrane-bench-%s", j.Query, way)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// jaegerHas reports whether Jaeger lists service among those it has spans
// of.
func jaegerHas(b *testing.B, j *oteltest.Jaeger, service string) bool {
	resp, err := http.Get("http://" + j.Query + "/api/services")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Data []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		b.Fatal(err)
	}
	return slices.Contains(v.Data, service)
}
