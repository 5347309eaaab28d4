package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/turns"
	"github.com/membrane-mcp/membrane/mcp"
)

// defaultAgent is the agent `serve` offers when no --agents file names
// any: the model and settings of the command line.
const defaultAgent = "default"

// serve runs `orchestrator serve`: the agents behind the OpenAI API on
// cfg.Serve.Addr until SIGTERM or Ctrl-C.
func serve(cfg *Config, specs []agents.Spec, data []byte, log *slog.Logger, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "orchestrator serve: "+format+"\n", args...)
		return 1
	}
	if err := mcp.CheckListen(cfg.Serve.Addr, cfg.Serve.Token); err != nil {
		var nt *mcp.NoTokenError
		if errors.As(err, &nt) {
			return fail("%v; set MEMBRANE_API_TOKEN (or --api-token-file) to serve beyond loopback", err)
		}
		return fail("--http: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	servers, err := cfg.servers(stderr)
	if err != nil {
		return fail("%v", err)
	}
	extra, err := extraServers(specs, servers, stderr)
	if err != nil {
		return fail("--agents %s: %v", cfg.AgentsFile, err)
	}
	servers = append(servers, extra...)
	router := calls.NewRouter(&calls.RouterOptions{DefaultConcurrency: -1})
	fl := mcp.NewFleet(router, servers, &mcp.FleetOptions{CallTimeout: cfg.CallTimeout, ClientName: "membrane-orchestrator", Logger: log, Advise: advise})
	if err := fl.Start(ctx); err != nil {
		fl.Close()
		if ctx.Err() != nil {
			return 130
		}
		return fail("%v", err)
	}
	defer fl.Close()

	if len(specs) == 0 {
		if cfg.Model == "" {
			mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			cfg.Model, err = defaultModel(mctx, cfg.modelClient(cfg.BaseURL, cfg.APIKey, nil, "", log))
			cancel()
			if err != nil {
				return fail("%v", modelAdvice(err))
			}
		}
		specs = []agents.Spec{cfg.flagAgent()}
	}
	cat := agents.NewCatalog(specs)
	bk := openaicompat.NewBackends(specs, &openaicompat.BackendsOptions{
		Tools: router,
		Model: func(spec agents.Spec) *openaicompat.Client {
			base, key := cfg.BaseURL, cfg.APIKey
			if spec.BaseURL != "" {
				base, key = spec.BaseURL, ""
			}
			if spec.APIKeyEnv != "" {
				key = os.Getenv(spec.APIKeyEnv)
			}
			return cfg.modelClient(base, key, spec.Temperature, spec.ReasoningEffort, log)
		},
		ServerOf: func(tool string) (string, bool) {
			info, ok := fl.Tool(tool)
			return info.Server, ok
		},
		ExtractTextCalls: func(spec agents.Spec) bool {
			c := *cfg
			if spec.BaseURL != "" {
				c.BaseURL, c.ExtractText = spec.BaseURL, nil
			}
			return c.extractText()
		},
		Card:       agent.CardMode(cfg.Card),
		CardTokens: cfg.CardTokens,
		CardGroup:  cardGroup,
	})
	cat.Subscribe(bk.Own)
	if data != nil {
		// Whole or nothing, as membrane reloads its config file; a turn
		// keeps the agent it began with.
		w := settings.NewFileWatcher(cfg.AgentsFile, data, func(b []byte) error {
			s, err := agents.Parse(b)
			if err != nil {
				return err
			}
			if !agents.SameServers(s, specs) {
				return errors.New("the agents' mcp_servers changed: restart orchestrator serve to connect them")
			}
			cat.Replace(s)
			log.Info("agents reloaded", "file", cfg.AgentsFile, "agents", len(s))
			return nil
		}, log)
		w.What, w.Kept = "agents file", "agents"
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		go w.Run(ctx, tick.C)
	}

	var convs openaicompat.Conversations
	if ts := turns.Open(cfg.Store, os.Getenv, log); ts != nil {
		defer ts.Close()
		convs = &openaicompat.StoreConversations{Store: ts.Store(), TTL: cfg.Serve.ConversationTTL, Max: cfg.Serve.MaxConversations}
	}
	api, err := openaicompat.NewServer(openaicompat.ServerOptions{
		Conversations:        convs,
		MaxConversationBytes: int(cfg.Serve.ConversationSize),
		Agents:               cat,
		Backend:              bk.Backend,
		TurnTimeout:          cfg.Timeout,
		MaxRequestBytes:      cfg.Serve.MaxRequest,
		TurnsPerToken:        cfg.Serve.TurnsPerToken,
		MaxTurns:             cfg.Serve.MaxTurns,
		Identity:             identity,
		Logger:               log,
	})
	if err != nil {
		return fail("%v", err)
	}
	guard, err := mcp.NewGuard(&mcp.GuardOptions{
		Token:          cfg.Serve.Token,
		AllowedOrigins: cfg.Serve.Origins,
		AllowedHosts:   cfg.Serve.Hosts,
		MaxBodyBytes:   cfg.Serve.MaxRequest,
		Reject:         openaicompat.WriteRefusal,
		Logger:         log,
	})
	if err != nil {
		return fail("%v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", guard.Protect(api))
	mux.Handle("/healthz", guard.Screen(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })))
	ln, err := net.Listen("tcp", cfg.Serve.Addr)
	if err != nil {
		return fail("--http %s: %v", cfg.Serve.Addr, err)
	}
	hs := mcp.NewHTTPServer(mux, nil)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(mcp.Listen(ln, nil)) }()
	// The address line is for people and scripts (port 0 picks one).
	fmt.Fprintf(stdout, "serving %d agents at http://%s/v1 (%s)\n", len(cat.Names()), ln.Addr(), joinNames(cat.Names()))
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fail("%v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	return 0
}

func joinNames(names []string) string {
	if len(names) > 8 {
		return fmt.Sprintf("%s, … %d more", joinNames(names[:8]), len(names)-8)
	}
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

// identity names a client by its bearer token, hashed: the token never
// sits in memory as a map key or in the store.
func identity(r *http.Request) string {
	if u, ok := mcp.UserFromContext(r.Context()); ok {
		return "user:" + u
	}
	h := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	return hex.EncodeToString(h[:8])
}

// flagAgent is the agent the command line describes.
func (c *Config) flagAgent() agents.Spec {
	s := agents.Spec{Name: defaultAgent, Description: "the model " + c.Model + " with the tools of the command line",
		Model: c.Model, System: c.System, Tools: c.Tools, ExcludeTools: c.ExcludeTools, MaxSteps: c.MaxSteps,
		Parallel: c.Parallel, Temperature: c.Temperature, ReasoningEffort: c.ReasoningEffort, Approve: c.Approve,
		ExtractTextCalls: c.ExtractText}
	if s.MaxSteps < 0 {
		s.MaxSteps = agents.MaxSteps
	}
	if c.Yes {
		s.Unattended = agents.Allow
	}
	return s
}

// modelClient returns the model client of an endpoint (the default one for
// an empty baseURL).
func (c *Config) modelClient(baseURL, key string, temp *float64, effort string, log *slog.Logger) *openaicompat.Client {
	if baseURL == "" {
		baseURL = defaultBaseURL()
	}
	return openaicompat.New(&openaicompat.Options{BaseURL: baseURL, APIKey: key, Temperature: temp,
		ReasoningEffort: effort, ThinkTags: true, Logger: log})
}
