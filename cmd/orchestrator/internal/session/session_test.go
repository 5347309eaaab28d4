package session

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/console"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// echoModel answers each question with "you said Q"; a question "wait"
// waits for the turn to end.
var echoModel = agent.ModelFunc(func(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
	q := req.Messages[len(req.Messages)-1].Content
	if q == "wait" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	text := "you said " + q
	onDelta(agent.Delta{Content: text})
	return &agent.Reply{Message: agent.Message{Content: text}}, nil
})

func newSession(t *testing.T, opts Options) (*Session, *mcptest.SyncBuffer, *mcptest.SyncBuffer) {
	t.Helper()
	var out, errw mcptest.SyncBuffer
	r := calls.NewRouter(nil)
	opts.UI = display.New(&out, &errw, &display.Options{Quiet: opts.JSON})
	opts.Agent = agent.New(echoModel, r, &agent.Options{Model: "echo", OnEvent: opts.UI.Event})
	opts.Tools = r
	opts.Stdout, opts.Stderr = &out, &errw
	return New(&opts), &out, &errw
}

// TestOneShot: an answer exits 0 (as JSON with --json); a turn past its
// timeout fails with the timeout's reason and exits 1; one whose context
// ends (a Ctrl-C) exits 130.
func TestOneShot(t *testing.T) {
	t.Parallel()
	s, out, _ := newSession(t, Options{JSON: true})
	if code := s.OneShot(t.Context(), t.Context(), "hi"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var turn TurnJSON
	if err := json.Unmarshal([]byte(out.String()), &turn); err != nil || turn.Answer != "you said hi" || turn.Model != "echo" || turn.ToolCalls == nil {
		t.Errorf("--json output %q: %+v %v", out.String(), turn, err)
	}

	s, _, errw := newSession(t, Options{Timeout: time.Millisecond})
	if code := s.OneShot(t.Context(), t.Context(), "wait"); code != 1 {
		t.Errorf("a turn past its timeout: exit %d, want 1", code)
	}
	if !strings.Contains(errw.String(), "no answer within --timeout 1ms") {
		t.Errorf("the timeout is not the reason: %q", errw.String())
	}

	s, _, _ = newSession(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if code := s.OneShot(t.Context(), ctx, "wait"); code != 130 {
		t.Errorf("a cancelled turn: exit %d, want 130", code)
	}
}

// TestREPLFromAPipe: questions and /commands, one per line, until the end
// of the input; an unknown command is named.
func TestREPLFromAPipe(t *testing.T) {
	s, out, errw := newSession(t, Options{})
	in := console.NewPipe(strings.NewReader("first\n\n/nope\n/clear\nsecond\n"))
	if code := s.REPL(t.Context(), t.Context(), in, false); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out.String() != "you said first\nyou said second\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errw.String())
	}
	if !strings.Contains(errw.String(), "unknown command /nope: try /help") || !strings.Contains(errw.String(), "conversation cleared") {
		t.Errorf("stderr %q", errw.String())
	}
	// /exit ends it before the rest.
	s, out, _ = newSession(t, Options{})
	if code := s.REPL(t.Context(), t.Context(), console.NewPipe(strings.NewReader("/exit\nnever\n")), false); code != 0 || out.String() != "" {
		t.Errorf("/exit: exit %d, stdout %q", code, out.String())
	}
	// Start-up ended by a Ctrl-C before the REPL took over: 130 at once.
	s, _, _ = newSession(t, Options{})
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if code := s.REPL(t.Context(), ended, console.NewPipe(strings.NewReader("never\n")), false); code != 130 {
		t.Errorf("after a Ctrl-C in start-up: exit %d, want 130", code)
	}
}

// TestPhase: a phase that ends is waited for; one that blocks is left at
// the Ctrl-C (its context's end).
func TestPhase(t *testing.T) {
	t.Parallel()
	ran := false
	if !Phase(t.Context(), func() { ran = true }) || !ran {
		t.Error("a phase that ends was not waited for")
	}
	ctx, cancel := context.WithCancel(t.Context())
	block := make(chan struct{})
	defer close(block)
	go cancel()
	if Phase(ctx, func() { <-block }) {
		t.Error("a blocked phase outlived its context")
	}
}

// TestKillSwitch: while a step runs, the first Ctrl-C ends it and the next
// kills the servers; disarmed, it does neither.
func TestKillSwitch(t *testing.T) {
	// A listener of the test's own, so that a SIGINT never reaches the
	// default action (which would end the test binary).
	guard := make(chan os.Signal, 8)
	signal.Notify(guard, os.Interrupt)
	defer signal.Stop(guard)
	sigint := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		<-guard // delivered (to every listener)
	}

	var errw mcptest.SyncBuffer
	k := NewKillSwitch(display.New(&errw, &errw, nil))
	var kills atomic.Int32
	killed := make(chan struct{})
	k.SetKill(func() {
		if kills.Add(1) == 1 {
			close(killed)
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	k.During(cancel)
	sigint()
	<-ctx.Done()
	if kills.Load() != 0 {
		t.Fatal("the first Ctrl-C killed the servers")
	}
	sigint()
	<-killed
	if !strings.Contains(errw.String(), "Ctrl-C again: killing the servers") {
		t.Errorf("no note of the kill: %q", errw.String())
	}
	k.Disarm()

	// Disarmed: nothing happens (the guard alone hears it).
	k2 := NewKillSwitch(display.New(&errw, &errw, nil))
	k2.SetKill(func() { t.Error("a disarmed switch killed") })
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	k2.During(cancel2)
	k2.Disarm()
	sigint()
	if ctx2.Err() != nil {
		t.Error("a disarmed switch ended its step")
	}
}
