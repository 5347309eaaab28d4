package otel

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/membrane-mcp/membrane/calls"
)

// The call spans do not go through the SDK's spans. A span of the SDK is
// a locked, mutable object made at its start and copied at its end, then
// sent one by one down the batch processor's channel (a wake-up of its
// goroutine per span), transformed once more into OTLP's protobuf types
// at export and marshalled by reflection: about 15 µs of CPU and 43
// allocations per call on this machine, on the cores the calls run on
// (BenchmarkSpan). A finished call is already a complete record, so the
// observer keeps that record (one copy, no allocation) in a bounded
// queue, and the exporter's goroutine writes the spans' protobuf straight
// from the queue (encoder), in batches, and sends them through the
// standard OTLP client (otlptracehttp or otlptracegrpc, which read the
// endpoint, headers, TLS, compression and timeout variables themselves):
// about 2.5 µs and no allocation per call. What the SDK would decide is
// decided the same way: the sampler (OTEL_TRACES_SAMPLER, with the SDK's
// own samplers), the batch settings (OTEL_BSP_*), the attribute limits
// (OTEL_SPAN_ATTRIBUTE_*, OTEL_ATTRIBUTE_*), and random IDs from the same
// generator (math/rand/v2). None of it runs on a call's goroutine.

// Batch is how call spans are queued and exported: the OTEL_BSP_*
// variables, with the specification's defaults.
type Batch struct {
	// MaxQueue is how many spans may wait for export; past it a span is
	// lost, and counted (OTEL_BSP_MAX_QUEUE_SIZE, 2048).
	MaxQueue int
	// MaxExport is the most spans sent in one request, and how many
	// waiting start an export before the delay is up
	// (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512; at most MaxQueue).
	MaxExport int
	// Delay is the longest a span waits for its export
	// (OTEL_BSP_SCHEDULE_DELAY, 5000 ms).
	Delay time.Duration
	// Timeout bounds one export (OTEL_BSP_EXPORT_TIMEOUT, 30000 ms).
	Timeout time.Duration
}

// BatchFrom reads the OTEL_BSP_* variables through getenv. A value that is
// not a positive integer is ignored, as the SDK ignores it.
func BatchFrom(getenv func(string) string) Batch {
	b := Batch{
		MaxQueue:  envInt(getenv, "OTEL_BSP_MAX_QUEUE_SIZE", sdktrace.DefaultMaxQueueSize),
		MaxExport: envInt(getenv, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", sdktrace.DefaultMaxExportBatchSize),
		Delay:     time.Duration(envInt(getenv, "OTEL_BSP_SCHEDULE_DELAY", sdktrace.DefaultScheduleDelay)) * time.Millisecond,
		Timeout:   time.Duration(envInt(getenv, "OTEL_BSP_EXPORT_TIMEOUT", sdktrace.DefaultExportTimeout)) * time.Millisecond,
	}
	b.MaxExport = min(b.MaxExport, b.MaxQueue)
	return b
}

func envInt(getenv func(string) string, key string, def int) int {
	v, err := strconv.Atoi(first(getenv, key))
	if err != nil || v <= 0 {
		return def
	}
	return v
}

// limits are the attribute limits of the SDK's spans
// (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT and OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT,
// else OTEL_ATTRIBUTE_COUNT_LIMIT and OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT;
// count 128, length unlimited by default).
type limits struct {
	count, length int // length < 0: unlimited
}

func limitsFrom(getenv func(string) string) limits {
	l := limits{count: sdktrace.DefaultAttributeCountLimit, length: -1}
	if v, err := strconv.Atoi(first(getenv, "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT")); err == nil && v >= 0 {
		l.count = v
	}
	if v, err := strconv.Atoi(first(getenv, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")); err == nil && v >= 0 {
		l.length = v
	}
	return l
}

// samplerFrom is the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG name, built from the SDK's samplers as the SDK
// builds it: parentbased_always_on by default, and for a name it does not
// know; a ratio that is not in [0, 1] is 1.
func samplerFrom(getenv func(string) string) sdktrace.Sampler {
	ratio := func() sdktrace.Sampler {
		v, err := strconv.ParseFloat(first(getenv, "OTEL_TRACES_SAMPLER_ARG"), 64)
		if err != nil || v < 0 || v > 1 {
			v = 1
		}
		return sdktrace.TraceIDRatioBased(v)
	}
	switch first(getenv, "OTEL_TRACES_SAMPLER") {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return ratio()
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(ratio())
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

// callSpan is one finished call as the export queue holds it: the event's
// fields the spans need, and the IDs chosen for them.
type callSpan struct {
	traceID        trace.TraceID
	spanID, parent trace.SpanID
	runID, modelID trace.SpanID
	flags          trace.TraceFlags
	remote         bool
	traceState     string
	start, end     time.Time
	call, group    string
	session        string // "" for a sessionless client, whose ID names nothing
	client, reason string
	protocol       string // the client's MCP protocol version
	tokenName      string // the scoped token's name
	callID         string // the trace store's ID of the call (ObserverOptions.CallID)
	kind           calls.Kind
	outcome        calls.Outcome
	args, result   int
	info           *calls.Info
	// transport and provider are the observer's options.
	transport, provider string
}

// spanQueue holds the finished calls until the exporter's goroutine
// sends them.
type spanQueue struct {
	client   otlptrace.Client
	batch    Batch
	sampler  sdktrace.Sampler
	resource *resourcepb.Resource
	resURL   string
	log      *slog.Logger
	enc      encoder // exporter goroutine only

	mu      sync.Mutex
	queue   []callSpan
	spare   []callSpan
	stopped bool

	wake  chan struct{}
	flush chan chan error
	quit  chan struct{}
	done  chan struct{}

	dropped, failed, exported atomic.Uint64
	lastErr                   time.Time // exporter goroutine only
}

func newSpanQueue(client otlptrace.Client, b Batch, getenv func(string) string, res *resource.Resource, log *slog.Logger) *spanQueue {
	q := &spanQueue{
		client: client, batch: b, enc: encoder{limits: limitsFrom(getenv)}, sampler: samplerFrom(getenv),
		resource: &resourcepb.Resource{Attributes: keyValues(res.Attributes())},
		resURL:   res.SchemaURL(),
		log:      log,
		queue:    make([]callSpan, 0, b.MaxExport),
		wake:     make(chan struct{}, 1),
		flush:    make(chan chan error),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go q.run()
	return q
}

// add queues s, or counts it lost when the queue is full. It never waits
// for the exporter.
func (q *spanQueue) add(s *callSpan) {
	q.mu.Lock()
	if q.stopped || len(q.queue) >= q.batch.MaxQueue {
		q.mu.Unlock()
		q.dropped.Add(1)
		return
	}
	q.queue = append(q.queue, *s)
	full := len(q.queue) == q.batch.MaxExport
	q.mu.Unlock()
	if full {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *spanQueue) run() {
	defer close(q.done)
	t := time.NewTimer(q.batch.Delay)
	defer t.Stop()
	for {
		var reply chan error
		select {
		case <-q.wake:
		case <-t.C:
		case reply = <-q.flush:
		case <-q.quit:
			q.export()
			return
		}
		err := q.export()
		if reply != nil {
			reply <- err
		}
		t.Reset(q.batch.Delay)
	}
}

// export sends everything queued now, MaxExport spans a request, and
// returns the last error.
func (q *spanQueue) export() error {
	// Two arrays take turns: the calls fill one while the other is sent.
	q.mu.Lock()
	taken := q.queue
	q.queue = q.spare[:0]
	q.mu.Unlock()
	var last error
	for spans := taken; len(spans) > 0; {
		n := min(len(spans), q.batch.MaxExport)
		if err := q.send(spans[:n]); err != nil {
			last = err
		}
		spans = spans[n:]
	}
	clear(taken) // the records' strings and Info are not kept alive
	q.mu.Lock()
	q.spare = taken[:0]
	q.mu.Unlock()
	return last
}

func (q *spanQueue) send(spans []callSpan) error {
	w := &q.enc
	w.out = w.out[:0]
	n := 0
	for i := range spans {
		n += w.spans(&spans[i])
	}
	ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: scopeName}, SchemaUrl: semconv.SchemaURL}
	ss.ProtoReflect().SetUnknown(protoreflect.RawFields(w.out))
	rs := []*tracepb.ResourceSpans{{Resource: q.resource, SchemaUrl: q.resURL, ScopeSpans: []*tracepb.ScopeSpans{ss}}}
	ctx, cancel := context.WithTimeout(context.Background(), q.batch.Timeout)
	defer cancel()
	err := q.client.UploadTraces(ctx, rs)
	if err != nil {
		q.failed.Add(uint64(n))
		if time.Since(q.lastErr) > 10*time.Second {
			q.log.Warn("tracing: spans were not exported", "spans", n, "err", err)
			q.lastErr = time.Now()
		}
		return err
	}
	q.exported.Add(uint64(n))
	return nil
}

// forceFlush exports what is queued now and waits for it.
func (q *spanQueue) forceFlush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case q.flush <- reply:
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop exports what is queued and ends the goroutine; spans added later
// are lost.
func (q *spanQueue) stop(ctx context.Context) error {
	q.mu.Lock()
	already := q.stopped
	q.stopped = true
	q.mu.Unlock()
	if !already {
		close(q.quit)
	}
	select {
	case <-q.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if d := q.dropped.Load(); d > 0 {
		q.log.Warn("tracing: spans were lost because the export queue was full", "spans", d, "max_queue", q.batch.MaxQueue)
	}
	return nil
}

const scopeName = "github.com/membrane-mcp/membrane/calls/otel"

// spanID returns a random span ID that is not all zeros.
func spanID() (id trace.SpanID) {
	for !id.IsValid() {
		u := rand.Uint64()
		for i := range id {
			id[i] = byte(u >> (8 * i))
		}
	}
	return id
}

func traceID() (id trace.TraceID) {
	for !id.IsValid() {
		a, b := rand.Uint64(), rand.Uint64()
		for i := range 8 {
			id[i], id[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
		}
	}
	return id
}

// parseParent reads a valid W3C traceparent (calls.ValidTraceParent).
func parseParent(tp string) (tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags) {
	hexTo(tid[:], tp[3:35])
	hexTo(sid[:], tp[36:52])
	var f [1]byte
	hexTo(f[:], tp[53:55])
	return tid, sid, trace.TraceFlags(f[0])
}

func hexTo(dst []byte, s string) {
	for i := range dst {
		dst[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// encoder writes call spans as OTLP's protobuf wire format (the Span
// message of opentelemetry/proto/trace/v1/trace.proto), appended to a
// buffer kept from one export to the next: no message objects, no
// reflection, no allocation once the buffer has grown. send hands the
// bytes to the OTLP client as the ScopeSpans message's unknown fields,
// which the protobuf runtime writes out as they are: on the wire they are
// the ScopeSpans' repeated spans field, and a collector reads them as any
// other spans (TestWireRoundTrip decodes them with the generated types).
type encoder struct {
	limits limits
	out    []byte // the ScopeSpans' spans fields
	span   []byte // the span being written
	// n and dropped count the span's attributes written and the ones
	// past the count limit.
	n, dropped int
}

// Field numbers of the OTLP messages written here.
const (
	fScopeSpansSpans = 2

	fSpanTraceID      = 1
	fSpanSpanID       = 2
	fSpanTraceState   = 3
	fSpanParentSpanID = 4
	fSpanName         = 5
	fSpanKind         = 6
	fSpanStart        = 7
	fSpanEnd          = 8
	fSpanAttributes   = 9
	fSpanDroppedAttrs = 10
	fSpanStatus       = 15
	fSpanFlags        = 16

	fStatusMessage = 2
	fStatusCode    = 3

	fKeyValueKey   = 1
	fKeyValueValue = 2

	fAnyString = 1
	fAnyInt    = 3
	fAnyDouble = 4
)

// clean makes s a valid UTF-8 string (a protobuf string must be one),
// cut to the value length limit without splitting a character, as the
// SDK's limit does.
func (w *encoder) clean(s string) string {
	if w.limits.length >= 0 && len(s) > w.limits.length {
		n := w.limits.length
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

func (w *encoder) begin(tid trace.TraceID, id, parent *trace.SpanID, traceState string, flags uint32, kind tracepb.Span_SpanKind, name string, start, end time.Time) {
	b := w.span[:0]
	b = protowire.AppendTag(b, fSpanTraceID, protowire.BytesType)
	b = protowire.AppendBytes(b, tid[:])
	b = protowire.AppendTag(b, fSpanSpanID, protowire.BytesType)
	b = protowire.AppendBytes(b, id[:])
	if traceState != "" {
		b = protowire.AppendTag(b, fSpanTraceState, protowire.BytesType)
		b = protowire.AppendString(b, w.clean(traceState))
	}
	if parent.IsValid() {
		b = protowire.AppendTag(b, fSpanParentSpanID, protowire.BytesType)
		b = protowire.AppendBytes(b, parent[:])
	}
	b = protowire.AppendTag(b, fSpanName, protowire.BytesType)
	b = protowire.AppendString(b, w.clean(name))
	b = protowire.AppendTag(b, fSpanKind, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(kind))
	b = protowire.AppendTag(b, fSpanStart, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, unixNano(start))
	b = protowire.AppendTag(b, fSpanEnd, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, unixNano(end))
	b = protowire.AppendTag(b, fSpanFlags, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, flags)
	w.span = b
	w.n, w.dropped = 0, 0
}

func unixNano(t time.Time) uint64 { return uint64(max(0, t.UnixNano())) }

// attr writes the head of an attribute whose AnyValue is n bytes long, or
// reports that the count limit drops it.
func (w *encoder) attr(key string, n int) bool {
	if w.n >= w.limits.count {
		w.dropped++
		return false
	}
	w.n++
	kv := protowire.SizeTag(fKeyValueKey) + protowire.SizeBytes(len(key)) + protowire.SizeTag(fKeyValueValue) + protowire.SizeBytes(n)
	b := protowire.AppendTag(w.span, fSpanAttributes, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kv))
	b = protowire.AppendTag(b, fKeyValueKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fKeyValueValue, protowire.BytesType)
	w.span = protowire.AppendVarint(b, uint64(n))
	return true
}

func (w *encoder) str(key, s string) {
	s = w.clean(s)
	if w.attr(key, protowire.SizeTag(fAnyString)+protowire.SizeBytes(len(s))) {
		w.span = protowire.AppendString(protowire.AppendTag(w.span, fAnyString, protowire.BytesType), s)
	}
}

func (w *encoder) int(key string, v int64) {
	if w.attr(key, protowire.SizeTag(fAnyInt)+protowire.SizeVarint(uint64(v))) {
		w.span = protowire.AppendVarint(protowire.AppendTag(w.span, fAnyInt, protowire.VarintType), uint64(v))
	}
}

// ms writes d as a double of milliseconds (to the microsecond).
func (w *encoder) ms(key string, d time.Duration) {
	if w.attr(key, protowire.SizeTag(fAnyDouble)+protowire.SizeFixed64()) {
		w.span = protowire.AppendFixed64(protowire.AppendTag(w.span, fAnyDouble, protowire.Fixed64Type), math.Float64bits(float64(d.Microseconds())/1000))
	}
}

// fail gives the span an error status with msg.
func (w *encoder) fail(msg string) {
	msg = w.clean(msg)
	n := protowire.SizeTag(fStatusMessage) + protowire.SizeBytes(len(msg)) + protowire.SizeTag(fStatusCode) + protowire.SizeVarint(uint64(tracepb.Status_STATUS_CODE_ERROR))
	b := protowire.AppendTag(w.span, fSpanStatus, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = protowire.AppendTag(b, fStatusMessage, protowire.BytesType)
	b = protowire.AppendString(b, msg)
	b = protowire.AppendTag(b, fStatusCode, protowire.VarintType)
	w.span = protowire.AppendVarint(b, uint64(tracepb.Status_STATUS_CODE_ERROR))
}

// end appends the span written to out.
func (w *encoder) end() {
	if w.dropped > 0 {
		w.span = protowire.AppendTag(w.span, fSpanDroppedAttrs, protowire.VarintType)
		w.span = protowire.AppendVarint(w.span, uint64(w.dropped))
	}
	w.out = protowire.AppendTag(w.out, fScopeSpansSpans, protowire.BytesType)
	w.out = protowire.AppendBytes(w.out, w.span)
}

// The span flags as the SDK's exporter sets them: the trace flags, and
// whether the parent is remote.
const (
	flagHasRemote = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	flagRemote    = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
)

// spans writes c's spans: the call's, and its run's or its model
// request's. It returns how many.
func (w *encoder) spans(c *callSpan) int {
	flags := uint32(c.flags) | flagHasRemote
	callFlags := flags
	if c.remote {
		callFlags |= flagRemote
	}
	w.begin(c.traceID, &c.spanID, &c.parent, c.traceState, callFlags, tracepb.Span_SPAN_KIND_SERVER, MethodToolsCall+" "+c.call, c.start, c.end)
	w.str(string(semconv.McpMethodNameKey), MethodToolsCall)
	w.str(string(semconv.GenAIToolNameKey), c.call)
	w.str(string(semconv.GenAIOperationNameKey), semconv.GenAIOperationNameExecuteTool.Value.AsString())
	w.str("membrane.call.kind", c.kind.String())
	w.str("membrane.outcome", c.outcome.String())
	w.int("membrane.args.bytes", int64(c.args))
	w.int("membrane.result.bytes", int64(c.result))
	if c.session != "" {
		w.str(string(semconv.McpSessionIDKey), c.session)
	}
	if c.protocol != "" {
		w.str(string(semconv.McpProtocolVersionKey), c.protocol)
	}
	if c.callID != "" {
		w.str("membrane.call.id", c.callID)
	}
	if c.tokenName != "" {
		w.str("membrane.token.name", c.tokenName)
	}
	if c.client != "" {
		w.str("membrane.client.name", c.client)
	}
	if c.group != "" {
		w.str("membrane.call.group", c.group)
	}
	if c.transport != "" {
		w.str(string(semconv.NetworkTransportKey), c.transport)
	}
	if c.outcome.Failed() {
		w.str(string(semconv.ErrorTypeKey), c.outcome.String())
		w.fail(c.reason)
	}
	w.end()
	n := 1
	if c.info == nil {
		return n
	}
	if r := c.info.Run; r != nil {
		began, end := span(r.Began, r.Wall, c.start, c.end)
		w.begin(c.traceID, &c.runID, &c.spanID, c.traceState, flags, tracepb.Span_SPAN_KIND_INTERNAL, SpanSandboxRun, began, end)
		w.int(string(semconv.ProcessExitCodeKey), int64(r.ExitCode))
		w.str("membrane.sandbox.isolation", r.Isolation)
		w.int("membrane.sandbox.stdout.bytes", r.StdoutBytes)
		w.int("membrane.sandbox.stderr.bytes", r.StderrBytes)
		w.ms("membrane.sandbox.start_ms", r.Start)
		if r.Signal != "" {
			w.str("membrane.sandbox.signal", r.Signal)
		}
		if r.Killed != "" {
			w.str("membrane.sandbox.killed", r.Killed)
		}
		if len(r.Limits) > 0 {
			w.str("membrane.sandbox.limits", strings.Join(r.Limits, ","))
		}
		if r.Killed != "" || r.ExitCode != 0 {
			msg := "exit code " + strconv.Itoa(r.ExitCode)
			if r.Killed != "" {
				msg += " " + r.Killed
			}
			w.fail(msg)
		}
		w.end()
		n++
	}
	if m := c.info.Model; m != nil {
		began, end := span(m.Began, m.Took, c.start, c.end)
		w.begin(c.traceID, &c.modelID, &c.spanID, c.traceState, flags, tracepb.Span_SPAN_KIND_CLIENT, "chat "+m.Model, began, end)
		w.str(string(semconv.GenAIOperationNameKey), semconv.GenAIOperationNameChat.Value.AsString())
		w.str(string(semconv.GenAIProviderNameKey), c.provider)
		w.str(string(semconv.GenAIRequestModelKey), m.Model)
		w.str(string(semconv.GenAIResponseModelKey), m.Model)
		w.int(string(semconv.GenAIUsageInputTokensKey), int64(m.TokensIn))
		w.int(string(semconv.GenAIUsageOutputTokensKey), int64(m.TokensOut))
		if host, port := calls.ServerAddress(m.Host); host != "" {
			w.str(string(semconv.ServerAddressKey), host)
			if port > 0 {
				w.int(string(semconv.ServerPortKey), int64(port))
			}
		}
		if m.FirstToken > 0 {
			w.ms("membrane.model.first_token_ms", m.FirstToken)
		}
		if m.QueueWait > 0 {
			w.ms("membrane.model.queue_wait_ms", m.QueueWait)
		}
		if c.outcome.Failed() {
			w.fail(c.outcome.String())
		}
		w.end()
		n++
	}
	return n
}

// keyValues turns the resource's attributes into OTLP's (once, at start).
func keyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		out = append(out, &commonpb.KeyValue{Key: string(kv.Key), Value: anyValue(kv.Value)})
	}
	return out
}

func anyValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	case attribute.STRING:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.AsString()}}
	}
	// Slices (which no resource detector of ours makes) travel as their
	// JSON text.
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.String()}}
}
