// Command orchestrator is membrane's bundled MCP client: it launches
// membrane over stdio (or reaches it over streamable HTTP, plus any servers
// of a Claude-Desktop-style config file) and drives a reasoning model
// through an OpenAI-compatible chat API (Ollama's /v1 by default) in a
// tool-calling loop. `orchestrator -e "question"` answers once; without -e
// it is an interactive session. `orchestrator --help` lists every setting.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/lmittmann/tint"
	"golang.org/x/term"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/calls/otel"
	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termimage"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
)

var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

func versionString() string { return settings.Version(version) }

func isTerminal(f any) bool {
	if f, ok := f.(*os.File); ok {
		return term.IsTerminal(int(f.Fd()))
	}
	return false
}

// run is main without the exit; it returns the exit code: 0 answered, 1
// failed, 2 bad usage, 130 interrupted.
func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	var probe Config
	command, args := define(&probe, &rawConfig{}).Split(args, "serve")
	cfg, set, err := parseConfig(args, getenv)
	switch {
	case errors.Is(err, settings.ErrHelp):
		set.Usage(stdout)
		return 0
	case errors.Is(err, settings.ErrStop):
		fmt.Fprintf(stdout, "orchestrator %s\n", versionString())
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 2
	}

	specs, agentsData, err := cfg.loadAgents()
	if err == nil {
		err = cfg.useAgent(set, specs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 2
	}

	errTTY := isTerminal(stderr)
	color := errTTY && !cfg.NoColor
	level := slog.LevelWarn
	if cfg.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(tint.NewTextHandler(stderr, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !color}))

	if cfg.History {
		return showTurns(cfg, getenv, stdout, stderr)
	}
	if command == "serve" {
		if cfg.Exec != "" {
			fmt.Fprintf(stderr, "orchestrator serve: takes no question (got %q); clients ask over the API\n", cfg.Exec)
			return 2
		}
		return serve(cfg, specs, agentsData, log, stdout, stderr)
	}

	oneShot := cfg.Exec != ""
	inFile, _ := stdin.(*os.File)
	interactive := inFile != nil && isTerminal(inFile)
	if cfg.Exec == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "orchestrator: read the question from stdin: %v\n", err)
			return 2
		}
		cfg.Exec = strings.TrimSpace(string(b))
		interactive = false
		if cfg.Exec == "" {
			fmt.Fprintln(stderr, "orchestrator: -e -: stdin held no question")
			return 2
		}
	}

	// SIGTERM ends everything; SIGINT ends a one-shot run, and only the
	// running turn in the REPL.
	root, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()

	u := newUI(stdout, stderr, color, errTTY && isTerminal(stdout), cfg.HideReasoning, cfg.JSON)

	var serverLog io.Writer = stderr
	if cfg.ServerLog != "" {
		f, err := os.OpenFile(cfg.ServerLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "orchestrator: --server-log: %v\n", err)
			return 2
		}
		defer f.Close()
		serverLog = f
	}
	// Server logs that reach a terminal are made safe to show there.
	if isTerminal(serverLog) {
		serverLog = &termsafe.Writer{W: serverLog}
	}
	servers, err := cfg.servers(serverLog)
	if err == nil && len(cfg.agentServers) > 0 {
		var extra []server
		extra, err = extraServers([]agents.Spec{{Name: cfg.Agent, Servers: cfg.agentServers}}, servers, serverLog)
		servers = append(servers, extra...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 1
	}

	// The router logs no calls of its own: the tool lines show each call,
	// and under -v the server logs it too (with its own session), so a
	// record here would show one call as if it ran twice.
	router := calls.NewRouter(&calls.RouterOptions{DefaultConcurrency: -1})
	connectCtx, cancelConnect := context.WithCancel(root)
	fl := newFleet(servers, router, cfg.CallTimeout, log)
	// A Ctrl-C during start-up ends it, and one after that kills the
	// servers that will not go.
	kill := &killSwitch{fl: fl, u: u}
	kill.during(cancelConnect)
	fl.say = func(msg string, bad bool) {
		code := dim
		if bad {
			code = red
		}
		u.note("%s", u.style(termsafe.String(msg), code))
	}
	fl.onChange = func(server string, ch calls.Change) {
		if oneShot && !cfg.Verbose {
			return
		}
		var parts []string
		for _, c := range ch.Added {
			parts = append(parts, "+"+c.Name)
		}
		for _, n := range ch.Removed {
			parts = append(parts, "-"+n)
		}
		u.note("%s", u.style(termsafe.String(fmt.Sprintf("tools of %s changed: %s", server, strings.Join(parts, " "))), dim))
	}
	err = fl.start(connectCtx, servers)
	interrupted := connectCtx.Err() != nil && root.Err() == nil
	kill.during(nil)
	cancelConnect()
	defer closeFleet(fl, kill)
	switch {
	case interrupted:
		return 130
	case err != nil:
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 1
	}

	baseURL := cfg.BaseURL
	if baseURL == "" {
		baseURL = defaultBaseURL()
	}
	tr, err := otel.Start(root, &otel.Options{ServiceName: "orchestrator", ServiceVersion: versionString()})
	if err != nil {
		fmt.Fprintf(stderr, "orchestrator: tracing: %v; fix the OTEL_* variables, or unset OTEL_EXPORTER_OTLP_ENDPOINT to trace nothing\n", err)
		return 2
	}
	defer shutdownTracing(tr, log)
	model := openaicompat.New(&openaicompat.Options{
		BaseURL:         baseURL,
		APIKey:          cfg.APIKey,
		Temperature:     cfg.Temperature,
		ReasoningEffort: cfg.ReasoningEffort,
		ThinkTags:       true,
		Logger:          log,
		HTTPClient:      &http.Client{Transport: tr.Transport(nil)},
	})
	if cfg.Model == "" {
		// Ctrl-C while picking the model is still start-up: exit 130.
		sctx, stopPick := context.WithCancel(root)
		kill.during(stopPick)
		mctx, cancel := context.WithTimeout(sctx, 30*time.Second)
		cfg.Model, err = defaultModel(mctx, model)
		cancel()
		interrupted := sctx.Err() != nil && root.Err() == nil
		kill.during(nil)
		stopPick()
		if interrupted {
			return 130
		}
		if err != nil {
			fmt.Fprintf(stderr, "orchestrator: %v\n", err)
			return 1
		}
	}

	// Input for the REPL and for approval prompts.
	var lines lineReader
	var keys keyReader
	if interactive {
		hist := cfg.HistoryFile
		if hist == "" {
			hist = historyPath(getenv)
		}
		var h term.History
		if hist != "off" && !oneShot {
			h = loadHistory(hist)
		}
		con := newConsole(inFile, stdout, h)
		u.atPrompt = con.promptWriter
		lines = con
		errFile, _ := stderr.(*os.File)
		keys = ttyKeys{in: inFile, out: errFile}
	} else if !oneShot {
		lines = newPipeReader(stdin)
	}
	tools, err := selectTools(router, cfg.Tools, cfg.ExcludeTools)
	if err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 2
	}
	if v, ok := tools.(*policy.View); ok {
		defer v.Close()
	}
	show := &imageShow{mode: cfg.Images, dir: cfg.ImageDir, u: u}
	if errTTY {
		show.inline = termimage.Detect(getenv)
	}
	// The card follows the tool set itself, which the image wrapper hides.
	cardSrc, hasCard := tools.(agent.CardSource)
	tools = showingTools{offered: tools, show: show}
	appr := newApprover(cfg.Approve, fl, interactive, cfg.Yes, keys, u, stderr)
	if err := appr.check(); err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 2
	}

	opts := &agent.Options{
		Model:            cfg.Model,
		System:           cfg.System,
		MaxSteps:         cfg.MaxSteps,
		MaxParallel:      cfg.Parallel,
		ExtractTextCalls: cfg.extractText(),
		OnEvent:          u.event,
		Logger:           log,
	}
	if tr.Enabled() {
		opts.TracerProvider = tr.TracerProvider()
	}
	if len(cfg.Approve) > 0 {
		opts.Approve = appr.approve
	}
	var ag *agent.Agent
	if hasCard && agent.CardMode(cfg.Card) != agent.CardModeOff {
		card := agent.NewCard(cardSrc, &agent.CardOptions{MaxTokens: cfg.CardTokens, Group: cardGroup})
		defer card.Close()
		mode, base := agent.CardMode(cfg.Card), model.BaseURL()
		// Asked at each step: /model may have switched to a larger model.
		opts.Capabilities = func() string {
			if !mode.Enabled(ag.Model(), base) {
				return ""
			}
			return card.String()
		}
	}
	ag = agent.New(model, tools, opts)
	log.Debug("ready", "model", cfg.Model, "endpoint", model.BaseURL(), "tools", tools.Len(), "extract_text_calls", opts.ExtractTextCalls)

	turns := openTurnStore(cfg, getenv, log)
	defer turns.close()
	s := &session{cfg: cfg, ag: ag, model: model, tools: tools, fleet: fl, kill: kill, ui: u, stdout: stdout, stderr: stderr, turns: turns}
	if oneShot {
		return s.oneShot(root, cfg.Exec)
	}
	return s.repl(root, lines, interactive)
}

// cardGroup lists a tool on the capabilities card under its server's name.
func cardGroup(c calls.Call) string { return strings.TrimPrefix(c.Group, "mcp:") }

// showTurns prints the stored turns for --history.
func showTurns(cfg *Config, getenv func(string) string, stdout, stderr io.Writer) int {
	if cfg.Store == "off" {
		fmt.Fprintln(stderr, "orchestrator: --history reads the trace store, and --store is off")
		return 2
	}
	path, err := turnStorePath(cfg.Store, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 1
	}
	st, err := store.Open(path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 1
	}
	defer st.Close()
	if err := printTurns(context.Background(), stdout, st, store.TurnFilter{Limit: 20}, cfg.JSON); err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 1
	}
	return 0
}

// shutdownTracing exports the last spans, for a few seconds at most.
func shutdownTracing(tr *otel.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		log.Warn("tracing: the last spans were not exported", "err", err)
	}
}

// offered is what the model is offered: the router, or a view of it.
type offered interface {
	agent.Tools
	Len() int
}

// selectTools returns the tools of r that the --tools and --exclude-tools
// globs let the model see: r itself when there are none. A glob that
// matches none of the tools there are at start is an error naming it, so
// that a typo does not leave a tool offered (or none).
func selectTools(r *calls.Router, include, exclude []string) (offered, error) {
	sel, err := policy.NewSelector(include, exclude)
	if err != nil {
		return nil, err
	}
	if sel.All() {
		return r, nil
	}
	var names []string
	for _, c := range r.List() {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	var bad []string
	for _, g := range sel.Unmatched(names) {
		flag := "--tools"
		if slices.Contains(exclude, g) && !slices.Contains(include, g) {
			flag = "--exclude-tools"
		}
		bad = append(bad, flag+" "+g)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: matches no tool; the tools are: %s", strings.Join(bad, ", "), strings.Join(names, ", "))
	}
	return policy.NewView(r, sel), nil
}

// closeFleet ends every server's session. A Ctrl-C while that takes time
// (a server that ignores SIGTERM) kills the servers' process groups.
func closeFleet(fl *fleet, kill *killSwitch) {
	kill.arm()
	fl.close()
	kill.disarm()
}

// killSwitch listens for Ctrl-C from start-up to the end of the run. While
// a step that Ctrl-C ends is running (start-up, a one-shot turn), the first
// Ctrl-C ends it; any Ctrl-C after that kills the servers' process groups.
// One listener does both, so that a second Ctrl-C right after the first
// never falls in a gap where nobody listens (and the program waits on a
// server that ignores SIGTERM for good).
type killSwitch struct {
	fl *fleet
	u  *ui

	mu   sync.Mutex
	sigs chan os.Signal     // nil: not armed
	done chan struct{}      // closed by disarm
	step context.CancelFunc // what the next Ctrl-C ends; nil: kill
}

// arm starts listening for Ctrl-C; arming again does nothing.
func (k *killSwitch) arm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sigs != nil {
		return
	}
	sigs, done := make(chan os.Signal, 1), make(chan struct{})
	k.sigs, k.done = sigs, done
	signal.Notify(sigs, os.Interrupt)
	go func() {
		for {
			select {
			case <-sigs:
			case <-done:
				return
			}
			k.mu.Lock()
			step := k.step
			k.step = nil
			k.mu.Unlock()
			if step != nil {
				step()
				continue
			}
			k.u.note("%s", k.u.style("Ctrl-C again: killing the servers", red))
			k.fl.kill()
			return
		}
	}()
}

// during arms k and makes the next Ctrl-C call cancel (nil: kill the
// servers).
func (k *killSwitch) during(cancel context.CancelFunc) {
	k.arm()
	k.mu.Lock()
	k.step = cancel
	k.mu.Unlock()
}

// disarm stops listening, if armed.
func (k *killSwitch) disarm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sigs == nil {
		return
	}
	signal.Stop(k.sigs)
	close(k.done)
	k.sigs, k.done, k.step = nil, nil, nil
}

// defaultModel picks the endpoint's model when it serves exactly one.
func defaultModel(ctx context.Context, m *openaicompat.Client) (string, error) {
	names, err := m.Models(ctx)
	if err != nil {
		return "", fmt.Errorf("no --model given, and listing the models failed: %w", modelAdvice(err))
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no --model given, and %s serves no models: pull one (such as `ollama pull qwen3`) and pass --model", m.BaseURL())
	case 1:
		return names[0], nil
	}
	shown := names
	if len(shown) > 12 {
		shown = append(shown[:12:12], "…")
	}
	return "", fmt.Errorf("no --model given, and %s serves %d models: pass --model NAME (or set MEMBRANE_MODEL); they are: %s", m.BaseURL(), len(names), strings.Join(shown, ", "))
}

// session runs turns and shows them.
type session struct {
	cfg    *Config
	ag     *agent.Agent
	model  *openaicompat.Client
	tools  offered
	fleet  *fleet
	kill   *killSwitch
	ui     *ui
	stdout io.Writer
	stderr io.Writer
	turns  *turnStore // nil with --store off
}

func (s *session) ask(ctx context.Context, q string) (*agent.Turn, error) {
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, s.cfg.Timeout, fmt.Errorf("no answer within --timeout %s", s.cfg.Timeout))
		defer cancel()
	}
	started := time.Now()
	turn, err := s.ag.Ask(ctx, q)
	s.turns.record(context.WithoutCancel(ctx), started, q, s.ag.Model(), turn, err)
	err = modelAdvice(err)
	if err != nil && ctx.Err() != nil && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		err = context.Cause(ctx)
	}
	s.ui.endTurn(turn, err)
	if s.cfg.JSON {
		s.printJSON(q, turn, err)
	}
	return turn, err
}

func (s *session) oneShot(root context.Context, q string) int {
	// The first Ctrl-C ends the turn, the next kills the servers: one
	// listener for both, so that no Ctrl-C falls between the two.
	ctx, cancel := context.WithCancel(root)
	defer cancel()
	s.kill.during(cancel)
	_, err := s.ask(ctx, q)
	s.kill.during(nil)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled) && root.Err() == nil:
		return 130
	}
	if !s.cfg.JSON {
		fmt.Fprintf(s.stderr, "orchestrator: %s\n", termsafe.String(err.Error()))
	}
	return 1
}

func (s *session) repl(root context.Context, in lineReader, interactive bool) int {
	var (
		mu         sync.Mutex
		cancelTurn context.CancelFunc
	)
	ctx, cancel := context.WithCancel(root)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	// The REPL's Ctrl-C ends a turn or the line, never the servers:
	// closeFleet arms the kill switch again at the end.
	s.kill.disarm()
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
					s.ui.note("") // end the line the terminal echoed ^C on
				}
			} else if !interactive {
				cancel() // idle and no terminal: Ctrl-C ends the session
			}
			mu.Unlock()
		}
	}()

	if con, ok := in.(*console); ok {
		// SIGTERM while a line is read at the terminal: ReadLine cannot be
		// interrupted, so put the terminal back and leave. A launched
		// membrane gets SIGTERM from the kernel when we are gone.
		go func() {
			<-root.Done()
			if con.reading.Load() {
				con.restore()
				fmt.Fprintln(s.stderr)
				os.Exit(143)
			}
		}()
	}
	if interactive {
		s.ui.note("%s", s.ui.style(fmt.Sprintf("model %s · %d tools · /help for commands · Ctrl-D to leave", s.ag.Model(), s.tools.Len()), dim))
	}
	for {
		line, err := in.readLine(ctx, "› ")
		switch {
		case errors.Is(err, errInterrupt):
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
			s.ui.note("%s", s.ui.style("cancelled; the conversation is as it was before this question", dim))
		case !s.cfg.JSON:
			s.ui.note("error: %s", termsafe.String(err.Error()))
		}
		if root.Err() != nil {
			return 0
		}
	}
}

// command runs a /command and reports whether the session should end.
func (s *session) command(ctx context.Context, line string) bool {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/exit", "/quit", "/q":
		return true
	case "/clear", "/reset":
		s.ag.Reset()
		s.ui.note("conversation cleared")
	case "/tools":
		tools := s.ag.Tools()
		if len(tools) == 0 {
			s.ui.note("no tools")
		}
		width := 0
		for _, t := range tools {
			width = max(width, len(t.Name))
		}
		var b strings.Builder
		for _, t := range tools {
			pad := strings.Repeat(" ", width-len(t.Name))
			desc := termsafe.String(firstLine(t.Description, 90))
			if info, ok := s.fleet.tool(t.Name); ok && info.Name != t.Name {
				desc = "(" + termsafe.Line(info.Name) + " of " + termsafe.Line(info.Server) + ") " + desc
			}
			fmt.Fprintf(&b, "  %s%s  %s\n", s.ui.style(termsafe.Line(t.Name), bold), pad, s.ui.style(desc, dim))
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
			s.ui.note("%s", msg)
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
			s.ui.note("%s", msg)
			return false
		}
		s.ag.SetModel(arg)
		s.ui.note("model: %s", arg)
	case "/history":
		if s.turns == nil {
			s.ui.note("no turns are kept (--store off, or the store could not be opened)")
			return false
		}
		f := store.TurnFilter{Conversation: s.turns.conv, Limit: 20}
		if arg == "all" {
			f.Conversation = ""
		}
		if err := printTurns(ctx, s.stdout, s.turns.st, f, false); err != nil {
			s.ui.note("history: %s", termsafe.String(err.Error()))
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
		s.ui.note("unknown command %s: try /help", name)
	}
	return false
}

type jsonCall struct {
	Step       int             `json:"step"`
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Arguments  json.RawMessage `json:"arguments"`
	Result     string          `json:"result"`
	IsError    bool            `json:"is_error"`
	Denied     bool            `json:"denied,omitempty"`
	FromText   bool            `json:"from_text,omitempty"`
	DurationMS float64         `json:"duration_ms"`
}

type jsonTurn struct {
	Question        string     `json:"question"`
	Answer          string     `json:"answer"`
	Reasoning       string     `json:"reasoning,omitempty"`
	Model           string     `json:"model"`
	Steps           int        `json:"steps"`
	ToolCalls       []jsonCall `json:"tool_calls"`
	Usage           jsonUsage  `json:"usage"`
	DurationMS      float64    `json:"duration_ms"`
	Error           string     `json:"error,omitempty"`
	MaxStepsReached bool       `json:"max_steps_reached,omitempty"`
	TraceID         string     `json:"trace_id,omitempty"`
}

type jsonUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *session) printJSON(q string, t *agent.Turn, err error) {
	out := jsonTurn{Question: q, Model: s.ag.Model(), ToolCalls: []jsonCall{}}
	if t != nil {
		out.Answer, out.Reasoning, out.Steps = t.Answer, t.Reasoning, t.Steps
		out.Usage = jsonUsage{t.Usage.PromptTokens, t.Usage.CompletionTokens}
		out.DurationMS, out.TraceID = ms(t.Duration), t.TraceID
		for _, c := range t.Calls {
			args := json.RawMessage(c.Arguments)
			if !json.Valid(args) {
				args, _ = json.Marshal(c.Arguments)
			}
			out.ToolCalls = append(out.ToolCalls, jsonCall{Step: c.Step, ID: c.ID, Name: c.Name, Arguments: args, Result: c.Result,
				IsError: c.IsError, Denied: c.Denied, FromText: c.FromText, DurationMS: ms(c.Duration)})
		}
	}
	if err != nil {
		out.Error = err.Error()
		out.MaxStepsReached = errors.Is(err, agent.ErrMaxSteps)
	}
	b, _ := json.Marshal(out)
	fmt.Fprintf(s.stdout, "%s\n", escapeJSON(b))
}

// escapeJSON writes the C1 controls and bidi controls that json.Marshal
// leaves raw as \u escapes: the same JSON, safe to print on a terminal.
func escapeJSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x80 && termsafe.Unsafe(r) {
			if out == nil {
				out = append(make([]byte, 0, len(b)+16), b[:i]...)
			}
			out = fmt.Appendf(out, `\u%04x`, r)
		} else if out != nil {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}

// modelAdvice adds to an endpoint error the flag that fixes it: the
// library says what went wrong, in words that name no flag.
func modelAdvice(err error) error {
	var e *openaicompat.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case openaicompat.CodeNoModel, openaicompat.CodeModelNotServed:
		return fmt.Errorf("%w; pick the model with --model or MEMBRANE_MODEL", err)
	case openaicompat.CodeNotFound, openaicompat.CodeUnreachable:
		return fmt.Errorf("%w; set the endpoint with --base-url", err)
	case openaicompat.CodeThinkLevelUnsupported:
		return fmt.Errorf("%w; use --reasoning-effort none, or leave it unset (MEMBRANE_REASONING_EFFORT, or the agent's reasoning_effort)", err)
	case openaicompat.CodeNoThinking:
		return fmt.Errorf("%w; drop --reasoning-effort (MEMBRANE_REASONING_EFFORT, or the agent's reasoning_effort), or pick a thinking model with --model", err)
	}
	return err
}
