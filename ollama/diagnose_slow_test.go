package ollama

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/diag"
)

// A host slower to tell its models than the first tool list waits gets a
// warning that says how long it took and what a client will see; the same
// host within the wait gets none. The host is a fake behind a delay: a
// real Ollama cannot be made slow on demand.
func TestDiagnoseSlowHost(t *testing.T) {
	t.Parallel()
	f := newFake(t, chatModelFake("qwen:0.5b"))
	const delay = 30 * time.Millisecond
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		f.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)

	checks := diagnose(t.Context(), []string{slow.URL}, delay/2)
	if len(checks) != 2 || checks[0].Status != diag.StatusOK || !strings.Contains(checks[0].Detail, "answered in") {
		t.Fatalf("checks = %+v, want the host's finding and a slow one", checks)
	}
	c := checks[1]
	if c.Status != diag.StatusWarn || !strings.Contains(c.Detail, "slow to answer") || !strings.Contains(c.Detail, "15ms the first tools/list waits") ||
		!strings.Contains(c.Fix, "list_changed") || c.Name != checks[0].Name {
		t.Errorf("slow finding = %+v", c)
	}
	took, err := time.ParseDuration(strings.TrimSuffix(strings.Fields(strings.TrimPrefix(c.Detail, "slow to answer: listing its models took "))[0], ","))
	if err != nil || took < delay {
		t.Errorf("the finding says it took %v (%v), want at least %v: %q", took, err, delay, c.Detail)
	}

	// Control: within the wait, the host is only ok.
	if checks := diagnose(t.Context(), []string{slow.URL}, time.Hour); len(checks) != 1 || checks[0].Status != diag.StatusOK {
		t.Errorf("within the wait: %+v", checks)
	}
}

// WaitDiscovered returns true once the first refresh ended, false at its
// bound or when ctx ends first.
func TestWaitDiscovered(t *testing.T) {
	t.Parallel()
	m := &Models{first: make(chan struct{})}
	if m.WaitDiscovered(t.Context(), time.Millisecond) {
		t.Error("WaitDiscovered reported a refresh that did not happen")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if m.WaitDiscovered(ctx, time.Hour) {
		t.Error("WaitDiscovered with a done context reported a refresh")
	}
	close(m.first)
	if !m.WaitDiscovered(t.Context(), time.Hour) {
		t.Error("WaitDiscovered missed the first refresh")
	}
}
