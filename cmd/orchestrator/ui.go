package main

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

// ui shows what the agent does: the answer streams to out (stdout), and
// everything else (reasoning, a line per tool call, a spinner, the
// summary) goes to errw (stderr), so that `orchestrator -e Q > file` keeps
// only the answer.
type ui struct {
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

func newUI(out, errw io.Writer, color, shared, hideReasoning, quiet bool) *ui {
	return &ui{out: out, errw: errw, color: color, shared: shared, hideReasoning: hideReasoning, quiet: quiet, running: map[string]time.Time{},
		answer: &termsafe.Writer{W: out}, thought: &termsafe.Writer{W: errw}}
}

const (
	dim   = "\x1b[2m"
	bold  = "\x1b[1m"
	red   = "\x1b[31m"
	green = "\x1b[32m"
	reset = "\x1b[0m"
)

func (u *ui) style(s, code string) string {
	if !u.color {
		return s
	}
	return code + s + reset
}

// event is the agent's OnEvent.
func (u *ui) event(e agent.Event) {
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
			io.WriteString(u.errw, dim)
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
func (u *ui) endLine() {
	u.answer.Flush()
	if u.openLine && u.shared {
		fmt.Fprintln(u.out)
		u.openLine = false
	}
	u.endReasoning()
}

func (u *ui) endReasoning() {
	if u.reasoning {
		u.thought.Flush()
		fmt.Fprintln(u.errw)
		u.reasoning = false
	}
}

func (u *ui) toolLine(r *agent.CallRecord) {
	mark, code := "✓", green
	if r.IsError {
		mark, code = "✗", red
	}
	var b strings.Builder
	b.WriteString("  ")
	b.WriteString(u.style(mark, code))
	b.WriteByte(' ')
	b.WriteString(u.style(termsafe.Line(r.Name), bold))
	if a := shortArgs(r.Arguments); a != "" {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	b.WriteString(u.style(" · "+fmtDur(r.Duration), dim))
	if r.FromText {
		b.WriteString(u.style(" · from text", dim))
	}
	if p := preview(r.Result, 80); p != "" {
		b.WriteString(u.style(" → "+p, dim))
	}
	b.WriteByte('\n')
	io.WriteString(u.errw, b.String())
}

// endTurn finishes the answer's line and prints the summary.
func (u *ui) endTurn(t *agent.Turn, err error) {
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
		line += " · " + u.style("step limit reached", red)
	case err != nil:
		line += " · " + u.style("failed", red) // the error follows on its own line
	}
	fmt.Fprintln(u.errw, u.style(line, dim))
}

// note prints a line of the orchestrator's own on errw, or through the
// line editor while it shows a prompt (which then redraws the prompt).
func (u *ui) note(format string, a ...any) {
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

// pause stops the spinner while something else (an approval prompt) uses
// the terminal.
func (u *ui) pause() {
	u.mu.Lock()
	u.stopSpinner()
	u.endLine()
	u.mu.Unlock()
}

func (u *ui) startSpinner(label string) {
	u.stopSpinner()
	if !u.color {
		return
	}
	u.endLine()
	u.spin = startSpinner(u.errw, &u.mu, label)
}

func (u *ui) stopSpinner() {
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
			fmt.Fprintf(s.w, "\r\x1b[K%s%s %s %s%s", dim, frames[i%len(frames)], s.label, fmtDur(time.Since(start)), reset)
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

func firstLine(s string, n int) string {
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
