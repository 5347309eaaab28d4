package metrics_test

import (
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/metrics"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// BenchmarkObserve is the metrics' cost per finished call.
func BenchmarkObserve(b *testing.B) {
	m := metrics.New(mcptest.NoopRouter(b, nil), nil)
	e := calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: 1, Call: "noop", Kind: calls.KindTool,
		Session: "s", Outcome: calls.OutcomeOK, Duration: 5 * time.Microsecond}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Observe(e)
	}
}
