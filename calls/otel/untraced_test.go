package otel_test

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/otel"
)

// TestUntracedCallSpans: a call without a traceparent, on a router that
// makes trace IDs (RouterOptions.NewTraces), is traced under the trace ID
// its event carries (the one the store and the ledger record); its span
// names the store's call ID, the client's protocol version and token name,
// and the run's limits hit. A sessionless client's span has no
// mcp.session.id (its ID would name nothing); a client with a session has
// its own (the control).
func TestUntracedCallSpans(t *testing.T) {
	c := &capture{}
	tr, err := otel.Start(t.Context(), &otel.Options{Getenv: env(nil), Client: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	var finished []calls.Event
	rec := calls.ObserverFunc(func(e calls.Event) {
		if e.Type == calls.EventCallFinished {
			finished = append(finished, e)
		}
	})
	r := calls.NewRouter(&calls.RouterOptions{NewTraces: true, Observers: []calls.Observer{
		rec, tr.Observer(&otel.ObserverOptions{CallID: func(id uint64) string { return "RUN-" + string(rune('0'+id)) }}),
	}})
	add(t, r, calls.Call{Name: "sh", Kind: calls.KindTool, Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		res := calls.Text("ok")
		res.Info = &calls.Info{Run: &calls.RunInfo{Isolation: "bwrap", Limits: []string{calls.LimitOutput, calls.LimitProcesses}}}
		return res, nil
	})})
	for _, p := range []calls.Peer{{Protocol: "2026-07-28", TokenName: "alice", Sessionless: true}, {Protocol: "2025-11-25", TokenName: "bob"}} {
		sess := r.OpenSession("", "desktop")
		sess.SetPeer(p)
		if _, err := r.Call(t.Context(), "sh", &calls.Request{Session: sess}); err != nil {
			t.Fatal(err)
		}
		sess.Close()
	}
	r.Close()
	if err := tr.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(finished) != 2 {
		t.Fatalf("%d finished events", len(finished))
	}
	spans := map[string]map[string]string{} // by trace ID
	for _, s := range c.get() {
		if s.Name != "tools/call sh" {
			continue
		}
		kv := map[string]string{}
		for k, v := range attrs(s) {
			kv[k] = v.GetStringValue()
		}
		spans[hex.EncodeToString(s.TraceId)] = kv
		if len(s.ParentSpanId) != 0 {
			t.Errorf("an untraced call's span has a parent %x", s.ParentSpanId)
		}
	}
	for i, e := range finished {
		kv, ok := spans[e.TraceID]
		if !ok || len(e.TraceID) != 32 {
			t.Fatalf("no span in the trace %q the event names (spans in %v)", e.TraceID, keys(spans))
		}
		if kv["membrane.call.id"] != "RUN-"+string(rune('0'+e.ID)) || kv["mcp.protocol.version"] != e.Protocol || kv["membrane.token.name"] != e.TokenName {
			t.Errorf("call %d: span attributes %v", i, kv)
		}
		if _, has := kv["mcp.session.id"]; has == e.Sessionless {
			t.Errorf("call %d (sessionless %v): mcp.session.id %q", i, e.Sessionless, kv["mcp.session.id"])
		}
	}
	for _, s := range c.get() {
		if s.Name == otel.SpanSandboxRun {
			if got := attrs(s)["membrane.sandbox.limits"].GetStringValue(); got != "output,processes" {
				t.Errorf("run span: membrane.sandbox.limits %q", got)
			}
		}
	}
}

func keys(m map[string]map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}
