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
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
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
	// Getenv reads the OTEL_* variables that decide whether tracing is on,
	// which protocol it uses, and how the call spans are sampled, batched
	// and limited. Nil means os.Getenv. (The OTLP clients themselves read
	// their endpoint, headers and TLS settings from the process's
	// environment, and so does the SDK for the provider's own spans.)
	Getenv func(string) string
	// ServiceName is the service.name unless OTEL_SERVICE_NAME says
	// otherwise. Empty means "membrane".
	ServiceName string
	// ServiceVersion is the service.version.
	ServiceVersion string
	// Client, when set, is the OTLP client the spans are sent with instead
	// of otlptracehttp's or otlptracegrpc's, and tracing is on whatever
	// the environment says (tests).
	Client otlptrace.Client
	// Logger receives tracing's own trouble: spans that could not be
	// exported, or were lost to a full queue. Nil discards.
	Logger *slog.Logger
}

// Tracing is a started tracer provider, or a no-op one when tracing is off.
type Tracing struct {
	cfg Config
	sdk *sdktrace.TracerProvider
	tp  trace.TracerProvider
	q   *spanQueue // the call spans' queue; nil when off
}

// Start sets up tracing as the environment (or opts.Client) says. When
// tracing is off it returns a Tracing whose provider does nothing.
func Start(ctx context.Context, opts *Options) (*Tracing, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := ConfigFrom(o.Getenv)
	if err != nil {
		return nil, err
	}
	client := o.Client
	if client != nil {
		cfg.Enabled = true
	}
	if !cfg.Enabled {
		return &Tracing{cfg: cfg, tp: noop.NewTracerProvider()}, nil
	}
	if client == nil {
		switch cfg.Protocol {
		case ProtocolGRPC:
			client = otlptracegrpc.NewClient()
		default:
			client = otlptracehttp.NewClient()
		}
	}
	// One client for both: the SDK's exporter starts it and, at
	// shutdown, stops it.
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("%w: OTLP exporter (%s, %s): %v", ErrConfig, cfg.Protocol, cfg.Endpoint, err)
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
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
	q := newSpanQueue(client, BatchFrom(o.Getenv), o.Getenv, res, o.Logger)
	return &Tracing{cfg: cfg, sdk: tp, tp: tp, q: q}, nil
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
	// The call spans first: the provider's shutdown stops the client.
	err := t.q.stop(ctx)
	return errors.Join(err, t.sdk.Shutdown(ctx))
}

// ForceFlush exports the spans ended so far.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return errors.Join(t.q.forceFlush(ctx), t.sdk.ForceFlush(ctx))
}

// SpanStats counts the call spans: sent to the collector, lost because the
// queue was full, and not accepted by the collector.
type SpanStats struct {
	Exported, Dropped, Failed uint64
}

// Stats returns the call spans' counts (zero when tracing is off).
func (t *Tracing) Stats() SpanStats {
	if t.q == nil {
		return SpanStats{}
	}
	return SpanStats{Exported: t.q.exported.Load(), Dropped: t.q.dropped.Load(), Failed: t.q.failed.Load()}
}

// Observer returns a calls.Observer that makes spans from finished calls,
// or nil when tracing is off.
func (t *Tracing) Observer(opts *ObserverOptions) calls.Observer {
	if t.sdk == nil {
		return nil
	}
	var o ObserverOptions
	if opts != nil {
		o = *opts
	}
	if o.Provider == "" {
		o.Provider = "ollama"
	}
	return &Observer{q: t.q, transport: o.Transport, provider: o.Provider, callID: o.CallID}
}

// ObserverOptions configures an Observer. The zero value is usable.
type ObserverOptions struct {
	// Transport is the network.transport of the calls: "pipe" for stdio,
	// "tcp" for HTTP. Empty leaves it out.
	Transport string
	// Provider names the model servers' gen_ai.provider.name. Empty means
	// "ollama".
	Provider string
	// CallID, when set, names a call as the trace store does (from the
	// event's ID), for the span's membrane.call.id: the way from
	// `membrane calls show` to the trace and back. Nil leaves it out.
	CallID func(id uint64) string
}

// Observer makes the spans of finished calls: it queues each call's
// record for the exporter (Tracing.Observer).
type Observer struct {
	q         *spanQueue
	transport string
	provider  string
	callID    func(uint64) string
}

// ObserverName names the observer in the router's statistics.
func (o *Observer) ObserverName() string { return "otel" }

// Wants says the observer makes spans from finished calls only.
func (o *Observer) Wants(t calls.EventType) bool { return t == calls.EventCallFinished }

// MethodToolsCall is the MCP method every call is made with.
const MethodToolsCall = "tools/call"

// Observe queues an EventCallFinished's spans, if the sampler keeps them;
// other events are ignored. The call's span continues the trace of a
// valid traceparent; a run or a model request gets a child span.
func (o *Observer) Observe(e calls.Event) {
	if e.Type != calls.EventCallFinished {
		return
	}
	c := callSpan{
		start: e.Time.Add(-e.Duration), end: e.Time,
		call: e.Call, group: e.Group, session: e.Session, client: e.Client, reason: e.Reason,
		kind: e.Kind, outcome: e.Outcome, args: len(e.Arguments), result: e.ResultBytes, info: e.Info,
		transport: o.transport, provider: o.provider, protocol: e.Protocol, tokenName: e.TokenName,
	}
	if e.Sessionless {
		// Its session lasts one request: an ID the client never knew
		// would only pass for a session (mcp.session.id is recommended
		// where there is a session, not required).
		c.session = ""
	}
	if o.callID != nil && e.ID != 0 {
		c.callID = o.callID(e.ID)
	}
	p := sdktrace.SamplingParameters{ParentContext: context.Background(), Kind: trace.SpanKindServer}
	if calls.ValidTraceParent(e.TraceParent) {
		c.traceID, c.parent, c.flags = parseParent(e.TraceParent)
		c.remote = true
		ts, err := trace.ParseTraceState(e.TraceState)
		if err != nil {
			ts = trace.TraceState{}
		}
		p.ParentContext = trace.ContextWithRemoteSpanContext(p.ParentContext, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: c.traceID, SpanID: c.parent, TraceFlags: c.flags, TraceState: ts, Remote: true,
		}))
	} else if tid, err := trace.TraceIDFromHex(e.TraceID); err == nil && tid.IsValid() {
		// The trace ID the router made for a call without a traceparent,
		// which the store and the ledger record.
		c.traceID = tid
	} else {
		c.traceID = traceID()
	}
	// The SDK's samplers decide from the parent and the trace ID; the
	// span's name, which none of them reads, is not made here.
	p.TraceID = c.traceID
	res := o.q.sampler.ShouldSample(p)
	if res.Decision != sdktrace.RecordAndSample {
		return
	}
	c.flags |= trace.FlagsSampled
	if res.Tracestate.Len() > 0 {
		c.traceState = res.Tracestate.String()
	}
	c.spanID = spanID()
	if e.Info != nil {
		if e.Info.Run != nil {
			c.runID = spanID()
		}
		if e.Info.Model != nil {
			c.modelID = spanID()
		}
	}
	o.q.add(&c)
}

// SpanSandboxRun names the span of a sandboxed process.
const SpanSandboxRun = "sandbox run"

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
