package calls_test

import (
	"context"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
)

// TestNewTraces: with RouterOptions.NewTraces, a call that came without a
// traceparent gets a trace ID of its own, the same in its started,
// progress and finished events and different from the next call's; a call
// with a traceparent keeps the client's trace; without NewTraces (the
// control) an untraced call has none. The events carry what the transport
// recorded of the client (Session.Peer).
func TestNewTraces(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	run := func(newTraces bool, parents ...string) []calls.Event {
		rec := &recorder{}
		r := calls.NewRouter(&calls.RouterOptions{Observers: []calls.Observer{rec}, NewTraces: newTraces})
		if err := r.Add(newCall("fine", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			req.Progress.Report(ctx, 1, 2, "half")
			return calls.Text("ok"), nil
		})); err != nil {
			t.Fatal(err)
		}
		sess := r.OpenSession("s-1", "desktop")
		sess.SetPeer(calls.Peer{Protocol: "2025-11-25", TokenName: "alice"})
		for _, p := range parents {
			if _, err := r.Call(t.Context(), "fine", &calls.Request{Session: sess, TraceParent: p}); err != nil {
				t.Fatal(err)
			}
		}
		sess.Close()
		r.Close()
		return rec.all()
	}
	byCall := func(evs []calls.Event) map[uint64][]calls.Event {
		m := map[uint64][]calls.Event{}
		for _, e := range evs {
			if e.ID != 0 {
				m[e.ID] = append(m[e.ID], e)
			}
		}
		return m
	}
	got := byCall(run(true, "", "", tp))
	if len(got) != 3 {
		t.Fatalf("%d calls observed, want 3", len(got))
	}
	seen := map[string]bool{}
	for id, evs := range got {
		if len(evs) != 3 {
			t.Fatalf("call %d: %d events, want started, progress, finished", id, len(evs))
		}
		tid := evs[0].TraceID
		for _, e := range evs {
			if e.TraceID != tid || len(tid) != 32 {
				t.Fatalf("call %d: %s has trace ID %q, its first event %q", id, e.Type, e.TraceID, tid)
			}
			if e.Protocol != "2025-11-25" || e.TokenName != "alice" || e.Sessionless {
				t.Fatalf("call %d: %s: protocol %q, token %q, sessionless %v", id, e.Type, e.Protocol, e.TokenName, e.Sessionless)
			}
		}
		if evs[0].TraceParent == tp && tid != calls.TraceID(tp) {
			t.Errorf("a traced call's trace ID %q, want the client's %q", tid, calls.TraceID(tp))
		}
		if seen[tid] {
			t.Errorf("two calls share trace ID %s", tid)
		}
		seen[tid] = true
	}
	for _, e := range run(false, "") {
		if e.ID != 0 && e.TraceID != "" {
			t.Errorf("without NewTraces an untraced call has trace ID %q", e.TraceID)
		}
	}
}
