// Package calls is membrane's domain: a call is something a model can invoke
// (a sandboxed tool or a local model), with a name, a description, a JSON
// input schema, a kind and a handler.
//
// A [Router] holds the live set of calls, safe for concurrent use, tells
// subscribers when the set changes, and runs every invocation through the
// same middleware: a deadline, a per-call concurrency limit with a queue
// that is fair across sessions, structured logging and panic recovery.
//
// The package knows nothing about MCP, Ollama or processes. Adapters (mcp,
// ollama, sandbox) turn their worlds into calls and back.
//
// Two kinds of failure are kept apart. A [Result] with IsError set is a tool
// failure: data the model sees and can act on (a non-zero exit, a timeout, an
// unknown model). A Go error means the call could not be made at all and
// becomes a protocol error.
package calls

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Kind says what a call is backed by.
type Kind uint8

const (
	// KindTool is a call that runs code, such as the sandboxed sh.
	KindTool Kind = iota + 1
	// KindModel is a call answered by a language or embedding model.
	KindModel
)

// String returns "tool" or "model".
func (k Kind) String() string {
	switch k {
	case KindTool:
		return "tool"
	case KindModel:
		return "model"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// A Handler answers a call. It returns a Result, marked IsError for failures
// the model should see, or a Go error when the call could not be made.
type Handler interface {
	Handle(ctx context.Context, req *Request) (*Result, error)
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, req *Request) (*Result, error)

// Handle calls f(ctx, req).
func (f HandlerFunc) Handle(ctx context.Context, req *Request) (*Result, error) {
	return f(ctx, req)
}

// Middleware wraps a Handler. The router applies its middleware to every call.
type Middleware func(Handler) Handler

// Call describes one invocable thing.
type Call struct {
	// Name is unique in a router and matches NamePattern, so that it is a
	// valid tool name for both MCP and OpenAI-style function calling.
	Name string
	// Title is an optional human-readable name.
	Title string
	// Description tells a model what the call does and when to use it.
	Description string
	// InputSchema is a JSON Schema whose top-level type is "object".
	InputSchema json.RawMessage
	// OutputSchema, when set, is a JSON Schema whose top-level type is
	// "object", which every successful result's Structured content
	// matches. Clients read it as the tool's outputSchema.
	OutputSchema json.RawMessage
	// Kind says whether a tool or a model answers the call.
	Kind Kind
	// Group names the component that owns the call (such as "sandbox" or
	// "ollama"); Router.Sync replaces a whole group at once. Empty is a
	// group of its own.
	Group string
	// Timeout is the longest one invocation may run. Zero means the router's
	// default.
	Timeout time.Duration
	// Concurrency is how many invocations may run at once; more wait in a
	// bounded queue that is fair across sessions, and are answered with a
	// busy tool error (ReasonBusy) when it is full or they waited too long
	// (see RouterOptions). Zero means the router's default; negative means
	// no limit.
	Concurrency int
	// ReadOnly and Destructive are hints passed on to clients as tool
	// annotations.
	ReadOnly, Destructive bool
	// Handler answers the call.
	Handler Handler
}

// NamePattern is what every call name must match: the intersection of what
// MCP and OpenAI-compatible APIs accept as a tool name.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ErrInvalidCall is wrapped by the error Validate returns.
var ErrInvalidCall = errors.New("invalid call")

// Validate reports whether c can be registered: a valid name, an object
// schema and a handler.
func (c *Call) Validate() error {
	if !NamePattern.MatchString(c.Name) {
		return fmt.Errorf("%w: name %q must match %s", ErrInvalidCall, c.Name, NamePattern)
	}
	if c.Handler == nil {
		return fmt.Errorf("%w: %s has no handler", ErrInvalidCall, c.Name)
	}
	if c.Kind != KindTool && c.Kind != KindModel {
		return fmt.Errorf("%w: %s has kind %v", ErrInvalidCall, c.Name, c.Kind)
	}
	var schema struct {
		Type any `json:"type"`
	}
	if err := json.Unmarshal(c.InputSchema, &schema); err != nil {
		return fmt.Errorf("%w: %s input schema: %v", ErrInvalidCall, c.Name, err)
	}
	if schema.Type != "object" {
		return fmt.Errorf("%w: %s input schema must have \"type\": \"object\"", ErrInvalidCall, c.Name)
	}
	if len(c.OutputSchema) > 0 {
		schema.Type = nil
		if err := json.Unmarshal(c.OutputSchema, &schema); err != nil {
			return fmt.Errorf("%w: %s output schema: %v", ErrInvalidCall, c.Name, err)
		}
		if schema.Type != "object" {
			return fmt.Errorf("%w: %s output schema must have \"type\": \"object\"", ErrInvalidCall, c.Name)
		}
	}
	return nil
}

// Request is one invocation of a call.
type Request struct {
	// Call is the call being invoked, as it was registered.
	Call *Call
	// Arguments is the raw JSON object the client sent. It may be empty.
	Arguments json.RawMessage
	// Session is the client session the request came from. The router sets
	// a private session when the caller leaves it nil.
	Session *Session
	// Progress reports progress to the client. Never nil once the router
	// has it: a client that asked for no progress gets a no-op.
	Progress Progress
	// Logger sends log messages to the client (and nowhere else). Never nil
	// once the router has it.
	Logger *slog.Logger
	// TraceParent and TraceState are the W3C trace context the client sent
	// with the call (MCP carries them in the request's _meta), or "". A
	// client adapter sends them on; the router hands them to observers.
	TraceParent, TraceState string

	// traceID is the trace ID the router made for a call that came
	// without a traceparent (RouterOptions.NewTraces).
	traceID string

	// progress is the router's wrapper of Progress while observers want
	// progress events, kept here so that it costs the call no allocation.
	progress observedProgress
}

// Progress reports how far a running call has come. Implementations are safe
// for concurrent use and never block for long.
type Progress interface {
	Report(ctx context.Context, progress, total float64, message string)
}

// ProgressFunc adapts a function to the Progress interface.
type ProgressFunc func(ctx context.Context, progress, total float64, message string)

// Report calls f.
func (f ProgressFunc) Report(ctx context.Context, progress, total float64, message string) {
	f(ctx, progress, total, message)
}

// NoProgress discards progress reports.
var NoProgress Progress = ProgressFunc(func(context.Context, float64, float64, string) {})
