package otel_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/otel"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFrom(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		enabled bool
		proto   string
		bad     bool
	}{
		{"nothing set: off", nil, false, otel.ProtocolHTTP, false},
		{"endpoint: on, over HTTP", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, otel.ProtocolHTTP, false},
		{"traces endpoint, grpc", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, otel.ProtocolGRPC, false},
		{"the traces protocol wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, otel.ProtocolHTTP, false},
		{"otlp named without endpoint: on, default endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, otel.ProtocolHTTP, false},
		{"exporter none: off", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}, false, "", false},
		{"SDK disabled: off", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}, false, "", false},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "", true},
		{"http/json refused", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := otel.ConfigFrom(env(c.env))
			if c.bad {
				if !errors.Is(err, otel.ErrConfig) {
					t.Fatalf("err %v, want ErrConfig", err)
				}
				return
			}
			if err != nil || got.Enabled != c.enabled || (c.proto != "" && got.Protocol != c.proto) {
				t.Errorf("ConfigFrom = %+v, %v; want enabled %v protocol %q", got, err, c.enabled, c.proto)
			}
		})
	}
}

// TestOffByDefault: with nothing set, Start gives a provider that records
// nothing and no observer, and a Transport that is the one given.
func TestOffByDefault(t *testing.T) {
	tr, err := otel.Start(t.Context(), &otel.Options{Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled() || tr.Observer(nil) != nil {
		t.Errorf("tracing on with nothing set")
	}
	_, s := tr.TracerProvider().Tracer("x").Start(t.Context(), "s")
	if s.IsRecording() || s.SpanContext().IsValid() {
		t.Errorf("the off provider records")
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}
	// The control: an exporter given turns it on.
	on, err := otel.Start(t.Context(), &otel.Options{Getenv: env(nil), Exporter: tracetest.NewInMemoryExporter()})
	if err != nil || !on.Enabled() || on.Observer(nil) == nil {
		t.Errorf("tracing with an exporter: %v %v", on.Enabled(), err)
	}
}

// router returns a router observed by a tracing observer that exports to
// the returned in-memory exporter.
func router(t *testing.T) (*calls.Router, *otel.Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := otel.Start(t.Context(), &otel.Options{Getenv: env(nil), Exporter: exp, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	r := calls.NewRouter(&calls.RouterOptions{Observers: []calls.Observer{tr.Observer(&otel.ObserverOptions{Transport: "tcp"})}})
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return r, tr, exp
}

func add(t *testing.T, r *calls.Router, c calls.Call) {
	t.Helper()
	if c.InputSchema == nil {
		c.InputSchema = json.RawMessage(`{"type":"object"}`)
	}
	c.Description = c.Name
	if err := r.Add(c); err != nil {
		t.Fatal(err)
	}
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func byName(spans tracetest.SpanStubs) map[string]tracetest.SpanStub {
	m := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestSpans: a sandbox-like call continues the client's trace with a
// server span and a run span beneath it; a model call has a chat span with
// its tokens; a call without a traceparent starts a trace of its own.
func TestSpans(t *testing.T) {
	r, _, exp := router(t)
	began := time.Now()
	add(t, r, calls.Call{Name: "sh", Kind: calls.KindTool, Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		res := calls.Errorf("exit code 3")
		res.Info = &calls.Info{Run: &calls.RunInfo{ExitCode: 3, Isolation: "bwrap", StdoutBytes: 5, Start: 2 * time.Millisecond, Began: began, Wall: 7 * time.Millisecond}}
		return res, nil
	})})
	add(t, r, calls.Call{Name: "ollama_qwen", Kind: calls.KindModel, Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return &calls.Result{Content: []calls.Content{{Type: "text", Text: "hi"}}, Info: &calls.Info{Model: &calls.ModelInfo{
			Model: "qwen", Host: "http://127.0.0.1:11434", TokensIn: 11, TokensOut: 4, FirstToken: time.Millisecond, Began: began, Took: 3 * time.Millisecond}}}, nil
	})})
	sess := calls.NewSession("sess-1")
	if _, err := r.Call(t.Context(), "sh", &calls.Request{Session: sess, Arguments: json.RawMessage(`{"cmd":"exit 3"}`), TraceParent: parent, TraceState: "k=v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Call(t.Context(), "ollama_qwen", &calls.Request{Session: sess}); err != nil {
		t.Fatal(err)
	}
	r.Close() // delivers what is queued: the spans are exported (Sync)

	spans := byName(exp.GetSpans())
	sh, ok := spans["tools/call sh"]
	if !ok {
		t.Fatalf("no tools/call sh span in %v", spans)
	}
	if sh.SpanKind != trace.SpanKindServer || sh.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		sh.Parent.SpanID().String() != "00f067aa0ba902b7" || !sh.Parent.IsRemote() || sh.SpanContext.TraceState().Get("k") != "v" {
		t.Errorf("sh span does not continue the client's trace: kind %v trace %s parent %s", sh.SpanKind, sh.SpanContext.TraceID(), sh.Parent.SpanID())
	}
	a := attrs(sh)
	for k, want := range map[attribute.Key]string{"mcp.method.name": "tools/call", "gen_ai.tool.name": "sh", "gen_ai.operation.name": "execute_tool",
		"mcp.session.id": "sess-1", "error.type": "tool_error", "network.transport": "tcp", "membrane.outcome": "tool_error"} {
		if a[k].AsString() != want {
			t.Errorf("sh span %s = %q, want %q", k, a[k].AsString(), want)
		}
	}
	if sh.Status.Code != codes.Error || sh.Status.Description != "exit code 3" {
		t.Errorf("sh span status %+v", sh.Status)
	}
	run, ok := spans[otel.SpanSandboxRun]
	if !ok {
		t.Fatal("no sandbox run span")
	}
	if run.Parent.SpanID() != sh.SpanContext.SpanID() || !run.StartTime.Equal(began) || run.EndTime.Sub(run.StartTime) != 7*time.Millisecond {
		t.Errorf("run span: parent %s (want %s), %v..%v", run.Parent.SpanID(), sh.SpanContext.SpanID(), run.StartTime, run.EndTime)
	}
	if ra := attrs(run); ra["process.exit.code"].AsInt64() != 3 || ra["membrane.sandbox.isolation"].AsString() != "bwrap" {
		t.Errorf("run span attributes %v", ra)
	}

	model, ok := spans["tools/call ollama_qwen"]
	if !ok {
		t.Fatal("no tools/call ollama_qwen span")
	}
	if model.Parent.IsValid() || model.SpanContext.TraceID() == sh.SpanContext.TraceID() {
		t.Errorf("a call without traceparent should start its own trace: parent %v", model.Parent)
	}
	if model.Status.Code == codes.Error {
		t.Errorf("ok call has error status")
	}
	chat, ok := spans["chat qwen"]
	if !ok {
		t.Fatal("no chat span")
	}
	ca := attrs(chat)
	if chat.Parent.SpanID() != model.SpanContext.SpanID() || chat.SpanKind != trace.SpanKindClient ||
		ca["gen_ai.request.model"].AsString() != "qwen" || ca["gen_ai.usage.input_tokens"].AsInt64() != 11 ||
		ca["gen_ai.usage.output_tokens"].AsInt64() != 4 || ca["gen_ai.provider.name"].AsString() != "ollama" ||
		ca["server.address"].AsString() != "127.0.0.1" || ca["server.port"].AsInt64() != 11434 {
		t.Errorf("chat span %v parent %s", ca, chat.Parent.SpanID())
	}
	if len(exp.GetSpans()) != 4 {
		t.Errorf("%d spans, want 4", len(exp.GetSpans()))
	}
}

// TestBadTraceParent: a traceparent that is not W3C starts a new trace
// (never a panic, never a malformed span); the valid control continues.
func TestBadTraceParent(t *testing.T) {
	r, _, exp := router(t)
	add(t, r, calls.Call{Name: "echo", Kind: calls.KindTool, Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return calls.Text("ok"), nil
	})})
	for _, tp := range []string{"garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", parent} {
		if _, err := r.Call(t.Context(), "echo", &calls.Request{TraceParent: tp}); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, s := range spans[:2] {
		if s.Parent.IsValid() {
			t.Errorf("span %d has a parent from a bad traceparent", i)
		}
	}
	if spans[2].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("the valid control did not continue")
	}
}

// TestUnsampledParent: a client that did not sample its trace gets no
// spans from membrane either (the parent-based sampler).
func TestUnsampledParent(t *testing.T) {
	r, _, exp := router(t)
	add(t, r, calls.Call{Name: "echo", Kind: calls.KindTool, Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return calls.Text("ok"), nil
	})})
	r.Call(t.Context(), "echo", &calls.Request{TraceParent: parent[:53] + "00"})
	r.Call(t.Context(), "echo", &calls.Request{TraceParent: parent})
	r.Close()
	if n := len(exp.GetSpans()); n != 1 {
		t.Errorf("%d spans, want 1 (the sampled control)", n)
	}
}

var _ sdktrace.SpanExporter = (*tracetest.InMemoryExporter)(nil)
