package otel_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

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
	on, err := otel.Start(t.Context(), &otel.Options{Getenv: env(nil), Client: &capture{}})
	if err != nil || !on.Enabled() || on.Observer(nil) == nil {
		t.Errorf("tracing with a client: %v %v", on.Enabled(), err)
	}
	on.Shutdown(t.Context())
}

// capture is an OTLP client that keeps what it is sent.
type capture struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	res   []*resourcepb.Resource
	fail  error
	calls int
}

func (c *capture) Start(context.Context) error { return nil }
func (c *capture) Stop(context.Context) error  { return nil }
func (c *capture) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		return c.fail
	}
	// What a collector reads: the request's bytes, decoded with the
	// generated types, every field known to them.
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	if err != nil {
		return err
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		return err
	}
	for _, r := range req.ResourceSpans {
		c.res = append(c.res, r.Resource)
		for _, ss := range r.ScopeSpans {
			if len(ss.ProtoReflect().GetUnknown()) > 0 {
				return fmt.Errorf("scope spans with fields OTLP does not define: %x", ss.ProtoReflect().GetUnknown())
			}
			for _, s := range ss.Spans {
				if len(s.ProtoReflect().GetUnknown()) > 0 {
					return fmt.Errorf("span %q with fields OTLP does not define", s.Name)
				}
				c.spans = append(c.spans, s)
			}
		}
	}
	return nil
}

func (c *capture) get() []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans)
}

// router returns a router observed by a tracing observer that sends to
// the returned capture; flush exports what its calls made.
func router(t *testing.T, vars map[string]string) (r *calls.Router, flush func(), c *capture) {
	t.Helper()
	c = &capture{}
	tr, err := otel.Start(t.Context(), &otel.Options{Getenv: env(vars), Client: c})
	if err != nil {
		t.Fatal(err)
	}
	r = calls.NewRouter(&calls.RouterOptions{Observers: []calls.Observer{tr.Observer(&otel.ObserverOptions{Transport: "tcp"})}})
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return r, func() {
		r.Close() // delivers what is queued
		if err := tr.ForceFlush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}, c
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

func attrs(s *tracepb.Span) map[string]*commonpb.AnyValue {
	m := map[string]*commonpb.AnyValue{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func byName(spans []*tracepb.Span) map[string]*tracepb.Span {
	m := map[string]*tracepb.Span{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestSpans: a sandbox-like call continues the client's trace with a
// server span and a run span beneath it; a model call has a chat span with
// its tokens; a call without a traceparent starts a trace of its own.
func TestSpans(t *testing.T) {
	r, flush, c := router(t, nil)
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
	flush()

	spans := byName(c.get())
	sh, ok := spans["tools/call sh"]
	if !ok {
		t.Fatalf("no tools/call sh span in %v", spans)
	}
	const remote = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	if sh.Kind != tracepb.Span_SPAN_KIND_SERVER || hex.EncodeToString(sh.TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		hex.EncodeToString(sh.ParentSpanId) != "00f067aa0ba902b7" || sh.Flags&remote != remote || sh.Flags&1 != 1 || sh.TraceState != "k=v" {
		t.Errorf("sh span does not continue the client's trace: kind %v trace %x parent %x flags %#x state %q", sh.Kind, sh.TraceId, sh.ParentSpanId, sh.Flags, sh.TraceState)
	}
	a := attrs(sh)
	for k, want := range map[string]string{"mcp.method.name": "tools/call", "gen_ai.tool.name": "sh", "gen_ai.operation.name": "execute_tool",
		"mcp.session.id": "sess-1", "error.type": "tool_error", "network.transport": "tcp", "membrane.outcome": "tool_error", "membrane.call.kind": "tool"} {
		if a[k].GetStringValue() != want {
			t.Errorf("sh span %s = %q, want %q", k, a[k].GetStringValue(), want)
		}
	}
	if a["membrane.args.bytes"].GetIntValue() != 16 {
		t.Errorf("sh span membrane.args.bytes = %v, want 16", a["membrane.args.bytes"])
	}
	if sh.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || sh.Status.GetMessage() != "exit code 3" {
		t.Errorf("sh span status %v", sh.Status)
	}
	if d := sh.EndTimeUnixNano - sh.StartTimeUnixNano; sh.StartTimeUnixNano == 0 || d > uint64(time.Hour) {
		t.Errorf("sh span times %d..%d", sh.StartTimeUnixNano, sh.EndTimeUnixNano)
	}
	run, ok := spans[otel.SpanSandboxRun]
	if !ok {
		t.Fatal("no sandbox run span")
	}
	if !bytes.Equal(run.ParentSpanId, sh.SpanId) || !bytes.Equal(run.TraceId, sh.TraceId) || run.StartTimeUnixNano != uint64(began.UnixNano()) ||
		run.EndTimeUnixNano-run.StartTimeUnixNano != uint64(7*time.Millisecond) || run.Flags&remote == remote {
		t.Errorf("run span: parent %x (want %x), %d..%d, flags %#x", run.ParentSpanId, sh.SpanId, run.StartTimeUnixNano, run.EndTimeUnixNano, run.Flags)
	}
	if ra := attrs(run); ra["process.exit.code"].GetIntValue() != 3 || ra["membrane.sandbox.isolation"].GetStringValue() != "bwrap" ||
		ra["membrane.sandbox.start_ms"].GetDoubleValue() != 2 || ra["membrane.sandbox.stdout.bytes"].GetIntValue() != 5 {
		t.Errorf("run span attributes %v", ra)
	}
	if run.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || run.Status.GetMessage() != "exit code 3" {
		t.Errorf("run span status %v", run.Status)
	}

	model, ok := spans["tools/call ollama_qwen"]
	if !ok {
		t.Fatal("no tools/call ollama_qwen span")
	}
	if len(model.ParentSpanId) != 0 || bytes.Equal(model.TraceId, sh.TraceId) || len(model.TraceId) != 16 || len(model.SpanId) != 8 {
		t.Errorf("a call without traceparent should start its own trace: parent %x trace %x", model.ParentSpanId, model.TraceId)
	}
	if model.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR || attrs(model)["error.type"] != nil {
		t.Errorf("ok call has error status")
	}
	chat, ok := spans["chat qwen"]
	if !ok {
		t.Fatal("no chat span")
	}
	ca := attrs(chat)
	if !bytes.Equal(chat.ParentSpanId, model.SpanId) || chat.Kind != tracepb.Span_SPAN_KIND_CLIENT ||
		ca["gen_ai.request.model"].GetStringValue() != "qwen" || ca["gen_ai.usage.input_tokens"].GetIntValue() != 11 ||
		ca["gen_ai.usage.output_tokens"].GetIntValue() != 4 || ca["gen_ai.provider.name"].GetStringValue() != "ollama" ||
		ca["server.address"].GetStringValue() != "127.0.0.1" || ca["server.port"].GetIntValue() != 11434 || ca["membrane.model.first_token_ms"].GetDoubleValue() != 1 {
		t.Errorf("chat span %v parent %x", ca, chat.ParentSpanId)
	}
	if n := len(c.get()); n != 4 {
		t.Errorf("%d spans, want 4", n)
	}
	if len(c.res) == 0 || !slices.ContainsFunc(c.res[0].Attributes, func(kv *commonpb.KeyValue) bool {
		return kv.Key == "service.name" && kv.Value.GetStringValue() == "membrane"
	}) {
		t.Errorf("resource %v has no service.name membrane", c.res)
	}
}

// TestBadTraceParent: a traceparent that is not W3C starts a new trace
// (never a panic, never a malformed span); the valid control continues.
func TestBadTraceParent(t *testing.T) {
	r, flush, c := router(t, nil)
	add(t, r, calls.Call{Name: "echo", Kind: calls.KindTool, Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return calls.Text("ok"), nil
	})})
	for _, tp := range []string{"garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", parent} {
		if _, err := r.Call(t.Context(), "echo", &calls.Request{TraceParent: tp}); err != nil {
			t.Fatal(err)
		}
	}
	flush()
	spans := c.get()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, s := range spans[:2] {
		if len(s.ParentSpanId) != 0 {
			t.Errorf("span %d has a parent from a bad traceparent", i)
		}
	}
	if hex.EncodeToString(spans[2].TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("the valid control did not continue")
	}
}

// TestUnsampledParent: a client that did not sample its trace gets no
// spans from membrane either (the parent-based sampler).
func TestUnsampledParent(t *testing.T) {
	r, flush, c := router(t, nil)
	add(t, r, calls.Call{Name: "echo", Kind: calls.KindTool, Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return calls.Text("ok"), nil
	})})
	r.Call(t.Context(), "echo", &calls.Request{TraceParent: parent[:53] + "00"})
	r.Call(t.Context(), "echo", &calls.Request{TraceParent: parent})
	flush()
	if n := len(c.get()); n != 1 {
		t.Errorf("%d spans, want 1 (the sampled control)", n)
	}
}

var _ otlptrace.Client = (*capture)(nil)
