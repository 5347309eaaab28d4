package metrics_test

import (
	"path/filepath"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/calls/metrics"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// observedRouter is a router with one no-op call; with on, the audit ledger
// (to a file), the trace store and the metrics observe it.
func observedRouter(b testing.TB, on bool) *calls.Router {
	if !on {
		return mcptest.NoopRouter(b, nil)
	}
	return observedBy(b, true)
}

// observedBy is a router with one no-op call that the audit ledger (to a
// file) and the metrics observe, and the trace store too with withStore.
func observedBy(b testing.TB, withStore bool) *calls.Router {
	r := mcptest.NoopRouter(b, nil)
	l, err := ledger.Open(filepath.Join(b.TempDir(), "audit.jsonl"), nil)
	if err != nil {
		b.Fatal(err)
	}
	r.Observe(l)
	var st *store.Store
	if withStore {
		if st, err = store.Open(filepath.Join(b.TempDir(), "membrane.db"), nil); err != nil {
			b.Fatal(err)
		}
		r.Observe(st)
	}
	r.Observe(metrics.New(r, nil))
	b.Cleanup(func() {
		r.Close()
		l.Close()
		if st != nil {
			st.Close()
		}
	})
	return r
}

// BenchmarkObservedCall measures a no-op call with the audit ledger, the
// trace store and the metrics on against the same call with them off, in
// the same run, alternating in rounds of 50 calls so that both see the
// same machine. x_off is the median over the rounds of the ratio (1.0:
// observing costs nothing), x_off_total the ratio of the whole times,
// where every pause of a loaded machine counts in whichever round it fell;
// dropped counts the events the observers lost (none, while the store
// keeps up: a burst of up to calls.DefaultObserverBuffer events is
// absorbed).
func BenchmarkObservedCall(b *testing.B) {
	for _, way := range mcptest.NoopWays {
		b.Run(way, func(b *testing.B) {
			offR, onR := observedRouter(b, false), observedRouter(b, true)
			off, on := mcptest.NoopCaller(b, way, offR), mcptest.NoopCaller(b, way, onR)
			x := mcptest.AlternateRatios(b, 50, off, on)
			b.ReportMetric(x.Median, "x_off")
			b.ReportMetric(x.Total, "x_off_total")
			b.ReportMetric(float64(mcptest.Dropped(onR)), "dropped")
		})
	}
}
