// Package agent owns the model-agnostic tool-calling loop: it sends a
// conversation and the live set of calls to a chat model, runs every tool
// call the model asks for (in parallel when there are several), feeds the
// results back, and repeats until the model answers or a step limit is
// reached.
//
// The model is anything that implements [Model]; the tools are anything that
// lists and invokes calls, such as a [calls.Router] that an MCP client keeps
// in step with remote servers. The package knows nothing about HTTP, MCP or
// terminals.
//
// A tool failure never stops a turn: invalid JSON arguments, an unknown tool
// name, a denied approval or a call that could not be made all go back to the
// model as tool errors, so that it can recover. Only a model error, a
// cancelled context or the step limit end a turn early.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/membrane-mcp/membrane/calls"
)

// Tools is what the agent needs from a set of calls. *calls.Router
// implements it.
type Tools interface {
	List() []calls.Call
	Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error)
}

var _ Tools = (*calls.Router)(nil)

// ErrMaxSteps is returned by Ask when the model was still calling tools
// after Options.MaxSteps steps.
var ErrMaxSteps = errors.New("step limit reached without a final answer")

// Defaults used where Options leaves a field zero.
const (
	DefaultMaxSteps       = 10
	DefaultMaxResultBytes = 32 << 10
)

// Options configures an Agent. The zero value is usable.
type Options struct {
	// Model is the model name sent with each request. Empty means the
	// Model implementation's default.
	Model string
	// System is a system prompt put before the conversation. Empty means
	// none.
	System string
	// Capabilities, when set, is called before every model call, and the
	// text it returns (a capabilities card: see Card and RenderCard) is
	// added to the system prompt, so that the model is told of the tools
	// it has at that step. Nil adds nothing.
	Capabilities func() string
	// MaxSteps bounds the model calls of one turn. Zero means
	// DefaultMaxSteps; negative means no limit.
	MaxSteps int
	// MaxParallel bounds how many tool calls of one step run at once. Zero
	// or negative means all of them.
	MaxParallel int
	// MaxResultBytes caps the text of one tool result fed back to the
	// model; the rest is cut with a note. Zero means DefaultMaxResultBytes;
	// negative means no cap.
	MaxResultBytes int
	// ExtractTextCalls makes the agent look for tool calls that the model
	// wrote as JSON text instead of making structured calls (see
	// ExtractToolCalls), and run them.
	ExtractTextCalls bool
	// Approve, when set, is asked before each tool call, one at a time and
	// in order. Returning false denies the call (the model is told so); an
	// error ends the turn.
	Approve func(ctx context.Context, call ToolCall) (bool, error)
	// OnEvent, when set, receives what the agent does as it happens. Calls
	// are serialised: OnEvent is never called concurrently.
	OnEvent func(Event)
	// Session is passed with every tool call. Nil means one the agent
	// makes.
	Session *calls.Session
	// History is the conversation the agent starts from, without the
	// system prompt (a server given the whole conversation with each
	// request). Nil means none. The agent keeps a copy.
	History []Message
	// Logger receives debug records. Nil discards.
	Logger *slog.Logger
	// Provider is the gen_ai.provider.name of the model calls' spans.
	// Empty means "openai": the agent's models speak the OpenAI chat
	// completions API, and the semantic conventions name the API's
	// provider when the client cannot tell the product behind it.
	Provider string
	// ToolTransport, when set, gives the network.transport ("pipe",
	// "tcp") of the connection a tool's calls go over, for their spans;
	// "" leaves it out.
	ToolTransport func(tool string) string
	// TracerProvider, when set, traces each turn: a span for the turn, a
	// child for each model call (whose context the Model gets, so that an
	// instrumented HTTP client continues it), and one for each tool call,
	// whose W3C trace context goes in the calls.Request for the server to
	// continue. Nil means no tracing.
	TracerProvider trace.TracerProvider
}

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event.
const (
	// EventModelStart: a model call begins (Step).
	EventModelStart EventKind = iota + 1
	// EventReasoning: thinking text streamed in (Text).
	EventReasoning
	// EventContent: answer text streamed in (Text). Text that turns out to
	// be a tool call written as text is not reported.
	EventContent
	// EventModelDone: the model call ended (Usage, Duration, Err).
	EventModelDone
	// EventToolStart: a tool call begins (Call).
	EventToolStart
	// EventToolDone: a tool call ended (Record).
	EventToolDone
	// EventToolProgress: a running tool call reported progress (Call,
	// Text, Progress, Total).
	EventToolProgress
)

// Event is one thing the agent did.
type Event struct {
	Kind     EventKind
	Step     int
	Text     string
	Call     *ToolCall
	Record   *CallRecord
	Usage    Usage
	Duration time.Duration
	Err      error
	// Progress and Total are a tool's progress report; Total is 0 when
	// unknown.
	Progress, Total float64
}

// CallRecord is one tool call of a turn and how it went.
type CallRecord struct {
	Step      int
	ID        string
	Name      string
	Arguments string
	// Result is the text fed back to the model.
	Result  string
	IsError bool
	// Denied is set when Approve said no.
	Denied bool
	// FromText is set when the call was found in the model's text rather
	// than made as a structured call.
	FromText bool
	Duration time.Duration
	// Started is when the call was made (or refused).
	Started time.Time
}

// ModelRecord is one model call of a turn and how it went.
type ModelRecord struct {
	Step  int
	Model string
	Usage Usage
	// Started is when the request was sent; FirstToken the time from then
	// to the first streamed text (zero when none came).
	Started    time.Time
	FirstToken time.Duration
	Duration   time.Duration
	Err        error
}

// Turn is the outcome of one Ask.
type Turn struct {
	// Answer is the final answer, or the last text the model wrote when
	// the turn ended early.
	Answer    string
	Reasoning string
	// Steps counts the model calls.
	Steps    int
	Calls    []CallRecord
	Models   []ModelRecord
	Usage    Usage
	Duration time.Duration
	// TraceID is the turn's OpenTelemetry trace ID in hex, when traced.
	TraceID string
}

// Agent holds a conversation with a model that can call tools. Ask runs one
// turn at a time; the other methods are safe to call concurrently with it.
type Agent struct {
	model Model
	tools Tools
	opts  Options
	log   *slog.Logger
	sess  *calls.Session
	trc   trace.Tracer

	turnMu sync.Mutex // one Ask at a time
	evMu   sync.Mutex // serialises OnEvent

	mu      sync.Mutex
	name    string
	history []Message
}

// New returns an agent that talks to m and calls tools from t. A nil opts
// means the defaults; t may be nil for a model without tools.
func New(m Model, t Tools, opts *Options) *Agent {
	a := &Agent{model: m, tools: t}
	if opts != nil {
		a.opts = *opts
	}
	if a.opts.MaxSteps == 0 {
		a.opts.MaxSteps = DefaultMaxSteps
	}
	if a.opts.MaxResultBytes == 0 {
		a.opts.MaxResultBytes = DefaultMaxResultBytes
	}
	a.log = a.opts.Logger
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.sess = a.opts.Session
	if a.sess == nil {
		a.sess = calls.NewSession("")
	}
	a.name = a.opts.Model
	a.history = slices.Clone(a.opts.History)
	a.opts.History = nil
	tp := a.opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	a.trc = tp.Tracer("github.com/membrane-mcp/membrane/calls/agent")
	return a
}

// Model returns the model name sent with requests.
func (a *Agent) Model() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.name
}

// SetModel changes the model used from the next step on.
func (a *Agent) SetModel(name string) {
	a.mu.Lock()
	a.name = name
	a.mu.Unlock()
}

// History returns a copy of the conversation so far, without the system
// prompt.
func (a *Agent) History() []Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.history)
}

// Reset forgets the conversation; the system prompt stays.
func (a *Agent) Reset() {
	a.mu.Lock()
	a.history = nil
	a.mu.Unlock()
}

// Tools returns the tools as the model is told about them, sorted by name.
func (a *Agent) Tools() []Tool {
	if a.tools == nil {
		return nil
	}
	cs := a.tools.List()
	out := make([]Tool, 0, len(cs))
	for _, c := range cs {
		out = append(out, Tool{Name: c.Name, Description: c.Description, Parameters: c.InputSchema})
	}
	slices.SortFunc(out, func(x, y Tool) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func (a *Agent) emit(e Event) {
	if a.opts.OnEvent == nil {
		return
	}
	a.evMu.Lock()
	defer a.evMu.Unlock()
	a.opts.OnEvent(e)
}

// Ask adds prompt to the conversation as a user message and runs the loop
// until the model answers. The returned Turn is never nil; on error it
// holds what was done before the error.
//
// When the turn fails (the model failed, ctx was cancelled, Approve
// failed), the conversation is left as it was before Ask, so the user may
// ask again. When the step limit stops it (ErrMaxSteps), the conversation
// keeps every step, so that a later Ask can continue from there.
func (a *Agent) Ask(ctx context.Context, prompt string) (*Turn, error) {
	a.turnMu.Lock()
	defer a.turnMu.Unlock()

	start := time.Now()
	turn := &Turn{}
	ctx, span := a.trc.Start(ctx, "turn", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "invoke_agent"),
		attribute.String("gen_ai.request.model", a.Model())))
	if sc := span.SpanContext(); sc.IsValid() {
		turn.TraceID = sc.TraceID().String()
	}
	a.mu.Lock()
	saved := len(a.history)
	a.history = append(a.history, Message{Role: RoleUser, Content: prompt})
	a.mu.Unlock()

	err := a.loop(ctx, turn)
	turn.Duration = time.Since(start)
	span.SetAttributes(attribute.Int("membrane.turn.steps", turn.Steps),
		attribute.Int64("gen_ai.usage.input_tokens", turn.Usage.PromptTokens),
		attribute.Int64("gen_ai.usage.output_tokens", turn.Usage.CompletionTokens))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	if err != nil && !errors.Is(err, ErrMaxSteps) {
		a.mu.Lock()
		a.history = a.history[:saved:saved]
		a.mu.Unlock()
	}
	return turn, err
}

func (a *Agent) loop(ctx context.Context, turn *Turn) error {
	for step := 1; ; step++ {
		if a.opts.MaxSteps > 0 && step > a.opts.MaxSteps {
			return fmt.Errorf("%w (%s); raise the step limit or ask the model to continue", ErrMaxSteps, steps(a.opts.MaxSteps))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		turn.Steps = step
		msg, fromText, err := a.step(ctx, step, turn)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.history = append(a.history, msg)
		a.mu.Unlock()
		turn.Answer = msg.Content
		if msg.Reasoning != "" {
			if turn.Reasoning != "" {
				turn.Reasoning += "\n"
			}
			turn.Reasoning += msg.Reasoning
		}
		if len(msg.ToolCalls) == 0 {
			return nil
		}
		recs, err := a.runCalls(ctx, step, msg.ToolCalls, fromText)
		turn.Calls = append(turn.Calls, recs...)
		if err != nil {
			return err
		}
		a.mu.Lock()
		for _, r := range recs {
			a.history = append(a.history, Message{Role: RoleTool, Content: r.Result, ToolCallID: r.ID, ToolName: r.Name})
		}
		a.mu.Unlock()
	}
}

// system is the system prompt of one step: Options.System, then the
// capabilities card.
func (a *Agent) system() string {
	sys := a.opts.System
	if a.opts.Capabilities == nil {
		return sys
	}
	card := a.opts.Capabilities()
	switch {
	case card == "":
		return sys
	case sys == "":
		return card
	}
	return sys + "\n\n" + card
}

// step makes one model call and returns the assistant message, with tool
// calls found in its text when extraction is on.
func (a *Agent) step(ctx context.Context, step int, turn *Turn) (Message, bool, error) {
	tools := a.Tools()
	sys := a.system()
	a.mu.Lock()
	req := &Request{Model: a.name}
	if sys != "" {
		req.Messages = append(req.Messages, Message{Role: RoleSystem, Content: sys})
	}
	req.Messages = append(req.Messages, a.history...)
	a.mu.Unlock()
	req.Tools = tools

	gate := &contentGate{hold: a.opts.ExtractTextCalls && len(tools) > 0, emit: func(s string) {
		a.emit(Event{Kind: EventContent, Step: step, Text: s})
	}}
	onDelta := func(d Delta) {
		if d.Reasoning != "" {
			a.emit(Event{Kind: EventReasoning, Step: step, Text: d.Reasoning})
		}
		if d.Content != "" {
			gate.write(d.Content)
		}
	}

	a.emit(Event{Kind: EventModelStart, Step: step})
	mctx, span := a.trc.Start(ctx, "chat "+req.Model, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		a.chatAttrs(req.Model, step)...))
	t0 := time.Now()
	var first time.Duration
	timed := func(d Delta) {
		if first == 0 && (d.Content != "" || d.Reasoning != "") {
			first = time.Since(t0)
		}
		onDelta(d)
	}
	reply, err := a.model.Complete(mctx, req, timed)
	if err == nil && reply == nil {
		err = errors.New("model returned no reply")
	}
	var usage Usage
	if reply != nil {
		usage = reply.Usage
	}
	dur := time.Since(t0)
	span.SetAttributes(attribute.Int64("gen_ai.usage.input_tokens", usage.PromptTokens),
		attribute.Int64("gen_ai.usage.output_tokens", usage.CompletionTokens))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	turn.Usage = turn.Usage.Add(usage)
	turn.Models = append(turn.Models, ModelRecord{Step: step, Model: req.Model, Usage: usage, Started: t0, FirstToken: first, Duration: dur, Err: err})
	a.emit(Event{Kind: EventModelDone, Step: step, Usage: usage, Duration: dur, Err: err})
	if err != nil {
		if ctx.Err() != nil {
			return Message{}, false, ctx.Err()
		}
		return Message{}, false, err // the model's error says what failed
	}

	msg := reply.Message
	msg.Role = RoleAssistant
	fromText := false
	if gate.hold && len(msg.ToolCalls) == 0 {
		known := map[string]bool{}
		for _, t := range tools {
			known[t.Name] = true
		}
		found, spans := findToolCalls(msg.Content, func(n string) bool { return known[n] })
		if len(found) > 0 {
			msg.ToolCalls = found
			rest := removeSpans(msg.Content, spans)
			gate.finish(rest)
			msg.Content = strings.TrimSpace(rest)
			fromText = true
			a.log.Debug("tool calls found in text", "step", step, "calls", len(found))
		}
	}
	if !fromText {
		gate.finish(msg.Content)
	}
	for i := range msg.ToolCalls {
		if msg.ToolCalls[i].ID == "" {
			msg.ToolCalls[i].ID = "call_" + strings.ToLower(rand.Text()[:12])
		}
	}
	return msg, fromText, nil
}

// runCalls checks, approves and runs the calls of one step, in parallel,
// and returns their records in the order of calls.
func (a *Agent) runCalls(ctx context.Context, step int, tcs []ToolCall, fromText bool) ([]CallRecord, error) {
	recs := make([]CallRecord, len(tcs))
	args := make([]json.RawMessage, len(tcs))
	run := make([]bool, len(tcs))
	known := map[string]bool{}
	var names []string
	if a.tools != nil {
		for _, c := range a.tools.List() {
			known[c.Name] = true
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	for i, tc := range tcs {
		recs[i] = CallRecord{Step: step, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments, FromText: fromText, Started: time.Now()}
		if !known[tc.Name] {
			avail := strings.Join(names, ", ")
			if avail == "" {
				avail = "none"
			}
			recs[i].IsError = true
			recs[i].Result = fmt.Sprintf("error: unknown tool %q; the available tools are: %s", tc.Name, avail)
			continue
		}
		raw, err := NormalizeArguments(tc.Arguments)
		if err != nil {
			recs[i].IsError = true
			recs[i].Result = fmt.Sprintf("error: invalid arguments for %s: %v. Call it again with the arguments as one JSON object that matches its input schema.", tc.Name, err)
			continue
		}
		args[i] = raw
		if a.opts.Approve != nil {
			asked := tc
			asked.Arguments = string(raw) // what will be sent, not what the model wrote
			ok, err := a.opts.Approve(ctx, asked)
			if err != nil {
				return recs[:0], err
			}
			if !ok {
				recs[i].Denied = true
				recs[i].IsError = true
				recs[i].Result = fmt.Sprintf("error: the user did not allow this call to %s. Do not retry it; answer without it or ask the user.", tc.Name)
				continue
			}
		}
		run[i] = true
	}
	for i := range recs {
		if !run[i] {
			a.emit(Event{Kind: EventToolStart, Step: step, Call: &tcs[i]})
			a.emit(Event{Kind: EventToolDone, Step: step, Record: &recs[i]})
		}
	}

	limit := a.opts.MaxParallel
	if limit <= 0 {
		limit = len(tcs)
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range tcs {
		if !run[i] {
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				recs[i].IsError, recs[i].Result = true, "error: cancelled"
				return
			}
			defer func() { <-sem }()
			a.emit(Event{Kind: EventToolStart, Step: step, Call: &tcs[i]})
			t0 := time.Now()
			recs[i].Started = t0
			progress := calls.ProgressFunc(func(_ context.Context, p, total float64, msg string) {
				a.emit(Event{Kind: EventToolProgress, Step: step, Call: &tcs[i], Text: msg, Progress: p, Total: total})
			})
			cctx, span := a.trc.Start(ctx, "tools/call "+tcs[i].Name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
				a.toolAttrs(tcs[i])...))
			creq := &calls.Request{Arguments: args[i], Session: a.sess, Progress: progress}
			if span.SpanContext().IsValid() {
				carrier := propagation.MapCarrier{}
				propagation.TraceContext{}.Inject(cctx, carrier)
				creq.TraceParent, creq.TraceState = carrier["traceparent"], carrier["tracestate"]
			}
			res, err := a.tools.Call(cctx, tcs[i].Name, creq)
			recs[i].Duration = time.Since(t0)
			switch {
			case err != nil:
				span.SetAttributes(attribute.String("error.type", errorType(err)))
				span.SetStatus(codes.Error, err.Error())
			case res != nil && res.IsError:
				span.SetAttributes(attribute.String("error.type", "tool_error"))
				span.SetStatus(codes.Error, "tool_error")
			}
			span.End()
			switch {
			case ctx.Err() != nil:
				// The turn ended (Ctrl-C, its deadline): say that, not
				// what the call made of it.
				recs[i].IsError = true
				recs[i].Result = "error: cancelled"
				if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
					recs[i].Result = "error: cancelled: " + c.Error()
				}
			case err != nil:
				recs[i].IsError = true
				recs[i].Result = fmt.Sprintf("error: the call to %s could not be made: %v", tcs[i].Name, err)
			default:
				recs[i].IsError = res.IsError
				recs[i].Result = a.resultText(res)
			}
			a.emit(Event{Kind: EventToolDone, Step: step, Record: &recs[i]})
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return recs, err
	}
	return recs, nil
}

// resultText renders a tool result for the model.
func (a *Agent) resultText(res *calls.Result) string {
	var b strings.Builder
	if res.IsError {
		b.WriteString("error: ")
	}
	for i, c := range res.Content {
		if i > 0 {
			b.WriteByte('\n')
		}
		switch c.Type {
		case calls.ContentText:
			b.WriteString(c.Text)
		case calls.ContentLink:
			fmt.Fprintf(&b, "[resource %s: %s, %s, %d bytes]", c.Name, c.URI, c.MIMEType, c.Size)
		default:
			fmt.Fprintf(&b, "[%s content: %s, %d bytes]", c.Type, c.MIMEType, len(c.Data))
		}
	}
	if len(res.Content) == 0 && res.Structured != nil {
		if j, err := json.Marshal(res.Structured); err == nil {
			b.Write(j)
		}
	}
	s := b.String()
	if strings.TrimSpace(s) == "" || s == "error: " {
		s += "(no output)"
	}
	if max := a.opts.MaxResultBytes; max > 0 && len(s) > max {
		cut := max
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = fmt.Sprintf("%s\n[output cut: %d of %d bytes shown]", s[:cut], cut, len(s))
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// NormalizeArguments turns the arguments a model wrote into one JSON
// object: empty text becomes {}, and an object encoded once more as a JSON
// string (a habit of some models) is decoded. Anything else that is not a
// JSON object is an error that says what was wrong.
func NormalizeArguments(s string) (json.RawMessage, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid([]byte(s)) {
		var v any
		err := json.Unmarshal([]byte(s), &v)
		return nil, fmt.Errorf("not valid JSON (%v)", err)
	}
	if s[0] == '"' {
		var inner string
		if err := json.Unmarshal([]byte(s), &inner); err == nil {
			inner = strings.TrimSpace(inner)
			if strings.HasPrefix(inner, "{") && json.Valid([]byte(inner)) {
				return json.RawMessage(inner), nil
			}
		}
	}
	if s[0] != '{' {
		return nil, errors.New("a JSON object is needed, not " + jsonKind(s[0]))
	}
	return json.RawMessage(s), nil
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// contentGate passes streamed answer text on, except text that may be a
// tool call written as text: from the first character that could start one,
// it holds the text back until the reply is complete.
type contentGate struct {
	hold    bool
	emit    func(string)
	all     strings.Builder
	emitted int
	held    bool
}

func (g *contentGate) write(s string) {
	g.all.WriteString(s)
	if !g.hold {
		g.emit(s)
		g.emitted = g.all.Len()
		return
	}
	if g.held {
		return
	}
	pending := g.all.String()[g.emitted:]
	i := strings.IndexAny(pending, "{[<`")
	if i < 0 {
		g.emit(pending)
		g.emitted += len(pending)
		return
	}
	if i > 0 {
		g.emit(pending[:i])
		g.emitted += i
	}
	g.held = true
}

// finish emits what is left of the reply once tool calls (if any) are
// removed from it; final is the reply's content without them.
func (g *contentGate) finish(final string) {
	if !g.hold {
		if g.all.Len() == 0 && final != "" {
			g.emit(final) // the model did not stream
		}
		return
	}
	shown := g.all.String()[:g.emitted]
	var rest string
	if strings.HasPrefix(final, shown) {
		rest = final[len(shown):]
	} else if g.emitted == 0 {
		rest = final
	}
	if g.held {
		rest = strings.TrimRight(rest, " \t\r\n")
	}
	if rest != "" {
		g.emit(rest)
	}
}

// steps is "1 step" or "N steps".
func steps(n int) string {
	if n == 1 {
		return "1 step"
	}
	return fmt.Sprintf("%d steps", n)
}

// chatAttrs are the attributes of a model call's span, by the GenAI
// semantic conventions: the provider (required) and, where the model says
// where it is (BaseURL), server.address and server.port.
func (a *Agent) chatAttrs(model string, step int) []attribute.KeyValue {
	prov := a.opts.Provider
	if prov == "" {
		prov = "openai"
	}
	kv := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.provider.name", prov),
		attribute.String("gen_ai.request.model", model),
		attribute.Int("membrane.turn.step", step),
	}
	if b, ok := a.model.(interface{ BaseURL() string }); ok {
		if host, port := calls.ServerAddress(b.BaseURL()); host != "" {
			kv = append(kv, attribute.String("server.address", host))
			if port > 0 {
				kv = append(kv, attribute.Int("server.port", port))
			}
		}
	}
	return kv
}

// toolAttrs are the attributes of a tool call's span, by the MCP semantic
// conventions.
func (a *Agent) toolAttrs(tc ToolCall) []attribute.KeyValue {
	kv := []attribute.KeyValue{
		attribute.String("mcp.method.name", "tools/call"),
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.tool.name", tc.Name),
		attribute.String("gen_ai.tool.call.id", tc.ID),
	}
	if a.opts.ToolTransport != nil {
		if t := a.opts.ToolTransport(tc.Name); t != "" {
			kv = append(kv, attribute.String("network.transport", t))
		}
	}
	return kv
}

// errorType is a failed tool call's error.type: the JSON-RPC error code
// (as the MCP semantic conventions want) when the server answered with
// one, else the Go type of the error.
func errorType(err error) string {
	var we *jsonrpc.Error
	if errors.As(err, &we) && we.Code != 0 {
		return strconv.FormatInt(we.Code, 10)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled"
	}
	return "_OTHER"
}
