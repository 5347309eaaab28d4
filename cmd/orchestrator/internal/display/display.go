// Package display shows what the orchestrator's agent does on a terminal
// or in a pipe: the answer streamed to stdout, and reasoning, a line per
// tool call, a spinner and a turn's summary on stderr. Everything a model
// or a server wrote is made safe for the terminal (termsafe) on the way.
package display

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
)

// UI shows what the agent does: the answer streams to out (stdout), and
// everything else (reasoning, a line per tool call, a spinner, the
// summary) goes to errw (stderr), so that `orchestrator -e Q > file` keeps
// only the answer.
type UI struct {
	out, errw io.Writer
	// color: ANSI styles and a spinner on errw (a terminal, NO_COLOR
	// unset). shared: out and errw are the same terminal, so a partial
	// answer line must be ended before writing to errw.
	color, shared bool
	hideReasoning bool
	quiet         bool // --json: no answer text on out

	mu          sync.Mutex
	openLine    bool // out has a partial line
	reasoning   bool // errw is in the middle of reasoning text
	wroteAnswer bool // answer text was written this turn
	lastNL      bool // the answer so far ends in a newline
	running     map[string]time.Time
	spin        *spinner
	// answer and thought make the model's streamed text safe for a
	// terminal, holding a rune cut between two chunks.
	answer, thought *termsafe.Writer
	// atPrompt, when set, returns the line editor's writer while it shows
	// a prompt, else nil.
	atPrompt func() io.Writer
}

// Options configures New. A nil *Options, and each zero field, is plain
// output: no styles, no spinner, reasoning and answer shown.
type Options struct {
	// Color turns on ANSI styles and a spinner on errw (a terminal,
	// NO_COLOR unset).
	Color bool
	// Shared says out and errw are the same terminal, so that a partial
	// answer line is ended before anything is written to errw.
	Shared bool
	// HideReasoning drops the model's reasoning text.
	HideReasoning bool
	// Quiet writes no answer text on out (the caller prints JSON).
	Quiet bool
}

// New returns a UI writing the answer to out and everything else to errw.
func New(out, errw io.Writer, opts *Options) *UI {
	var o Options
	if opts != nil {
		o = *opts
	}
	return &UI{out: out, errw: errw, color: o.Color, shared: o.Shared, hideReasoning: o.HideReasoning, quiet: o.Quiet, running: map[string]time.Time{},
		answer: &termsafe.Writer{W: out}, thought: &termsafe.Writer{W: errw}}
}

// SetPrompt makes Note write through the line editor while it shows a
// prompt: fn returns the editor's writer then, else nil.
func (u *UI) SetPrompt(fn func() io.Writer) {
	u.mu.Lock()
	u.atPrompt = fn
	u.mu.Unlock()
}

// The ANSI styles Style takes.
const (
	Dim   = "\x1b[2m"
	Bold  = "\x1b[1m"
	Red   = "\x1b[31m"
	Green = "\x1b[32m"
	reset = "\x1b[0m"
)

// Style wraps s in the ANSI style code, when the UI has colour.
func (u *UI) Style(s, code string) string {
	if !u.color {
		return s
	}
	return code + s + reset
}

// Event shows one event of a turn; it is the agent's OnEvent.
func (u *UI) Event(e agent.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch e.Kind {
	case agent.EventModelStart:
		u.startSpinner("thinking")
	case agent.EventReasoning:
		if u.hideReasoning {
			return
		}
		u.stopSpinner()
		if u.shared && u.openLine {
			fmt.Fprintln(u.out)
			u.openLine = false
		}
		u.reasoning = true
		if u.color {
			io.WriteString(u.errw, Dim)
		}
		io.WriteString(u.thought, e.Text)
		if u.color {
			io.WriteString(u.errw, reset)
		}
	case agent.EventContent:
		u.stopSpinner()
		u.endReasoning()
		if u.quiet {
			return
		}
		io.WriteString(u.answer, e.Text)
		u.wroteAnswer = true
		u.openLine = !strings.HasSuffix(e.Text, "\n")
		u.lastNL = !u.openLine
	case agent.EventModelDone:
		u.stopSpinner()
		u.endReasoning()
	case agent.EventToolStart:
		u.endLine()
		u.running[e.Call.ID] = time.Now()
		u.startSpinner(toolLabel(e.Call.Name, e.Call.Arguments))
	case agent.EventToolProgress:
		if len(u.running) == 1 && u.spin != nil {
			label := toolLabel(e.Call.Name, e.Call.Arguments)
			switch {
			case e.Total > 0:
				label += fmt.Sprintf(" · %.0f%%", 100*e.Progress/e.Total)
			case e.Text != "":
				label += " · " + cut(termsafe.Line(e.Text), 40)
			}
			u.spin.setLabel(label)
		}
	case agent.EventToolDone:
		delete(u.running, e.Record.ID)
		u.stopSpinner()
		u.endLine()
		u.toolLine(e.Record)
		if len(u.running) > 0 {
			u.startSpinner(fmt.Sprintf("%d tool calls running", len(u.running)))
		}
	}
}

// endLine ends a partial answer line before something else is written on a
// shared terminal.
func (u *UI) endLine() {
	u.answer.Flush()
	if u.openLine && u.shared {
		fmt.Fprintln(u.out)
		u.openLine = false
	}
	u.endReasoning()
}

func (u *UI) endReasoning() {
	if u.reasoning {
		u.thought.Flush()
		fmt.Fprintln(u.errw)
		u.reasoning = false
	}
}

func (u *UI) toolLine(r *agent.CallRecord) {
	mark, code := "✓", Green
	if r.IsError {
		mark, code = "✗", Red
	}
	var b strings.Builder
	b.WriteString("  ")
	b.WriteString(u.Style(mark, code))
	b.WriteByte(' ')
	b.WriteString(u.Style(termsafe.Line(r.Name), Bold))
	if a := shortArgs(r.Arguments); a != "" {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	b.WriteString(u.Style(" · "+fmtDur(r.Duration), Dim))
	if r.FromText {
		b.WriteString(u.Style(" · from text", Dim))
	}
	if p := preview(r.Result, 80); p != "" {
		b.WriteString(u.Style(" → "+p, Dim))
	}
	b.WriteByte('\n')
	io.WriteString(u.errw, b.String())
}

// EndTurn finishes the answer's line and prints the summary.
func (u *UI) EndTurn(t *agent.Turn, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stopSpinner()
	u.endReasoning()
	u.answer.Flush()
	if !u.quiet && u.wroteAnswer && !u.lastNL {
		fmt.Fprintln(u.out)
	}
	u.openLine, u.wroteAnswer, u.lastNL = false, false, false
	if t == nil {
		return
	}
	if err != nil && len(t.Calls) == 0 && t.Usage.PromptTokens+t.Usage.CompletionTokens == 0 && !errors.Is(err, context.Canceled) && !errors.Is(err, agent.ErrMaxSteps) {
		return // no model call went through: the error, on its own line, says it all
	}
	parts := []string{plural(t.Steps, "step"), plural(len(t.Calls), "tool call"), fmtDur(t.Duration)}
	if t.Usage.PromptTokens+t.Usage.CompletionTokens > 0 {
		parts = append(parts, fmt.Sprintf("%d+%d tokens", t.Usage.PromptTokens, t.Usage.CompletionTokens))
	}
	line := "─ " + strings.Join(parts, " · ")
	switch {
	case errors.Is(err, context.Canceled):
		line += " · cancelled"
	case errors.Is(err, agent.ErrMaxSteps):
		line += " · " + u.Style("step limit reached", Red)
	case err != nil:
		line += " · " + u.Style("failed", Red) // the error follows on its own line
	}
	fmt.Fprintln(u.errw, u.Style(line, Dim))
}

// Note prints a line of the orchestrator's own on errw, or through the
// line editor while it shows a prompt (which then redraws the prompt).
func (u *UI) Note(format string, a ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stopSpinner()
	u.endLine()
	w := u.errw
	if u.atPrompt != nil {
		if pw := u.atPrompt(); pw != nil {
			w = pw
		}
	}
	fmt.Fprintln(w, fmt.Sprintf(format, a...))
}

// Hold stops the spinner, ends a partial line and keeps every other
// writer of the UI off the terminal until release is called: for an
// approval prompt that has the terminal to itself.
func (u *UI) Hold() (release func()) {
	u.mu.Lock()
	u.stopSpinner()
	u.endLine()
	return u.mu.Unlock
}

func (u *UI) startSpinner(label string) {
	u.stopSpinner()
	if !u.color {
		return
	}
	u.endLine()
	u.spin = startSpinner(u.errw, &u.mu, label)
}

func (u *UI) stopSpinner() {
	if u.spin != nil {
		u.spin.stop()
		u.spin = nil
	}
}

// spinner redraws one line on a terminal until stopped. It takes the ui's
// lock for each frame; stop is called with the lock held.
type spinner struct {
	w     io.Writer
	mu    *sync.Mutex
	done  chan struct{}
	ended chan struct{}
	label string // guarded by mu
}

// setLabel changes the text shown; the caller holds the lock.
func (s *spinner) setLabel(l string) { s.label = l }

func startSpinner(w io.Writer, mu *sync.Mutex, label string) *spinner {
	s := &spinner{w: w, mu: mu, done: make(chan struct{}), ended: make(chan struct{}), label: label}
	start := time.Now()
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	go func() {
		defer close(s.ended)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			if !s.mu.TryLock() {
				continue // a writer holds the terminal; skip this frame
			}
			select {
			case <-s.done:
				s.mu.Unlock()
				return
			default:
			}
			fmt.Fprintf(s.w, "\r\x1b[K%s%s %s %s%s", Dim, frames[i%len(frames)], s.label, fmtDur(time.Since(start)), reset)
			s.mu.Unlock()
		}
	}()
	return s
}

// stop ends the spinner and clears its line. The caller holds the lock,
// so the goroutine cannot be drawing.
func (s *spinner) stop() {
	close(s.done)
	fmt.Fprint(s.w, "\r\x1b[K")
}

func toolLabel(name, args string) string {
	name = termsafe.Line(name)
	if a := shortArgs(args); a != "" {
		return name + " " + a
	}
	return name
}

// shortArgs shows tool arguments on one line, cut to a readable length and
// made safe for a terminal. (The approval prompt shows them in full.)
func shortArgs(args string) string {
	s := strings.Join(strings.Fields(termsafe.Line(args)), " ")
	if s == "{}" {
		return ""
	}
	return cut(s, 60)
}

// preview shows a multi-line result on one line, made safe for a terminal.
func preview(s string, n int) string {
	s = termsafe.String(s)
	var parts []string
	for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return cut(strings.Join(parts, " ↵ "), n)
}

// FirstLine is the first line of s (with " …" when there are more), cut
// to n runes.
func FirstLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return cut(s, n)
}

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Media writes lines of the orchestrator's own, then an inline image
// drawing (escapes made by termimage from base64 only), on errw.
func (u *UI) Media(lines []string, draw string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stopSpinner()
	u.endLine()
	for _, l := range lines {
		fmt.Fprintln(u.errw, u.Style(l, Dim))
	}
	if draw != "" {
		io.WriteString(u.errw, draw)
	}
}
