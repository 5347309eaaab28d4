// Package otel traces calls with OpenTelemetry. It is off unless the
// standard OTEL_* variables switch it on, and it adds no event model of its
// own: Observer turns the router's finished-call events into spans after
// the fact, with the times the events carry, so that tracing costs a call
// nothing but the event it already sends.
//
// Each call becomes one server span named "tools/call NAME", with the MCP
// and GenAI semantic-convention attributes, as a child of the trace the
// client sent in the request's _meta (the W3C traceparent). A sandboxed run
// adds a child span for the process, and a model call one for the request
// to the model server, with the model and its token counts.
package otel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/membrane-mcp/membrane/calls"
)

// The protocols OTLP can be sent with.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// ErrConfig is wrapped by the errors of a tracing set-up the environment
// describes wrongly.
var ErrConfig = errors.New("bad OpenTelemetry configuration")

// Config is what the environment says about tracing.
type Config struct {
	// Enabled is false unless an OTLP endpoint is set (or OTLP is asked
	// for by name), and false whenever the SDK is disabled.
	Enabled bool
	// Protocol is ProtocolHTTP or ProtocolGRPC.
	Protocol string
	// Endpoint is the endpoint the environment names, for messages; the
	// exporters read it (and the headers, timeouts and TLS settings) from
	// the environment themselves.
	Endpoint string
}

// ConfigFrom reads the standard variables through getenv:
// OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER (otlp or none),
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT, and
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL (grpc
// or http/protobuf, the default).
func ConfigFrom(getenv func(string) string) (Config, error) {
	var c Config
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return c, nil
	}
	named := false
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "", "otlp":
		named = exp == "otlp"
	case "none":
		return c, nil
	default:
		return c, fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", ErrConfig, exp)
	}
	c.Endpoint = first(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	c.Protocol = first(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	switch c.Protocol {
	case "":
		c.Protocol = ProtocolHTTP
	case ProtocolHTTP, ProtocolGRPC:
	default:
		return c, fmt.Errorf("%w: OTLP protocol %q: use grpc or http/protobuf", ErrConfig, c.Protocol)
	}
	c.Enabled = c.Endpoint != "" || named
	return c, nil
}

func first(getenv func(string) string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
	}
	return ""
}

// Options configures Start. The zero value reads the process's
// environment and names the service "membrane".
type Options struct {
	// Getenv reads the OTEL_* variables that decide whether tracing is on
	// and which protocol it uses. Nil means os.Getenv. (The exporters
	// themselves read their endpoint, headers and TLS settings from the
	// process's environment.)
	Getenv func(string) string
	// ServiceName is the service.name unless OTEL_SERVICE_NAME says
	// otherwise. Empty means "membrane".
	ServiceName string
	// ServiceVersion is the service.version.
	ServiceVersion string
	// Exporter, when set, receives the spans instead of an OTLP exporter,
	// and tracing is on whatever the environment says.
	Exporter sdktrace.SpanExporter
	// Sync exports each span as it ends instead of in batches (tests).
	Sync bool
}

// Tracing is a started tracer provider, or a no-op one when tracing is off.
type Tracing struct {
	cfg Config
	sdk *sdktrace.TracerProvider
	tp  trace.TracerProvider
}

// Start sets up tracing as the environment (or opts.Exporter) says. When
// tracing is off it returns a Tracing whose provider does nothing.
func Start(ctx context.Context, opts *Options) (*Tracing, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	cfg, err := ConfigFrom(o.Getenv)
	if err != nil {
		return nil, err
	}
	exp := o.Exporter
	if exp != nil {
		cfg.Enabled = true
	}
	if !cfg.Enabled {
		return &Tracing{cfg: cfg, tp: noop.NewTracerProvider()}, nil
	}
	if exp == nil {
		switch cfg.Protocol {
		case ProtocolGRPC:
			exp, err = otlptracegrpc.New(ctx)
		default:
			exp, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: OTLP exporter (%s, %s): %v", ErrConfig, cfg.Protocol, cfg.Endpoint, err)
		}
	}
	name := o.ServiceName
	if name == "" {
		name = "membrane"
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if o.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(o.ServiceVersion))
	}
	// The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) wins
	// over the defaults.
	res, err := resource.Merge(resource.NewWithAttributes(semconv.SchemaURL, attrs...), envResource())
	if err != nil {
		res = resource.NewWithAttributes(semconv.SchemaURL, attrs...)
	}
	var sp sdktrace.SpanProcessor
	if o.Sync {
		sp = sdktrace.NewSimpleSpanProcessor(exp)
	} else {
		sp = sdktrace.NewBatchSpanProcessor(exp)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(sp))
	return &Tracing{cfg: cfg, sdk: tp, tp: tp}, nil
}

func envResource() *resource.Resource {
	r, err := resource.New(context.Background(), resource.WithFromEnv(), resource.WithSchemaURL(semconv.SchemaURL))
	if err != nil {
		return resource.Empty()
	}
	return r
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// Config returns what the environment said.
func (t *Tracing) Config() Config { return t.cfg }

// TracerProvider returns the provider (a no-op one when tracing is off).
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.tp }

// Propagator is the W3C trace-context propagator that tracing uses.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// Shutdown exports what is left and stops. It is a no-op when tracing is
// off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// ForceFlush exports the spans ended so far.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}

// Observer returns a calls.Observer that makes spans from finished calls,
// or nil when tracing is off.
func (t *Tracing) Observer(opts *ObserverOptions) calls.Observer {
	if t.sdk == nil {
		return nil
	}
	return NewObserver(t.tp, opts)
}

// ObserverOptions configures an Observer. The zero value is usable.
type ObserverOptions struct {
	// Transport is the network.transport of the calls: "pipe" for stdio,
	// "tcp" for HTTP. Empty leaves it out.
	Transport string
	// Provider names the model servers' gen_ai.provider.name. Empty means
	// "ollama".
	Provider string
}

// Observer makes one span per finished call.
type Observer struct {
	tracer    trace.Tracer
	transport string
	provider  string
}

// NewObserver returns an Observer that records spans with tp.
func NewObserver(tp trace.TracerProvider, opts *ObserverOptions) *Observer {
	var o ObserverOptions
	if opts != nil {
		o = *opts
	}
	if o.Provider == "" {
		o.Provider = "ollama"
	}
	return &Observer{
		tracer:    tp.Tracer("github.com/membrane-mcp/membrane/calls/otel", trace.WithSchemaURL(semconv.SchemaURL)),
		transport: o.Transport,
		provider:  o.Provider,
	}
}

// ObserverName names the observer in the router's statistics.
func (o *Observer) ObserverName() string { return "otel" }

// Wants says the observer makes spans from finished calls only.
func (o *Observer) Wants(t calls.EventType) bool { return t == calls.EventCallFinished }

// MethodToolsCall is the MCP method every call is made with.
const MethodToolsCall = "tools/call"

// Observe turns an EventCallFinished into spans; other events are ignored.
func (o *Observer) Observe(e calls.Event) {
	if e.Type != calls.EventCallFinished {
		return
	}
	ctx := context.Background()
	if e.TraceParent != "" {
		carrier := propagation.MapCarrier{"traceparent": e.TraceParent}
		if e.TraceState != "" {
			carrier["tracestate"] = e.TraceState
		}
		ctx = Propagator().Extract(ctx, carrier)
	}
	attrs := make([]attribute.KeyValue, 0, 12)
	attrs = append(attrs,
		semconv.McpMethodNameKey.String(MethodToolsCall),
		semconv.GenAIToolName(e.Call),
		semconv.GenAIOperationNameExecuteTool,
		attribute.String("membrane.call.kind", e.Kind.String()),
		attribute.String("membrane.outcome", e.Outcome.String()),
		attribute.Int("membrane.args.bytes", len(e.Arguments)),
		attribute.Int("membrane.result.bytes", e.ResultBytes),
	)
	if e.Session != "" {
		attrs = append(attrs, semconv.McpSessionID(e.Session))
	}
	if e.Client != "" {
		attrs = append(attrs, attribute.String("membrane.client.name", e.Client))
	}
	if e.Group != "" {
		attrs = append(attrs, attribute.String("membrane.call.group", e.Group))
	}
	if o.transport != "" {
		attrs = append(attrs, semconv.NetworkTransportKey.String(o.transport))
	}
	if e.Outcome.Failed() {
		attrs = append(attrs, semconv.ErrorTypeKey.String(e.Outcome.String()))
	}
	start := e.Time.Add(-e.Duration)
	ctx, span := o.tracer.Start(ctx, MethodToolsCall+" "+e.Call,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if e.Outcome.Failed() {
		span.SetStatus(codes.Error, e.Reason)
	}
	if e.Info != nil && e.Info.Run != nil {
		o.runSpan(ctx, e.Info.Run, start, e.Time)
	}
	if e.Info != nil && e.Info.Model != nil {
		o.modelSpan(ctx, e.Info.Model, start, e.Time, e.Outcome)
	}
	span.End(trace.WithTimestamp(e.Time))
}

// SpanSandboxRun names the span of a sandboxed process.
const SpanSandboxRun = "sandbox run"

func (o *Observer) runSpan(ctx context.Context, r *calls.RunInfo, callStart, callEnd time.Time) {
	began, end := span(r.Began, r.Wall, callStart, callEnd)
	attrs := []attribute.KeyValue{
		semconv.ProcessExitCode(r.ExitCode),
		attribute.String("membrane.sandbox.isolation", r.Isolation),
		attribute.Int64("membrane.sandbox.stdout.bytes", r.StdoutBytes),
		attribute.Int64("membrane.sandbox.stderr.bytes", r.StderrBytes),
		attribute.Float64("membrane.sandbox.start_ms", float64(r.Start.Microseconds())/1000),
	}
	if r.Signal != "" {
		attrs = append(attrs, attribute.String("membrane.sandbox.signal", r.Signal))
	}
	if r.Killed != "" {
		attrs = append(attrs, attribute.String("membrane.sandbox.killed", r.Killed))
	}
	_, s := o.tracer.Start(ctx, SpanSandboxRun, trace.WithTimestamp(began), trace.WithAttributes(attrs...))
	if r.Killed != "" || r.ExitCode != 0 {
		s.SetStatus(codes.Error, fmt.Sprintf("exit code %d %s", r.ExitCode, r.Killed))
	}
	s.End(trace.WithTimestamp(end))
}

func (o *Observer) modelSpan(ctx context.Context, m *calls.ModelInfo, callStart, callEnd time.Time, outcome calls.Outcome) {
	began, end := span(m.Began, m.Took, callStart, callEnd)
	attrs := []attribute.KeyValue{
		semconv.GenAIOperationNameChat,
		semconv.GenAIProviderNameKey.String(o.provider),
		semconv.GenAIRequestModel(m.Model),
		semconv.GenAIResponseModel(m.Model),
		semconv.GenAIUsageInputTokens(m.TokensIn),
		semconv.GenAIUsageOutputTokens(m.TokensOut),
	}
	if host, port := serverAddr(m.Host); host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	if m.FirstToken > 0 {
		attrs = append(attrs, attribute.Float64("membrane.model.first_token_ms", float64(m.FirstToken.Microseconds())/1000))
	}
	if m.QueueWait > 0 {
		attrs = append(attrs, attribute.Float64("membrane.model.queue_wait_ms", float64(m.QueueWait.Microseconds())/1000))
	}
	_, s := o.tracer.Start(ctx, "chat "+m.Model, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(began), trace.WithAttributes(attrs...))
	if outcome.Failed() {
		s.SetStatus(codes.Error, outcome.String())
	}
	s.End(trace.WithTimestamp(end))
}

// serverAddr splits a model host as membrane names it (a base URL such as
// http://127.0.0.1:11434, or host:port) into the semantic conventions'
// server.address, a bare host name or IP, and server.port (the scheme's
// when the URL gives none; 0 when unknown).
func serverAddr(h string) (string, int) {
	if h == "" {
		return "", 0
	}
	if strings.Contains(h, "://") {
		u, err := url.Parse(h)
		if err != nil || u.Hostname() == "" {
			return h, 0
		}
		port, _ := strconv.Atoi(u.Port())
		if port == 0 {
			switch u.Scheme {
			case "http":
				port = 80
			case "https":
				port = 443
			}
		}
		return u.Hostname(), port
	}
	if host, p, err := net.SplitHostPort(h); err == nil {
		port, _ := strconv.Atoi(p)
		return host, port
	}
	return h, 0
}

// span is the time of a child span: as measured when it was, else the
// call's own time.
func span(began time.Time, took time.Duration, callStart, callEnd time.Time) (time.Time, time.Time) {
	if began.IsZero() {
		return callStart, callEnd
	}
	return began, began.Add(took)
}

// Transport wraps base (nil means http.DefaultTransport) so that each
// request is a client span of the context's trace and carries its W3C
// traceparent header. When tracing is off it returns base unchanged.
func (t *Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if t.sdk == nil {
		return base
	}
	return otelhttp.NewTransport(base, otelhttp.WithTracerProvider(t.tp), otelhttp.WithPropagators(Propagator()))
}
