package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// TestChildrenCacheBounded: the series cache stops at maxChildren, and the
// calls past it are counted all the same (uncached), as are the cached
// ones when they come again; a busy call also counts as a busy rejection.
func TestChildrenCacheBounded(t *testing.T) {
	m := New(calls.NewRouter(nil), nil)
	finished := func(call string, o calls.Outcome) calls.Event {
		return calls.Event{Type: calls.EventCallFinished, Call: call, Kind: calls.KindTool, Outcome: o, Duration: time.Millisecond}
	}
	m.Observe(finished("c1", calls.OutcomeBusy))
	for i := 0; i < maxChildren+10; i++ {
		m.Observe(finished(fmt.Sprintf("c%d", i), calls.OutcomeOK))
	}
	if n := len(m.children); n != maxChildren {
		t.Errorf("cache holds %d series sets, want the bound %d", n, maxChildren)
	}
	past := fmt.Sprintf("c%d", maxChildren+5)
	m.Observe(finished("c0", calls.OutcomeOK)) // cached
	m.Observe(finished(past, calls.OutcomeOK)) // past the bound
	m.Observe(finished("c1", calls.OutcomeBusy))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	out := string(b)
	for _, want := range []string{
		`membrane_calls_total{call="c0",kind="tool",outcome="ok"} 2`,
		`membrane_calls_total{call="` + past + `",kind="tool",outcome="ok"} 2`,
		`membrane_calls_total{call="c2",kind="tool",outcome="ok"} 1`,
		`membrane_calls_total{call="c1",kind="tool",outcome="busy"} 2`,
		`membrane_busy_rejections_total{call="c1"} 2`,
		`membrane_call_duration_seconds_count{call="c1",kind="tool"} 3`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(out, `membrane_busy_rejections_total{call="c0"}`) {
		t.Errorf("c0 was never busy, but has a busy series")
	}
}
