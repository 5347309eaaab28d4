package calls

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ContentType says what a Content holds.
type ContentType string

// The content types a Result may carry.
const (
	ContentText  ContentType = "text"
	ContentImage ContentType = "image"
	// ContentLink points at a resource the client may read (a file in
	// the workspace too large to carry inline, say).
	ContentLink ContentType = "resource_link"
)

// Content is one piece of a Result.
type Content struct {
	Type ContentType
	// Text is set for ContentText. It is valid UTF-8.
	Text string
	// Data and MIMEType are set for ContentImage. MIMEType may be set
	// for ContentLink.
	Data     []byte
	MIMEType string
	// URI, Name and Size are set for ContentLink: where the resource is,
	// a name to show for it, and its size in bytes (-1 when unknown).
	URI  string
	Name string
	Size int64
}

// Result is what a call answers.
type Result struct {
	// Content is shown to the model, in order.
	Content []Content
	// Structured is an optional machine-readable form of the result; it
	// must marshal to a JSON object.
	Structured any
	// IsError marks a tool failure the model should see and may recover
	// from.
	IsError bool
	// Outcome, when set, says how the call ended more precisely than
	// IsError (OutcomeBusy, OutcomeTimeout, OutcomeCancelled). Zero means
	// OutcomeToolError when IsError is set, else OutcomeOK. Observers see
	// it; the client does not.
	Outcome Outcome
	// Info, when set, carries what observers should know about the call
	// (a process's exit code, a model's token counts). The client never
	// sees it.
	Info *Info
	// Reason classifies a failure for observers, metrics and clients that
	// retry. Empty means none given.
	Reason Reason
}

// Reason says why a call failed, in a form a program can count and act
// on. The text of the result says the same to a model.
type Reason string

// The reasons the router's middleware gives. Handlers may add their own.
const (
	// ReasonBusy: no slot was free and the queue was full, or the call
	// waited in the queue until the queue timeout. Retrying later may work.
	ReasonBusy Reason = "busy"
	// ReasonTimeout: the call ran past its deadline and was stopped.
	ReasonTimeout Reason = "timeout"
	// ReasonPanic: the handler panicked; the server is still running.
	ReasonPanic Reason = "internal"
)

// Text returns a successful result holding s.
func Text(s string) *Result {
	return &Result{Content: []Content{{Type: ContentText, Text: ValidUTF8(s)}}}
}

// Errorf returns a tool-error result whose text is the formatted message.
func Errorf(format string, args ...any) *Result {
	r := Text(fmt.Sprintf(format, args...))
	r.IsError = true
	return r
}

// TextOf joins the text contents of r, one per line. It is meant for logs,
// tests and clients that only show text.
func (r *Result) TextOf() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	for i, c := range r.Content {
		if c.Type != ContentText {
			continue
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(c.Text)
	}
	return b.String()
}

// ValidUTF8 returns s with each invalid byte sequence replaced by U+FFFD, so
// that binary output can travel in JSON.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
