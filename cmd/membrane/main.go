// Command membrane is an MCP server: it serves every model its Ollama
// servers hold as MCP tools, plus the sandboxed sh and python_run tools,
// over stdio (the default, what Claude Desktop launches) or streamable HTTP
// (--http ADDR). `membrane doctor` checks the set-up; `membrane --help`
// lists every setting.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agenttool"
	"github.com/membrane-mcp/membrane/calls/lens"
	"github.com/membrane-mcp/membrane/calls/metrics"
	obsv "github.com/membrane-mcp/membrane/calls/observers"
	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/cmd/internal/logging"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/sandbox"
	"github.com/membrane-mcp/membrane/sandbox/httpget"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version or VCS revision is used.
var version = ""

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// tuneGC leaves the collector at Go's default pace (GOGC=100) and sets a
// soft memory limit sized from the machine (calls.SoftMemoryLimit), unless
// GOMEMLIMIT is set. GOGC=400, the setting before, bought 4-10% more HTTP
// requests per second at the price of twice the RSS with 2,000 models
// (about 100 MiB against under 50 MiB): see the README's Tuning paragraph.
func tuneGC() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(calls.SoftMemoryLimit(calls.MemTotal()))
	}
}

func versionString() string { return settings.Version(version) }

// run is main without the exit; it returns the exit code.
func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Flags may come before the subcommand or after it.
	command, args := define("membrane", &Config{}).Split(args, commands...)
	name := "membrane"
	if command != "" {
		name += " " + command
	}
	// The subcommands' own words and flags.
	var operand string
	jsonOut := false
	switch command {
	case "doctor":
		args = slices.DeleteFunc(slices.Clone(args), func(a string) bool {
			if a == "--json" || a == "-json" {
				jsonOut = true
				return true
			}
			return false
		})
	case "completion", "config":
		want := clients
		if command == "completion" {
			want = shells
		}
		operand, args = define(name, &Config{}).Split(args, want...)
		if operand == "" && !slices.Contains(args, "--help") && !slices.Contains(args, "-h") {
			fmt.Fprintf(stderr, "%s: give one of %s (see %s --help)\n", name, strings.Join(want, ", "), name)
			return 2
		}
	case "calls":
		return runCalls(args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "membrane %s\n", versionString())
		return 0
	}
	cfg, err := loadConfig(name, args, getenv, nil)
	switch {
	case errors.Is(err, settings.ErrHelp):
		cfg.set.Usage(stdout)
		return 0
	case errors.Is(err, settings.ErrStop):
		fmt.Fprintf(stdout, "membrane %s\n", versionString())
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	switch command {
	case "completion":
		return runCompletion(cfg, operand, stdout, stderr)
	case "config":
		return runClientConfig(cfg, operand, args, stdout, stderr)
	case "doctor":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runDoctor(ctx, cfg, jsonOut, stdout)
	}
	log := newLogger(cfg, stderr, getenv)
	// A reload reads the file again through exactly the start-up path:
	// the same flags and environment, every check.
	reload := func(data []byte) (*Config, error) {
		return loadConfig(name, args, getenv, func(string) ([]byte, error) { return data, nil })
	}
	if err := serve(cfg, log, getenv, stdin, stdout, reload); err != nil {
		log.Error("membrane stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger builds the one handler of the process: tint on stderr, with
// colour only on a terminal and without NO_COLOR, or JSON.
func newLogger(cfg *Config, w io.Writer, getenv func(string) string) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	return logging.New(w, logging.Options{Level: level, JSON: cfg.Log.Format == "json", Color: true, Getenv: getenv})
}

// serve runs membrane until stdin ends (stdio), a signal arrives, or the
// listener fails.
func serve(cfg *Config, log *slog.Logger, getenv func(string) string, stdin io.Reader, stdout io.Writer, reload func([]byte) (*Config, error)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	obs, err := newObservers(cfg, log)
	if err != nil {
		return err
	}
	var set *policy.TokenSet
	if cfg.HTTP.TokensFile != "" {
		if set, err = policy.LoadTokens(cfg.HTTP.TokensFile); err != nil {
			return err
		}
		if cfg.HTTP.Addr == "" {
			log.Warn("--tokens-file applies to HTTP clients only; on stdio every tool is served", "tokens_file", cfg.HTTP.TokensFile)
		}
	}
	guard, err := policy.NewGuard(policy.GuardOptions{
		Limits: cfg.limits(), Tokens: set, SharedToken: cfg.HTTP.Token,
		Scrub: cfg.Policy.ScrubOutput, Secrets: cfg.secrets(), Logger: log.With("component", "scrub"),
		OnRefuse: func(ctx context.Context, r policy.Refusal) {
			log.Info("call refused", "call", r.Call, "client", r.Principal, "reason", string(r.Reason), "retry_after", r.RetryAfter)
		},
	})
	if err != nil {
		return fmt.Errorf("rate limits: %w", err)
	}
	tokens, scrubbing := guard.Tokens, guard.Scrubbing
	ropts := &calls.RouterOptions{Logger: log, QueueLength: cfg.Queue.Length, QueueTimeout: cfg.Queue.Timeout,
		Observers: obs.set.RouterObservers(), Redact: obs.scrub.String, Middleware: guard.Middleware(),
		NewTraces: obs.set.Tracing.Enabled()}
	router := calls.NewRouter(ropts)
	defer obs.set.Close(router, log)
	models, err := ollama.New(cfg.ollamaConfig(), router, log.With("component", "ollama"))
	if err != nil {
		return err // "ollama: ..." already
	}
	obs.metrics = obs.set.AttachMetrics(router, metrics.ModelOptions(models))
	if scrubbing != nil {
		obs.metrics.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "membrane_secrets_scrubbed_total",
			Help: "Secrets hidden in what calls answered.",
		}, func() float64 { return float64(scrubbing.Hits()) }))
	}
	if len(cfg.HTTPGet.Allow) > 0 {
		g, err := httpget.New(cfg.httpGetOptions())
		if err != nil {
			return fmt.Errorf("http_get: %w", err)
		}
		defer g.Close()
		if g.AllowsAll() {
			log.Warn("http_get may fetch any public address (--http-get-allow '*'); private, loopback and metadata addresses stay refused")
		}
		if _, err := router.Sync(httpget.Name, []calls.Call{g.Call()}); err != nil {
			return fmt.Errorf("http_get: %w", err)
		}
	}
	sel, _ := policy.NewSelector(cfg.Policy.Tools, cfg.Policy.ExcludeTools) // checked when set
	var (
		served mcp.Router  = router
		inner  agent.Tools = router // what agent tools call: the served set
	)
	if !sel.All() {
		view := policy.NewView(router, sel)
		defer view.Close()
		served, inner = view, view
	}
	var agentSet *agenttool.Set
	if cfg.Agents.File != "" {
		agentSet = newAgentTools(cfg, router, inner, getenv, log.With("component", "agents"))
		if err := agentSet.Use(cfg.Agents.Specs); err != nil {
			return fmt.Errorf("agents: %w", err)
		}
	}
	var scope func(context.Context, string) (context.Context, func(string) bool)
	if tokens != nil {
		scope = tokens.Scope
	}

	// The sandbox takes a while to set up (it prepares the private root
	// every sandbox sees). Clients get their initialize reply at once;
	// tools/list and tools/call wait until sh and python_run are in.
	ready := make(chan struct{})
	// Workspace handles let a client without a session keep its files
	// from one call to the next; closing the store removes them.
	handles := calls.NewWorkspaces(&calls.WorkspacesOptions{
		Idle: cfg.HTTP.WorkspaceIdle, Total: cfg.HTTP.MaxWorkspaces, PerOwner: cfg.HTTP.MaxWorkspacesToken,
	})
	defer handles.Close()
	srv := mcp.NewServer(served, &mcp.ServerOptions{
		Name:           "membrane",
		Version:        versionString(),
		Instructions:   instructions,
		Logger:         log.With("component", "mcp"),
		Ready:          ready,
		MaxResultBytes: int(cfg.MaxResult),
		Scope:          scope,
		Workspaces:     handles,
		// Each session's workspace, browsable as workspace:// resources.
		WorkspaceResources: &mcp.WorkspaceResourceOptions{},
	})
	if cfg.HTTP.ConformanceFixtures {
		log.Warn("serving the conformance suite's fixture tools and resources (--conformance-fixtures): for tests only")
		srv.AddConformanceFixtures()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	box := sandbox.Start(cfg.sandboxConfig(), &sandbox.StartOptions{
		Logger: log.With("component", "sandbox"),
		OnFail: func(error) { cancel() },
		Then: func(b *sandbox.Sandbox) error {
			if _, err := router.Sync("sandbox", b.Calls()); err != nil {
				return fmt.Errorf("sandbox calls: %w", err)
			}
			// The first session's first call is warm too: its sandboxes
			// are made now, in the background, while the model hosts are
			// asked; a call cannot come before ready is closed.
			b.Prewarm()
			// The first tools/list holds the models the hosts have: a client
			// that lists once and goes (a one-shot agent) would not see them
			// otherwise. A host that hangs holds the list up to a bound; its
			// models come later, with list_changed.
			if !models.WaitDiscovered(ctx, ollama.FirstListWait) && ctx.Err() == nil {
				log.Warn("the model hosts have not answered yet; serving the tools without their models for now (membrane doctor times them)", "waited", ollama.FirstListWait)
			}
			warnUnmatched(log, sel, router)
			close(ready)
			return nil
		},
	})
	defer func() {
		if err := box.Close(); err != nil {
			log.Warn("sandbox close", "err", err)
		}
	}()

	var bg sync.WaitGroup
	bgCtx, bgCancel := context.WithCancel(context.Background())
	defer func() {
		bgCancel()
		bg.Wait()
	}()
	bg.Go(func() { _ = models.Run(bgCtx) })
	if cfg.Observe.MetricsAddr != "" {
		bg.Go(func() {
			// The metrics listener takes the MCP listener's rules (token,
			// Host, Origin), not its endpoint.
			opts := httpOptions(cfg, models, tokens, nil, log)
			if err := obsv.ServeMetrics(bgCtx, cfg.Observe.MetricsAddr, opts, obs.metrics.Handler(), log); err != nil {
				log.Error("metrics listener stopped", "err", fmt.Errorf("--metrics-addr: %w", err))
			}
		})
	}
	if cfg.File != "" {
		w := newWatcher(cfg, reload, models, log)
		bg.Go(func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			w.run(bgCtx, t.C)
		})
	}
	if agentSet != nil {
		bg.Go(func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			watchAgents(bgCtx, cfg, agentSet, log.With("component", "agents"), t.C)
		})
	}
	if tokens != nil {
		bg.Go(func() {
			guard.Watch(bgCtx, cfg.HTTP.TokensFile, 2*time.Second, func(set *policy.TokenSet) {
				log.Info("tokens file reloaded", "tokens", len(set.Names()))
			}, func(err error) {
				log.Warn("tokens file not reloaded; the tokens in use stay", "err", err)
			})
		})
	}

	var serveErr error
	if cfg.HTTP.Addr == "" {
		log.Info("membrane serving MCP on stdio", "version", versionString(), "sandbox", cfg.SandboxMode)
		serveErr = srv.Run(ctx, &mcp.ResilientStdioTransport{In: stdin, Out: stdout})
	} else {
		opts := httpOptions(cfg, models, tokens, obs.metrics.Handler(), log)
		if lensOn(cfg) {
			serveErr = mountLens(cfg, opts, router, models, obs, log)
		}
		if serveErr == nil {
			serveErr = serveHTTP(ctx, cfg, srv, opts, tokens, log)
		}
	}
	if err := box.Err(); err != nil {
		serveErr = err // the sandbox could not start
	} else if ctx.Err() != nil {
		log.Info("shutting down: cancelling running calls", "timeout", cfg.ShutdownTimeout.String())
	}
	stop() // a second signal kills at once
	if !srv.CloseWithin(cfg.ShutdownTimeout) {
		log.Warn("calls still running after the shutdown timeout; stopping anyway", "timeout", cfg.ShutdownTimeout.String())
	}
	return serveErr
}

// warnUnmatched warns of --tools and --exclude-tools patterns that match
// none of the tools registered so far. It is not an error: a model's tools
// appear when the model is pulled, and the pattern applies then.
func warnUnmatched(log *slog.Logger, sel *policy.Selector, r *calls.Router) {
	var names []string
	for _, c := range r.List() {
		names = append(names, c.Name)
	}
	for _, p := range sel.Unmatched(names) {
		log.Warn("a --tools or --exclude-tools pattern matches no tool yet; it will apply to tools that appear later (check it for a typo)", "pattern", p, "tools", len(names))
	}
}

// httpOptions is the HTTP layer's configuration, shared by the MCP listener
// and the metrics listener so that both refuse the same requests.
func httpOptions(cfg *Config, models *ollama.Models, tokens *policy.Store, metrics http.Handler, log *slog.Logger) *mcp.HTTPOptions {
	var (
		verify      func(string) (string, bool)
		sessionsFor func(string) int
	)
	if tokens != nil {
		verify, sessionsFor = tokens.Verify, tokens.SessionsFor // the single --token stays in it, unlimited
	}
	return &mcp.HTTPOptions{
		Verify:              verify,
		SessionsFor:         sessionsFor,
		Token:               cfg.HTTP.Token,
		AllowedOrigins:      cfg.HTTP.AllowedOrigins,
		AllowedHosts:        cfg.HTTP.AllowedHosts,
		Stateless:           cfg.HTTP.Stateless,
		SessionIdleTimeout:  idle(cfg.HTTP.SessionIdleTimeout),
		MaxBodyBytes:        cfg.HTTP.MaxBody,
		MaxSessions:         cfg.HTTP.MaxSessions,
		MaxSessionsPerToken: cfg.HTTP.MaxSessionsToken,
		Backends: func() []mcp.BackendStatus {
			var out []mcp.BackendStatus
			for _, h := range models.Hosts() {
				out = append(out, mcp.BackendStatus{URL: h.URL, Up: h.Up, Models: h.Models, Err: h.Err})
			}
			return out
		},
		Metrics: metrics,
		Logger:  log.With("component", "http"),
	}
}

// serveHTTP serves srv on --http until ctx is done, and logs where.
func serveHTTP(ctx context.Context, cfg *Config, srv *mcp.Server, opts *mcp.HTTPOptions, tokens *policy.Store, log *slog.Logger) error {
	auth := "none (loopback only)"
	switch {
	case tokens != nil:
		auth = fmt.Sprintf("scoped tokens (%d)", len(tokens.Current().Names()))
	case cfg.HTTP.Token != "":
		auth = "bearer token"
	}
	err := srv.ListenAndServe(ctx, cfg.HTTP.Addr, &mcp.ServeOptions{
		HTTP:            opts,
		Listen:          &mcp.ListenOptions{IdleTimeout: cfg.HTTP.IdleTimeout, MaxConns: cfg.HTTP.MaxConns},
		ShutdownTimeout: cfg.ShutdownTimeout,
		OnListen: func(addr net.Addr) {
			log.Info("membrane serving MCP over HTTP", "url", "http://"+addr.String()+mcp.DefaultPath,
				"version", versionString(), "auth", auth, "stateless", cfg.HTTP.Stateless, "sandbox", cfg.SandboxMode)
			for _, m := range opts.Mounts {
				if m.Prefix == lens.DefaultPrefix {
					how := "open it in a browser and log in with the token"
					if tokens == nil && cfg.HTTP.Token == "" {
						how = "open it in a browser (no login: no token is set, and only loopback clients are served)"
					}
					log.Info("membrane lens: "+how, "url", "http://"+addr.String()+m.Prefix)
				}
			}
			if cfg.HTTP.Stateless && !lensOn(cfg) && cfg.Observe.Lens == "auto" {
				log.Info("lens off: a stateless replica sees only its own calls; set " + cfg.set.NameOf("lens") + " on if the store is shared")
			}
		},
	})
	var le *mcp.ListenError
	switch {
	case errors.As(err, &le) && le.InUse():
		return fmt.Errorf("%s %s: another process already listens there; choose a free address (%s HOST:PORT, or ADDR=HOST:PORT make run): %w",
			cfg.set.NameOf("http"), cfg.HTTP.Addr, cfg.set.Lookup("http").FlagName(), le.Err)
	case errors.As(err, &le):
		return fmt.Errorf("%s %s: %w", cfg.set.NameOf("http"), cfg.HTTP.Addr, le.Err)
	}
	return err
}

func idle(d time.Duration) time.Duration {
	if d == 0 {
		return -1 // never
	}
	return d
}

const instructions = `membrane serves local models and a sandbox as tools.
- sh runs a shell command and python_run runs Python code in an isolated sandbox with no network; files in /workspace persist for this session.
- Model tools (named after Ollama models) answer prompts, embed text, or describe images with a local model.
The tool list changes as models are added or removed: list the tools again when told it changed, or when a tool is reported unknown.`
