// Package session runs the orchestrator's turns, one question (-e) or a
// REPL of questions and /commands, shows them through display and keeps
// them through turns. Its KillSwitch is the run's one Ctrl-C listener: the
// first Ctrl-C ends the phase that is running, the next kills the servers.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/console"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/turns"
	"github.com/membrane-mcp/membrane/mcp"
)

// Index says who a local tool name is (mcp.Fleet implements it).
type Index interface {
	Tool(local string) (mcp.ToolInfo, bool)
}

// Options configures New. Agent, Model, Tools, UI, Stdout and Stderr are
// needed; every other zero field is a safe default.
type Options struct {
	Agent *agent.Agent
	// Model is the endpoint /model lists and checks names against.
	Model *openaicompat.Client
	// Tools are the tools the agent is offered (for the banner's count).
	Tools interface{ Len() int }
	// Index says who a tool is, for /tools. Nil: local names only.
	Index Index
	// Kill is the run's kill switch: a one-shot turn ends by its step,
	// and the REPL disarms it while it handles Ctrl-C itself. Nil: none.
	Kill   *KillSwitch
	UI     *display.UI
	Stdout io.Writer
	Stderr io.Writer
	// Turns keeps the turns; nil keeps none.
	Turns *turns.Recorder
	// Timeout bounds one turn; zero means none.
	Timeout time.Duration
	// JSON prints one JSON object per turn on Stdout.
	JSON bool
	// Advise adds to a turn's error what the user should do (the flags
	// that fix it). Nil leaves errors as they are.
	Advise func(error) error
}

// Session runs turns and shows them.
type Session struct {
	ag     *agent.Agent
	model  *openaicompat.Client
	tools  interface{ Len() int }
	index  Index
	kill   *KillSwitch
	ui     *display.UI
	stdout io.Writer
	stderr io.Writer
	turns  *turns.Recorder
	opts   Options
}

// New returns a session of opts.
func New(opts *Options) *Session {
	o := *opts
	if o.Kill == nil {
		o.Kill = &KillSwitch{}
	}
	if o.Advise == nil {
		o.Advise = func(err error) error { return err }
	}
	return &Session{ag: o.Agent, model: o.Model, tools: o.Tools, index: o.Index, kill: o.Kill, ui: o.UI,
		stdout: o.Stdout, stderr: o.Stderr, turns: o.Turns, opts: o}
}

// Commands are the REPL's /commands, for Tab to complete.
var Commands = []string{"/tools", "/model", "/history", "/clear", "/help", "/exit"}

func (s *Session) ask(ctx context.Context, q string) (*agent.Turn, error) {
	if s.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, s.opts.Timeout, fmt.Errorf("no answer within --timeout %s", s.opts.Timeout))
		defer cancel()
	}
	started := time.Now()
	turn, err := s.ag.Ask(ctx, q)
	s.turns.Record(context.WithoutCancel(ctx), started, q, s.ag.Model(), turn, err)
	err = s.opts.Advise(err)
	if err != nil && ctx.Err() != nil && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		err = context.Cause(ctx)
	}
	s.ui.EndTurn(turn, err)
	if s.opts.JSON {
		s.printJSON(q, turn, err)
	}
	return turn, err
}

// OneShot answers q and returns the exit code: 0 answered, 1 failed, 130
// interrupted. ctx is start-up's: the first Ctrl-C ends it (and so
// the turn), and the kill switch kills the servers at the next.
func (s *Session) OneShot(root, ctx context.Context, q string) int {
	_, err := s.ask(ctx, q)
	s.kill.During(nil)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled) && root.Err() == nil:
		return 130
	}
	if !s.opts.JSON {
		fmt.Fprintf(s.stderr, "orchestrator: %s\n", termsafe.String(err.Error()))
	}
	return 1
}

// REPL reads questions and commands from in until its end. start is
// start-up's context: a Ctrl-C that ended it before the REPL took over
// Ctrl-C ends the REPL at once with 130.
func (s *Session) REPL(root, start context.Context, in console.LineReader, interactive bool) int {
	var (
		mu         sync.Mutex
		cancelTurn context.CancelFunc
	)
	ctx, cancel := context.WithCancel(start)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	// The REPL's Ctrl-C ends a turn or the line, never the servers:
	// closeFleet arms the kill switch again at the end.
	s.kill.Disarm()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
			}
			mu.Lock()
			if cancelTurn != nil {
				cancelTurn()
				if interactive {
					s.ui.Note("") // end the line the terminal echoed ^C on
				}
			} else if !interactive {
				cancel() // idle and no terminal: Ctrl-C ends the session
			}
			mu.Unlock()
		}
	}()

	if con, ok := in.(*console.Console); ok {
		// SIGTERM while a line is read at the terminal: ReadLine cannot be
		// interrupted, so put the terminal back and leave. A launched
		// membrane gets SIGTERM from the kernel when we are gone.
		go func() {
			<-root.Done()
			if con.Reading() {
				con.Restore()
				fmt.Fprintln(s.stderr)
				os.Exit(143)
			}
		}()
	}
	if interactive {
		s.ui.Note("%s", s.ui.Style(fmt.Sprintf("model %s · %d tools · /help for commands · Ctrl-D to leave", s.ag.Model(), s.tools.Len()), display.Dim))
	}
	for {
		line, err := in.ReadLine(ctx, "› ")
		switch {
		case errors.Is(err, console.ErrInterrupt):
			continue
		case errors.Is(err, io.EOF):
			if interactive {
				fmt.Fprintln(s.stdout)
			}
			return 0
		case ctx.Err() != nil:
			if root.Err() != nil {
				return 0 // SIGTERM
			}
			return 130
		case err != nil:
			fmt.Fprintf(s.stderr, "orchestrator: read input: %v\n", err)
			return 1
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "/") {
			if s.command(ctx, line) {
				return 0
			}
			continue
		}
		turnCtx, cancelT := context.WithCancel(ctx)
		mu.Lock()
		cancelTurn = cancelT
		mu.Unlock()
		_, err = s.ask(turnCtx, line)
		mu.Lock()
		cancelTurn = nil
		mu.Unlock()
		interrupted := turnCtx.Err() != nil && ctx.Err() == nil
		cancelT()
		switch {
		case err == nil:
		case interrupted && errors.Is(err, context.Canceled):
			s.ui.Note("%s", s.ui.Style("cancelled; the conversation is as it was before this question", display.Dim))
		case !s.opts.JSON:
			s.ui.Note("error: %s", termsafe.String(err.Error()))
		}
		if root.Err() != nil {
			return 0
		}
	}
}

// command runs a /command and reports whether the session should end.
func (s *Session) command(ctx context.Context, line string) bool {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/exit", "/quit", "/q":
		return true
	case "/clear", "/reset":
		s.ag.Reset()
		s.ui.Note("conversation cleared")
	case "/tools":
		tools := s.ag.Tools()
		if len(tools) == 0 {
			s.ui.Note("no tools")
		}
		width := 0
		for _, t := range tools {
			width = max(width, len(t.Name))
		}
		var b strings.Builder
		for _, t := range tools {
			pad := strings.Repeat(" ", width-len(t.Name))
			desc := termsafe.String(display.FirstLine(t.Description, 90))
			if info, ok := s.tool(t.Name); ok && info.Name != t.Name {
				desc = "(" + termsafe.Line(info.Name) + " of " + termsafe.Line(info.Server) + ") " + desc
			}
			fmt.Fprintf(&b, "  %s%s  %s\n", s.ui.Style(termsafe.Line(t.Name), display.Bold), pad, s.ui.Style(desc, display.Dim))
		}
		io.WriteString(s.stdout, b.String())
	case "/model":
		if arg == "" {
			mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			names, err := s.model.Models(mctx)
			cancel()
			msg := "model: " + s.ag.Model()
			if err == nil {
				msg += "\navailable: " + strings.Join(names, ", ")
			}
			s.ui.Note("%s", msg)
			return false
		}
		// Check the name against what the endpoint serves; an endpoint
		// that cannot list its models gets the benefit of the doubt.
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		names, err := s.model.Models(mctx)
		cancel()
		// Ollama lists "qwen3:latest" for the "qwen3" one asks for.
		var short []string
		for _, n := range names {
			short = append(short, strings.TrimSuffix(n, ":latest"))
		}
		if err == nil && !slices.Contains(names, arg) && !slices.Contains(short, arg) {
			msg := fmt.Sprintf("%s does not serve %q; the model stays %s", s.model.BaseURL(), arg, s.ag.Model())
			if near := settings.Nearest(arg, short); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", near)
			} else if len(names) > 0 {
				msg += "\navailable: " + strings.Join(names, ", ")
			}
			s.ui.Note("%s", msg)
			return false
		}
		s.ag.SetModel(arg)
		s.ui.Note("model: %s", arg)
	case "/history":
		if s.turns == nil {
			s.ui.Note("no turns are kept (--store off, or the store could not be opened)")
			return false
		}
		f := store.TurnFilter{Conversation: s.turns.Conversation(), Limit: 20}
		if arg == "all" {
			f.Conversation = ""
		}
		if err := turns.Print(ctx, s.stdout, s.turns.Store(), f, false); err != nil {
			s.ui.Note("history: %s", termsafe.String(err.Error()))
		}
	case "/help", "/?":
		fmt.Fprint(s.stdout, `  /tools         list the tools the model can call
  /model [NAME]  show or change the model
  /history [all] this session's turns (all: every session's latest) from the store
  /clear         forget the conversation
  /exit          leave (or Ctrl-D)
  Ctrl-C cancels the running question and its tool calls.
`)
	default:
		s.ui.Note("unknown command %s: try /help", name)
	}
	return false
}

// tool says who a local tool name is, when an Index can.
func (s *Session) tool(local string) (mcp.ToolInfo, bool) {
	if s.index == nil {
		return mcp.ToolInfo{}, false
	}
	return s.index.Tool(local)
}
