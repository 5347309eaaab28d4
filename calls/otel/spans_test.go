package otel_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/otel"
)

func echo(t *testing.T, r *calls.Router) {
	t.Helper()
	add(t, r, calls.Call{Name: "echo", Kind: calls.KindTool, Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return calls.Text("ok"), nil
	})})
}

// echoRouter returns a router holding "echo", observed by tracing that
// sends to client, and the tracing.
func echoRouter(t *testing.T, client otlptrace.Client, vars map[string]string) (*calls.Router, *otel.Tracing) {
	t.Helper()
	tr, err := otel.Start(t.Context(), &otel.Options{Client: client, Getenv: env(vars)})
	if err != nil {
		t.Fatal(err)
	}
	r := calls.NewRouter(&calls.RouterOptions{Observers: []calls.Observer{tr.Observer(nil)}})
	echo(t, r)
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return r, tr
}

// callEcho calls "echo" n times.
func callEcho(t *testing.T, r *calls.Router, n int) {
	t.Helper()
	for range n {
		if _, err := r.Call(t.Context(), "echo", &calls.Request{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBatchFrom(t *testing.T) {
	def := otel.BatchFrom(env(nil))
	if def != (otel.Batch{MaxQueue: 2048, MaxExport: 512, Delay: 5 * time.Second, Timeout: 30 * time.Second}) {
		t.Errorf("defaults %+v", def)
	}
	got := otel.BatchFrom(env(map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1000",
		"OTEL_BSP_SCHEDULE_DELAY": "250", "OTEL_BSP_EXPORT_TIMEOUT": "-3"}))
	// The batch is cut to the queue, and a bad timeout keeps the default.
	if got != (otel.Batch{MaxQueue: 100, MaxExport: 100, Delay: 250 * time.Millisecond, Timeout: 30 * time.Second}) {
		t.Errorf("from the variables %+v", got)
	}
	if bad := otel.BatchFrom(env(map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "lots"})); bad != def {
		t.Errorf("a value that is not a number: %+v", bad)
	}
}

// TestExportAtBatchSize: with a delay far off, a full batch is exported
// at once, and fewer wait for the delay (or a flush).
func TestExportAtBatchSize(t *testing.T) {
	c := &capture{}
	tr, err := otel.Start(t.Context(), &otel.Options{Client: c, Getenv: env(map[string]string{
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4", "OTEL_BSP_SCHEDULE_DELAY": "600000"})})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	o := tr.Observer(nil)
	for i := range 3 {
		o.Observe(finished(i))
	}
	// The exporter is woken only by a full batch: none yet.
	time.Sleep(20 * time.Millisecond)
	if n := len(c.get()); n != 0 {
		t.Fatalf("%d spans of a batch of 4 were exported before the delay", n)
	}
	o.Observe(finished(3))
	for i := 0; len(c.get()) < 4; i++ {
		if i == 1000 {
			t.Fatalf("a full batch was not exported: %d spans", len(c.get()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := tr.Stats(); st.Exported != 4 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// blocking is a client whose exports wait until it is let go.
type blocking struct {
	capture
	release chan struct{}
}

func (b *blocking) UploadTraces(ctx context.Context, rs []*tracepb.ResourceSpans) error {
	<-b.release
	return b.capture.UploadTraces(ctx, rs)
}

// TestQueueBound: a collector that does not answer never holds a call up;
// past the queue's bound spans are lost and counted, and the ones queued
// are sent once it answers.
func TestQueueBound(t *testing.T) {
	c := &blocking{release: make(chan struct{})}
	r, tr := echoRouter(t, c, map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "4", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2"})
	callEcho(t, r, 20)
	r.Close()
	st := tr.Stats()
	// The exporter holds at most a full queue (4) taken before its stuck
	// request, and the queue 4 more.
	if st.Dropped < 20-8 || st.Exported != 0 {
		t.Errorf("stats %+v with a stuck collector, want at least 12 dropped, none exported", st)
	}
	close(c.release)
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(c.get()); got != int(20-tr.Stats().Dropped) || got == 0 {
		t.Errorf("%d spans sent, want the %d not dropped", got, 20-tr.Stats().Dropped)
	}
}

// TestExportFailure: a collector that refuses the spans makes them
// counted as failed; the calls are not affected.
func TestExportFailure(t *testing.T) {
	c := &capture{fail: errors.New("refused")}
	r, tr := echoRouter(t, c, nil)
	callEcho(t, r, 3)
	r.Close()
	if err := tr.ForceFlush(t.Context()); err == nil {
		t.Error("ForceFlush says nothing of the refused export")
	}
	if st := tr.Stats(); st.Failed != 3 || st.Exported != 0 {
		t.Errorf("stats %+v, want 3 failed", st)
	}
	tr.Shutdown(t.Context())
}

// TestShutdownExports: what is queued at shutdown is sent, without a
// flush.
func TestShutdownExports(t *testing.T) {
	c := &capture{}
	r, tr := echoRouter(t, c, nil)
	callEcho(t, r, 1)
	r.Close()
	if n := len(c.get()); n != 0 {
		t.Fatalf("%d spans before the delay", n)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(c.get()); n != 1 {
		t.Errorf("%d spans after shutdown, want 1", n)
	}
}

// TestSamplerFromEnv: OTEL_TRACES_SAMPLER is honoured as the SDK honours
// it; the default follows the parent.
func TestSamplerFromEnv(t *testing.T) {
	unsampled := parent[:53] + "00"
	cases := []struct {
		sampler, arg string
		tp           string
		want         int
	}{
		{"", "", unsampled, 0},
		{"", "", parent, 1},
		{"always_on", "", unsampled, 1},
		{"always_off", "", parent, 0},
		{"traceidratio", "0", "", 0},
		{"traceidratio", "1", "", 1},
		{"parentbased_traceidratio", "0", parent, 1},
		{"parentbased_traceidratio", "0", "", 0},
		{"parentbased_always_off", "", "", 0},
		{"no_such_sampler", "", "", 1},
	}
	for _, k := range cases {
		r, flush, c := router(t, map[string]string{"OTEL_TRACES_SAMPLER": k.sampler, "OTEL_TRACES_SAMPLER_ARG": k.arg})
		echo(t, r)
		r.Call(t.Context(), "echo", &calls.Request{TraceParent: k.tp})
		flush()
		if n := len(c.get()); n != k.want {
			t.Errorf("sampler %q arg %q traceparent %q: %d spans, want %d", k.sampler, k.arg, k.tp, n, k.want)
		}
	}
}

// TestAttributeLimits: the SDK's attribute count and value length limits
// apply to the call spans.
func TestAttributeLimits(t *testing.T) {
	r, flush, c := router(t, map[string]string{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "3", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4"})
	echo(t, r)
	r.Call(t.Context(), "echo", &calls.Request{Session: calls.NewSession("sess-1")})
	flush()
	spans := c.get()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if len(s.Attributes) != 3 || s.DroppedAttributesCount == 0 {
		t.Errorf("%d attributes, %d dropped; want 3 and some dropped", len(s.Attributes), s.DroppedAttributesCount)
	}
	for _, kv := range s.Attributes {
		if v := kv.Value.GetStringValue(); len(v) > 4 {
			t.Errorf("%s = %q, longer than the limit", kv.Key, v)
		}
	}
	// The control: without limits, the same call has every attribute whole.
	r2, flush2, c2 := router(t, nil)
	echo(t, r2)
	r2.Call(t.Context(), "echo", &calls.Request{Session: calls.NewSession("sess-1")})
	flush2()
	if a := attrs(c2.get()[0]); a["mcp.session.id"].GetStringValue() != "sess-1" || c2.get()[0].DroppedAttributesCount != 0 {
		t.Errorf("without limits: %v", a)
	}
}

// FuzzWireRoundTrip: whatever strings and numbers a call carries (the
// client's name, the reason, a tracestate: some of it from the client), its
// spans decode with OTLP's generated types as what the call said: the
// strings made valid UTF-8, nothing else changed, and no field OTLP does
// not define (the capture client checks that).
func FuzzWireRoundTrip(f *testing.F) {
	f.Add("noop", "sess-1", "client", "reason", "k=v", int64(3), 16, 200, true)
	f.Add("x", "", "", "", "", int64(-1), 0, 0, false)
	f.Add(strings.Repeat("é", 200), "s\xff\xfe", "\x00", strings.Repeat("r", 20000), "a=b,c=d", int64(1<<40), 1<<20, 1, true)
	c := &capture{}
	tr, err := otel.Start(f.Context(), &otel.Options{Client: c, Getenv: env(nil)})
	if err != nil {
		f.Fatal(err)
	}
	o := tr.Observer(&otel.ObserverOptions{Transport: "pipe"})
	f.Fuzz(func(t *testing.T, call, session, client, reason, state string, exit int64, args, result int, model bool) {
		c.mu.Lock()
		c.spans, c.res = nil, nil
		c.mu.Unlock()
		if args < 0 {
			args = -args
		}
		e := calls.Event{
			Type: calls.EventCallFinished, Time: time.Unix(1700000000, 5), Call: call, Kind: calls.KindTool, Session: session, Client: client,
			Arguments: make([]byte, args%4096), Outcome: calls.OutcomeToolError, Reason: reason, Duration: time.Millisecond,
			ResultBytes: result, TraceParent: parent, TraceState: state,
			Info: &calls.Info{Run: &calls.RunInfo{ExitCode: int(exit), Isolation: client, Signal: reason, Start: time.Duration(exit)}},
		}
		if model {
			e.Info.Model = &calls.ModelInfo{Model: call, Host: session, TokensIn: result, TokensOut: int(exit), FirstToken: time.Duration(exit)}
		}
		o.Observe(e)
		if err := tr.ForceFlush(t.Context()); err != nil {
			t.Fatal(err)
		}
		spans := byName(c.get())
		want := map[string]bool{"tools/call " + valid(call): true, otel.SpanSandboxRun: true}
		if model {
			want["chat "+valid(call)] = true
		}
		if len(spans) != len(want) {
			t.Fatalf("%d spans %v, want %v", len(spans), spans, want)
		}
		s := spans["tools/call "+valid(call)]
		if s == nil {
			t.Fatalf("no call span in %v", spans)
		}
		a := attrs(s)
		for k, v := range map[string]string{"gen_ai.tool.name": valid(call), "mcp.session.id": valid(session), "membrane.client.name": valid(client), "network.transport": "pipe"} {
			if v == "" {
				continue
			}
			if got := a[k].GetStringValue(); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if a["membrane.args.bytes"].GetIntValue() != int64(args%4096) || a["membrane.result.bytes"].GetIntValue() != int64(result) {
			t.Errorf("sizes %v %v", a["membrane.args.bytes"], a["membrane.result.bytes"])
		}
		if s.Status.GetMessage() != valid(reason) || s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("status %v, want %q", s.Status, valid(reason))
		}
		if s.StartTimeUnixNano != uint64(time.Unix(1700000000, 5).Add(-time.Millisecond).UnixNano()) || s.EndTimeUnixNano != uint64(time.Unix(1700000000, 5).UnixNano()) {
			t.Errorf("times %d..%d", s.StartTimeUnixNano, s.EndTimeUnixNano)
		}
		r := spans[otel.SpanSandboxRun]
		if ra := attrs(r); ra["process.exit.code"].GetIntValue() != exit || !bytes.Equal(r.ParentSpanId, s.SpanId) {
			t.Errorf("run span %v, parent %x want %x", ra, r.ParentSpanId, s.SpanId)
		}
		if model {
			m := spans["chat "+valid(call)]
			if ma := attrs(m); ma["gen_ai.usage.input_tokens"].GetIntValue() != int64(result) || ma["gen_ai.request.model"].GetStringValue() != valid(call) {
				t.Errorf("model span %v", ma)
			}
		}
	})
}

func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
