package calls

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// EventType says what an Event reports.
type EventType uint8

// The events a Router sends its observers.
const (
	// EventCallStarted: a call passed the router's lookup and is about to
	// run its middleware and handler.
	EventCallStarted EventType = iota + 1
	// EventCallProgress: the handler reported progress.
	EventCallProgress
	// EventCallFinished: the call returned, whatever the outcome. It
	// repeats everything EventCallStarted said, so that an observer that
	// keeps one record per call needs only this one.
	EventCallFinished
	// EventSessionOpened and EventSessionClosed bracket a client session
	// opened with Router.OpenSession.
	EventSessionOpened
	EventSessionClosed
	// EventToolsChanged: the set of calls changed; Change says how.
	EventToolsChanged
)

// String returns the event's stable lower_snake name, such as
// "call_finished".
func (t EventType) String() string {
	switch t {
	case EventCallStarted:
		return "call_started"
	case EventCallProgress:
		return "call_progress"
	case EventCallFinished:
		return "call_finished"
	case EventSessionOpened:
		return "session_opened"
	case EventSessionClosed:
		return "session_closed"
	case EventToolsChanged:
		return "tools_changed"
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}

// Outcome is how a call ended.
type Outcome uint8

// The outcomes of a call. The zero value means "not set": a Result whose
// Outcome is zero is graded from IsError and from how the call ended.
const (
	// OutcomeOK: the call succeeded.
	OutcomeOK Outcome = iota + 1
	// OutcomeToolError: the call ran and failed in a way the model sees
	// (a Result with IsError).
	OutcomeToolError
	// OutcomeError: the call could not be made (a Go error, or no result).
	OutcomeError
	// OutcomeBusy: the call was turned away because too many were running
	// or waiting.
	OutcomeBusy
	// OutcomeCancelled: the caller cancelled the call (the client, the end
	// of its session, or the server shutting down).
	OutcomeCancelled
	// OutcomeTimeout: the call ran out of time.
	OutcomeTimeout
)

// Outcomes lists every outcome, for observers that set up one series per
// outcome in advance.
func Outcomes() []Outcome {
	return []Outcome{OutcomeOK, OutcomeToolError, OutcomeError, OutcomeBusy, OutcomeCancelled, OutcomeTimeout}
}

// String returns "ok", "tool_error", "error", "busy", "cancelled" or
// "timeout".
func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeToolError:
		return "tool_error"
	case OutcomeError:
		return "error"
	case OutcomeBusy:
		return "busy"
	case OutcomeCancelled:
		return "cancelled"
	case OutcomeTimeout:
		return "timeout"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// MarshalText makes an Outcome a JSON string.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Failed reports whether o is anything but OutcomeOK.
func (o Outcome) Failed() bool { return o != OutcomeOK }

// Info is what a handler wants observed about one call beyond its result:
// a handler sets Result.Info, and the router hands it to observers in the
// EventCallFinished event. It never reaches the client. Each part is nil
// when it does not apply.
type Info struct {
	Run   *RunInfo
	Model *ModelInfo
}

// RunInfo describes a sandboxed process run.
type RunInfo struct {
	// ExitCode is the process's exit status (128+n for a signal n, as a
	// shell reports it).
	ExitCode int
	// Signal names the signal that ended the process ("SIGKILL"), or "".
	Signal string
	// Isolation names how the process was isolated ("bwrap", "rlimit").
	Isolation string
	// StdoutBytes and StderrBytes count all the output, including what was
	// cut off.
	StdoutBytes, StderrBytes int64
	// Start is how long the process took to start (from the request to
	// the process running). Zero means not measured.
	Start time.Duration
	// Killed says why the sandbox killed the process: "timeout",
	// "memory", "quota" (the workspace's), "cancel", or "" when it was
	// not killed (or was killed by a signal the sandbox did not send).
	// The process and output limits kill nothing: a fork past the
	// process limit fails, and output past the cap is cut; Limits says
	// when a call ran into them.
	Killed string
	// Limits names the limits the call ran into without being killed for
	// them, sorted: LimitOutput, LimitProcesses. Nil when none.
	Limits []string
	// Began is when the run was requested, and Wall how long it took from
	// then until the process had exited (Start included). Zero means not
	// measured. Tracing draws the run's span from them.
	Began time.Time
	Wall  time.Duration
}

// The limits a sandbox call may run into without being killed
// (RunInfo.Limits).
const (
	// LimitOutput: stdout or stderr passed the output cap, and what came
	// after it was cut from the result.
	LimitOutput = "output"
	// LimitProcesses: the call ran as many processes as it may, and the
	// kernel refused a fork or clone (counted from the call's cgroup,
	// pids.events; without a cgroup the kernel keeps no count).
	LimitProcesses = "processes"
)

// ModelInfo describes a model call.
type ModelInfo struct {
	// Model and Host name the model and the server that ran it.
	Model, Host string
	// TokensIn and TokensOut count the prompt and the generated tokens,
	// as the model server reported them.
	TokensIn, TokensOut int
	// FirstToken is the time from sending the request to the first token.
	// Zero means no token came, or not measured.
	FirstToken time.Duration
	// Generation is the time the server spent generating TokensOut; with
	// it, TokensOut per second. Zero means not reported.
	Generation time.Duration
	// QueueWait is how long the call waited before its request went out:
	// for a free slot on the model, and for its turn on the host.
	QueueWait time.Duration
	// Began is when the request was sent to the host, and Took how long
	// until its answer ended. Zero means not measured. Tracing draws the
	// request's span from them.
	Began time.Time
	Took  time.Duration
}

// Event is one thing that happened in a Router. Observers receive Events by
// value; the slices and pointers in one (Arguments, Info, Change) are shared
// with the call and must be treated as read-only.
type Event struct {
	Type EventType
	Time time.Time

	// ID identifies one call within the router: its started, progress and
	// finished events share it. Zero for other events.
	ID uint64
	// Call, Kind and Group describe the call (empty for session events).
	Call  string
	Kind  Kind
	Group string
	// Session is the session's ID; Client is the client's name when the
	// transport knows it.
	Session string
	Client  string
	// Arguments is the raw JSON the client sent (call events only). It is
	// not scrubbed: an observer that records it must scrub it itself.
	Arguments json.RawMessage
	// TraceParent and TraceState are the request's W3C trace context, as
	// the client sent it (call events only; "" when none).
	TraceParent, TraceState string
	// TraceID is the trace the call belongs to (call events only): the
	// traceparent's, or for a call that came without one, the trace ID
	// the router made for it (RouterOptions.NewTraces); "" when neither.
	TraceID string
	// Protocol, TokenName and Sessionless are what the transport knew of
	// the client (Session.Peer): its MCP protocol version, the name of
	// the scoped token it presented (never the token), and whether its
	// session lasts one request (its Session ID then names nothing the
	// client knows).
	Protocol, TokenName string
	Sessionless         bool

	// Progress, Total and Message are set on EventCallProgress.
	Progress, Total float64
	Message         string

	// Outcome, Reason, Duration, ResultBytes and Info are set on
	// EventCallFinished. Reason is set for every outcome but OutcomeOK:
	// the first line of the error text, cut to a few hundred bytes and
	// passed through RouterOptions.Redact.
	Outcome     Outcome
	Reason      string
	Duration    time.Duration
	ResultBytes int
	Info        *Info

	// Change is set on EventToolsChanged.
	Change *Change

	// memo holds what observers computed from the event, for the others
	// (see Memo); nil when one observer at most receives it.
	memo *memo
}

// Memo returns what compute makes of the event, computed once for every
// observer that receives it and asks with the same key: the audit ledger
// and the trace store scrub a call's arguments once between them. key
// must be comparable and name both the computation and everything it
// depends on beyond the event (the scrubber, the size limits); a
// pointer, or a struct of one pointer, costs no allocation. The result is
// shared: treat it as read-only. compute runs on the first caller's
// goroutine, while the others asking for the same event wait; it must not
// call Memo on the same event. An event that only one observer receives,
// or that was not made by a Router, computes on every call. (compute takes
// no arguments so that the event it reads can stay on its caller's
// stack.)
func (e *Event) Memo(key any, compute func() any) any {
	if e.memo == nil {
		return compute()
	}
	return e.memo.get(key, compute)
}

// memoSlots bounds the results one event keeps: the ledger's and store's
// recorded form, and one more (the Lens's preview, say). A further key
// computes on every call.
const memoSlots = 2

// memo is the shared results of one event.
type memo struct {
	mu   sync.Mutex
	n    int
	keys [memoSlots]any
	vals [memoSlots]any
}

func (m *memo) get(key any, compute func() any) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < m.n; i++ {
		if m.keys[i] == key {
			return m.vals[i]
		}
	}
	v := compute() // a panic leaves the slot empty, for the next caller
	if m.n < memoSlots {
		m.keys[m.n], m.vals[m.n] = key, v
		m.n++
	}
	return v
}

// TraceID returns the trace ID of a W3C traceparent ("00-<trace>-<span>-<flags>"),
// or "" when tp is not a valid one.
func TraceID(tp string) string {
	if !ValidTraceParent(tp) {
		return ""
	}
	return tp[3:35]
}

// Trace returns the trace ID of the call: TraceID, or for an event made
// without it (by hand, not by a router), its traceparent's.
func (e *Event) Trace() string {
	if e.TraceID != "" {
		return e.TraceID
	}
	return TraceID(e.TraceParent)
}

// NewTraceID returns a random W3C trace ID (32 lower-case hex digits, not
// all zeros).
func NewTraceID() string {
	var b [16]byte
	for {
		_, _ = rand.Read(b[:])
		if b != [16]byte{} {
			return hex.EncodeToString(b[:])
		}
	}
}

// ValidTraceParent reports whether tp is a W3C traceparent of version 00
// (or a later version's first 55 bytes, followed by "-"), with a trace ID
// and a parent ID that are not all zeros.
func ValidTraceParent(tp string) bool {
	if len(tp) < 55 || (len(tp) > 55 && (tp[:2] == "00" || tp[55] != '-')) || len(tp) > 512 {
		return false
	}
	if tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || tp[:2] == "ff" {
		return false
	}
	for i := 0; i < 55; i++ {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		c := tp[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return tp[3:35] != "00000000000000000000000000000000" && tp[36:52] != "0000000000000000"
}

// ArgsDigest returns the hex SHA-256 of the call's arguments, or "" when
// there are none. It is computed on each use, by the observer that wants
// it, so that hashing stays off the call's path.
func (e *Event) ArgsDigest() string {
	if len(e.Arguments) == 0 {
		return ""
	}
	sum := sha256.Sum256(e.Arguments)
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], sum[:])
	return string(buf[:])
}

// An Observer receives a Router's events. Each observer has its own bounded
// queue and goroutine: Observe runs on that goroutine, one event at a time,
// in the order the events happened. An observer that falls behind loses
// events (the router counts them, see Router.ObserverStats) and never slows
// a call; one that panics loses that event and keeps the rest.
type Observer interface {
	Observe(Event)
}

// An EventFilter is an Observer that wants only some events. The router asks
// once, when the observer is added, and never queues it an event of another
// type: an observer that keeps one record per call (a ledger, a store)
// saves the router a queued event and a wake-up per call.
type EventFilter interface {
	Observer
	Wants(EventType) bool
}

// A BatchObserver is an Observer told each time it has been given a batch
// of events: the router hands events on in batches (the events of a few
// milliseconds, or up to 1,024 in a burst of calls), so an observer that writes can write
// a batch at once, with one system call, instead of one per event.
// EndBatch runs on the observer's goroutine, after the batch's last
// Observe.
type BatchObserver interface {
	Observer
	EndBatch()
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// resultBytes is the size of what a result carries to the client, not
// counting its structured form.
func resultBytes(r *Result) int {
	if r == nil {
		return 0
	}
	n := 0
	for i := range r.Content {
		n += len(r.Content[i].Text) + len(r.Content[i].Data)
	}
	return n
}
