package display

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

func TestUIPlain(t *testing.T) {
	var out, errw strings.Builder
	u := New(&out, &errw, nil)
	call := &agent.ToolCall{ID: "1", Name: "sh", Arguments: `{"cmd": "echo hi"}`}
	for _, e := range []agent.Event{
		{Kind: agent.EventModelStart, Step: 1},
		{Kind: agent.EventReasoning, Text: "I should run it."},
		{Kind: agent.EventModelDone},
		{Kind: agent.EventToolStart, Call: call},
		{Kind: agent.EventToolProgress, Call: call, Progress: 1, Total: 2},
		{Kind: agent.EventToolDone, Record: &agent.CallRecord{ID: "1", Name: "sh", Arguments: call.Arguments, Result: "exit code 0\nstdout:\nhi\n", Duration: 1500 * time.Millisecond}},
		{Kind: agent.EventModelStart, Step: 2},
		{Kind: agent.EventContent, Text: "It printed "},
		{Kind: agent.EventContent, Text: "hi."},
		{Kind: agent.EventModelDone},
	} {
		u.Event(e)
	}
	u.EndTurn(&agent.Turn{Steps: 2, Calls: make([]agent.CallRecord, 1), Duration: 2 * time.Second, Usage: agent.Usage{PromptTokens: 7, CompletionTokens: 3}}, nil)
	if out.String() != "It printed hi.\n" {
		t.Errorf("stdout = %q", out.String())
	}
	want := "I should run it.\n" +
		`  ✓ sh {"cmd": "echo hi"} · 1.5s → exit code 0 ↵ stdout: ↵ hi` + "\n" +
		"─ 2 steps · 1 tool call · 2.0s · 7+3 tokens\n"
	if errw.String() != want {
		t.Errorf("stderr =\n%q\nwant\n%q", errw.String(), want)
	}

	errw.Reset()
	u.EndTurn(&agent.Turn{Steps: 3}, fmt.Errorf("%w (3 steps)", agent.ErrMaxSteps))
	if !strings.Contains(errw.String(), "─ 3 steps · 0 tool calls · 0µs · step limit reached") {
		t.Errorf("summary = %q", errw.String())
	}
	// A turn whose first model call failed has no summary: the error says it.
	errw.Reset()
	u.EndTurn(&agent.Turn{Steps: 1}, errors.New("endpoint refused"))
	if errw.String() != "" {
		t.Errorf("summary of a turn that never reached the model = %q", errw.String())
	}
}

func TestUIHiddenReasoningAndJSON(t *testing.T) {
	var out, errw strings.Builder
	u := New(&out, &errw, &Options{HideReasoning: true, Quiet: true})
	u.Event(agent.Event{Kind: agent.EventReasoning, Text: "secret plan"})
	u.Event(agent.Event{Kind: agent.EventContent, Text: "answer"})
	u.EndTurn(nil, nil)
	if out.Len() != 0 || strings.Contains(errw.String(), "secret") {
		t.Errorf("stdout %q, stderr %q", out.String(), errw.String())
	}
}

func TestUISpinnerOnATerminal(t *testing.T) {
	var out, errw mcptest.SyncBuffer
	u := New(&out, &errw, &Options{Color: true, Shared: true})
	call := &agent.ToolCall{ID: "1", Name: "sh", Arguments: `{"cmd":"sleep 1"}`}
	u.Event(agent.Event{Kind: agent.EventToolStart, Call: call})
	u.mu.Lock()
	spin := u.spin
	u.mu.Unlock()
	if spin == nil {
		t.Fatal("no spinner while a tool runs on a terminal")
	}
	until(t, "a spinner frame", func() bool { return strings.Contains(errw.String(), "sh {\"cmd\":\"sleep 1\"}") })
	u.Event(agent.Event{Kind: agent.EventToolProgress, Call: call, Progress: 1, Total: 4})
	until(t, "the progress in the spinner", func() bool { return strings.Contains(errw.String(), "· 25%") })
	u.Event(agent.Event{Kind: agent.EventToolDone, Record: &agent.CallRecord{ID: "1", Name: "sh", Arguments: call.Arguments, IsError: true, Result: "error: exit code 1"}})
	<-spin.ended // the spinner's goroutine is gone
	s := errw.String()
	if !strings.HasSuffix(s, "\r\x1b[K  \x1b[31m✗\x1b[0m \x1b[1msh\x1b[0m {\"cmd\":\"sleep 1\"}\x1b[2m · 0µs\x1b[0m\x1b[2m → error: exit code 1\x1b[0m\n") {
		t.Errorf("the spinner line was not cleared before the tool line: %q", s[max(0, len(s)-200):])
	}
}

func TestPreview(t *testing.T) {
	if got := preview("exit code 0\nstdout:\nhello\n\n", 80); got != "exit code 0 ↵ stdout: ↵ hello" {
		t.Errorf("preview = %q", got)
	}
	if got := shortArgs(`{"cmd": "` + strings.Repeat("x", 100) + `"}`); len([]rune(got)) != 60 || !strings.HasSuffix(got, "…") {
		t.Errorf("shortArgs = %q", got)
	}
	if got := shortArgs("{}"); got != "" {
		t.Errorf("shortArgs({}) = %q", got)
	}
}

func until(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
