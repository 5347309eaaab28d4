// Command orchestrator is membrane's bundled MCP client: it launches
// membrane over stdio (or reaches it over streamable HTTP, plus any servers
// of a Claude-Desktop-style config file) and drives a reasoning model
// through an OpenAI-compatible chat API (Ollama's /v1 by default) in a
// tool-calling loop. `orchestrator -e "question"` answers once; without -e
// it is an interactive session. `orchestrator --help` lists every setting.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

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
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/approve"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/console"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/images"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/session"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termimage"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/turns"
	"github.com/membrane-mcp/membrane/mcp"
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

	// SIGTERM ends everything. Until the turn (or the REPL) takes over, the
	// first Ctrl-C ends the run with 130 in whatever phase it is in, and
	// any Ctrl-C after that kills the servers: one listener for both, with
	// no gap between phases.
	root, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	start, cancelStart := context.WithCancel(root)
	defer cancelStart()
	u := display.New(stdout, stderr, &display.Options{Color: color, Shared: errTTY && isTerminal(stdout), HideReasoning: cfg.HideReasoning, Quiet: cfg.JSON})
	kill := session.NewKillSwitch(u)
	kill.During(cancelStart)
	defer kill.Disarm()
	interrupted := func() bool { return start.Err() != nil && root.Err() == nil }

	oneShot := cfg.Exec != ""
	inFile, _ := stdin.(*os.File)
	interactive := inFile != nil && isTerminal(inFile)
	if cfg.Exec == "-" {
		var b []byte
		if !session.Phase(start, func() { b, err = io.ReadAll(stdin) }) {
			return 130
		}
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

	var serverLog io.Writer = stderr
	if cfg.ServerLog != "" {
		var f *os.File
		if !session.Phase(start, func() { f, err = os.OpenFile(cfg.ServerLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600) }) {
			return 130
		}
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
		var extra []mcp.FleetServer
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
	fl := mcp.NewFleet(router, servers, &mcp.FleetOptions{
		CallTimeout: cfg.CallTimeout,
		ClientName:  "membrane-orchestrator",
		Logger:      log,
		Advise:      advise,
		Say: func(msg string, bad bool) {
			code := display.Dim
			if bad {
				code = display.Red
			}
			u.Note("%s", u.Style(termsafe.String(msg), code))
		},
		OnToolsChanged: func(server string, ch calls.Change) {
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
			u.Note("%s", u.Style(termsafe.String(fmt.Sprintf("tools of %s changed: %s", server, strings.Join(parts, " "))), display.Dim))
		},
	})
	kill.SetKill(fl.Kill)
	err = fl.Start(start)
	defer closeFleet(fl, kill)
	switch {
	case interrupted():
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
		mctx, cancel := context.WithTimeout(start, 30*time.Second)
		cfg.Model, err = defaultModel(mctx, model)
		cancel()
		if interrupted() {
			return 130
		}
		if err != nil {
			fmt.Fprintf(stderr, "orchestrator: %v\n", err)
			return 1
		}
	}

	// Input for the REPL and for approval prompts.
	var lines console.LineReader
	var keys approve.Keys
	if interactive {
		hist := cfg.HistoryFile
		if hist == "" {
			hist = console.HistoryPath(getenv)
		}
		var h term.History
		if hist != "off" && !oneShot && !session.Phase(start, func() { h = console.LoadHistory(hist) }) {
			return 130
		}
		con := console.New(inFile, stdout, h, session.Commands)
		u.SetPrompt(con.PromptWriter)
		lines = con
		errFile, _ := stderr.(*os.File)
		keys = console.Keys{In: inFile, Out: errFile}
	} else if !oneShot {
		lines = console.NewPipe(stdin)
	}
	tools, err := selectTools(router, cfg.Tools, cfg.ExcludeTools)
	if err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 2
	}
	if v, ok := tools.(*policy.View); ok {
		defer v.Close()
	}
	show := &images.Show{Mode: cfg.Images, Dir: cfg.ImageDir, UI: u}
	if errTTY {
		show.Inline = termimage.Detect(getenv)
	}
	// The card follows the tool set itself, which the image wrapper hides.
	cardSrc, hasCard := tools.(agent.CardSource)
	tools = images.Showing{Tools: tools, Show: show}
	appr := approve.New(&approve.Options{Names: cfg.Approve, Index: fl, Interactive: interactive, Yes: cfg.Yes, Keys: keys, UI: u, Out: stderr})
	if err := appr.Check(); err != nil {
		fmt.Fprintf(stderr, "orchestrator: %v\n", err)
		return 2
	}

	opts := &agent.Options{
		Model:            cfg.Model,
		System:           cfg.System,
		MaxSteps:         cfg.MaxSteps,
		MaxParallel:      cfg.Parallel,
		ExtractTextCalls: cfg.extractText(),
		OnEvent:          u.Event,
		Logger:           log,
	}
	if tr.Enabled() {
		opts.TracerProvider = tr.TracerProvider()
		opts.ToolTransport = fl.Transport
	}
	if len(cfg.Approve) > 0 {
		opts.Approve = appr.Approve
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

	rec := turns.Open(cfg.Store, getenv, log)
	defer rec.Close()
	s := session.New(&session.Options{Agent: ag, Model: model, Tools: tools, Index: fl, Kill: kill, UI: u,
		Stdout: stdout, Stderr: stderr, Turns: rec, Timeout: cfg.Timeout, JSON: cfg.JSON, Advise: modelAdvice})
	if interrupted() {
		return 130
	}
	if oneShot {
		return s.OneShot(root, start, cfg.Exec)
	}
	return s.REPL(root, start, lines, interactive)
}

// cardGroup lists a tool on the capabilities card under its server's name.
func cardGroup(c calls.Call) string { return strings.TrimPrefix(c.Group, "mcp:") }

// showTurns prints the stored turns for --history.
func showTurns(cfg *Config, getenv func(string) string, stdout, stderr io.Writer) int {
	if cfg.Store == "off" {
		fmt.Fprintln(stderr, "orchestrator: --history reads the trace store, and --store is off")
		return 2
	}
	path, err := turns.Path(cfg.Store, getenv)
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
	if err := turns.Print(context.Background(), stdout, st, store.TurnFilter{Limit: 20}, cfg.JSON); err != nil {
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
func closeFleet(fl *mcp.Fleet, kill *session.KillSwitch) {
	kill.During(nil)
	fl.Close()
	kill.Disarm()
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
