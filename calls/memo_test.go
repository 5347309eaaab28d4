package calls_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// memoKey names the test's computation.
type memoKey struct{ name *string }

// memoUser asks each finished event for its computed form, and keeps the
// events (as an observer that works later, off its goroutine, would).
type memoUser struct {
	finishedOnly
	key      memoKey
	computed *atomic.Int64
	mu       sync.Mutex
	got      map[uint64]string
}

func (m *memoUser) Observe(e calls.Event) {
	m.finishedOnly.Observe(e)
	v := e.Memo(m.key, func() any {
		m.computed.Add(1)
		return fmt.Sprintf("%d:%s", e.ID, e.Arguments)
	}).(string)
	m.mu.Lock()
	m.got[e.ID] = v
	m.mu.Unlock()
}

// TestMemoSharedOnce: two observers of the same events compute each
// event's form once between them; a third with another key computes its
// own; every observer gets the form of its own event, also when asking
// again, long after its batch was reused; a lone observer (the control)
// computes on every call.
func TestMemoSharedOnce(t *testing.T) {
	t.Parallel()
	name, other := "shared", "other"
	var shared, own atomic.Int64
	mk := func(k *string, n *atomic.Int64) *memoUser {
		return &memoUser{key: memoKey{k}, computed: n, got: map[uint64]string{}}
	}
	a, b, c := mk(&name, &shared), mk(&name, &shared), mk(&other, &own)
	r := mcptest.NoopRouter(t, &calls.RouterOptions{Observers: []calls.Observer{a, b, c}})
	const n = 3000 // more than the bus's chunks hold, so that they are reused
	for i := 0; i < n; i++ {
		req := &calls.Request{Arguments: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
		if _, err := r.Call(context.Background(), "noop", req); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	if got := shared.Load(); got != n {
		t.Errorf("two observers with one key computed %d times for %d events, want %d", got, n, n)
	}
	if got := own.Load(); got != n {
		t.Errorf("the observer with its own key computed %d times, want %d", got, n)
	}
	for _, o := range []*memoUser{a, b, c} {
		events := o.all()
		if len(events) != n {
			t.Fatalf("observer got %d events, want %d", len(events), n)
		}
		for _, e := range events {
			want := fmt.Sprintf("%d:%s", e.ID, e.Arguments)
			if o.got[e.ID] != want {
				t.Fatalf("event %d got %q, want %q", e.ID, o.got[e.ID], want)
			}
			// Asked again later: the same, computed form, not recomputed.
			before := o.computed.Load()
			if v := e.Memo(o.key, func() any { o.computed.Add(1); return "again" }); v != want {
				t.Fatalf("event %d asked again got %q, want %q", e.ID, v, want)
			}
			if o.computed.Load() != before {
				t.Fatalf("event %d was computed again", e.ID)
			}
		}
	}

	// The control: one observer alone has no memo; it computes each time.
	var alone atomic.Int64
	d := mk(&name, &alone)
	r2 := mcptest.NoopRouter(t, &calls.RouterOptions{Observers: []calls.Observer{d}})
	if _, err := r2.Call(context.Background(), "noop", &calls.Request{Arguments: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	r2.Close()
	e := d.all()[0]
	e.Memo(d.key, func() any { alone.Add(1); return "" })
	if got := alone.Load(); got != 2 {
		t.Errorf("a lone observer computed %d times for 2 asks, want 2", got)
	}
}
