package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/ollama"
)

// agentTools serves the agents of the --agents file as tools agent_NAME,
// in the router group agent.ToolGroup, and keeps them in step with the
// file.
type agentTools struct {
	cfg    *Config
	router *calls.Router
	tools  agent.Tools // what the agents' calls go to: the served set
	getenv func(string) string
	log    *slog.Logger
}

func newAgentTools(cfg *Config, router *calls.Router, tools agent.Tools, getenv func(string) string, log *slog.Logger) *agentTools {
	return &agentTools{cfg: cfg, router: router, tools: tools, getenv: getenv, log: log}
}

// loadAgents reads and checks the --agents file.
func loadAgents(path string) ([]agents.Spec, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	specs, err := agents.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	return specs, data, nil
}

// set makes the agent tools exactly those of specs.
func (a *agentTools) set(specs []agents.Spec) error {
	cs := make([]calls.Call, 0, len(specs))
	for i := range specs {
		c, err := a.call(&specs[i])
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	_, err := a.router.Sync(agent.ToolGroup, cs)
	return err
}

// call turns one spec into its tool.
func (a *agentTools) call(s *agents.Spec) (calls.Call, error) {
	base := s.BaseURL
	if base == "" {
		base = a.defaultBaseURL()
	}
	var key string
	if s.APIKeyEnv != "" {
		key = a.getenv(s.APIKeyEnv)
	}
	log := a.log.With("agent", s.Name)
	model := openaicompat.New(&openaicompat.Options{
		BaseURL:         base,
		APIKey:          key,
		Model:           s.Model,
		Temperature:     s.Temperature,
		MaxTokens:       s.MaxTokens,
		ReasoningEffort: s.ReasoningEffort,
		ThinkTags:       true,
		Logger:          log,
	})
	sel, err := policy.NewSelector(s.Tools, s.ExcludeTools)
	if err != nil {
		return calls.Call{}, fmt.Errorf("agent %s: %w", s.Name, err)
	}
	extract := true // small local models write calls as text
	if s.ExtractTextCalls != nil {
		extract = *s.ExtractTextCalls
	}
	var approve func(string) bool
	if len(s.Approve) > 0 && !s.AllowUnattended() {
		approve = s.NeedsApproval
	}
	var card *agent.CardOptions
	if agent.CardMode(a.cfg.Agents.Card).Enabled(s.Model, base) {
		card = &agent.CardOptions{MaxTokens: a.cfg.Agents.CardTokens}
	}
	if len(s.Servers) > 0 {
		log.Warn("an agent tool uses membrane's own tools only; its mcp_servers are for the orchestrator", "servers", len(s.Servers))
	}
	return agent.NewCall(agent.ToolOptions{
		Name:        s.Name,
		Description: s.Description,
		Model:       model,
		Agent: agent.Options{
			Model:            s.Model,
			System:           s.System,
			MaxSteps:         s.Steps(),
			MaxParallel:      s.Parallel,
			ExtractTextCalls: extract,
			Logger:           log,
		},
		Tools:         a.tools,
		Allow:         allowFor(sel),
		NeedsApproval: approve,
		MaxDepth:      a.cfg.Agents.Depth,
		Timeout:       time.Duration(s.Timeout),
		Card:          card,
	})
}

// allowFor is the filter of an agent's tools for one caller: the agent's
// globs, and the caller's token scope.
func allowFor(sel *policy.Selector) func(ctx context.Context) func(calls.Call) bool {
	return func(ctx context.Context) func(calls.Call) bool {
		var scope *policy.Selector
		if p := policy.PrincipalFrom(ctx); p != nil && !p.Tools.All() {
			scope = p.Tools
		}
		if sel.All() && scope == nil {
			return nil
		}
		return func(c calls.Call) bool {
			return sel.Allows(c.Name) && (scope == nil || scope.Allows(c.Name))
		}
	}
}

// defaultBaseURL is the /v1 endpoint of membrane's first Ollama server.
func (a *agentTools) defaultBaseURL() string {
	host := ""
	if len(a.cfg.Ollama.Hosts) > 0 {
		host = a.cfg.Ollama.Hosts[0]
	}
	u, err := ollama.ParseHost(host)
	if err != nil {
		return openaicompat.LocalBaseURL
	}
	return strings.TrimSuffix(u.String(), "/") + "/v1"
}

// watch reloads the agents file at each tick, whole or not at all, by the
// rules of the config file's reloads.
func (a *agentTools) watch(ctx context.Context, data []byte, tick <-chan time.Time) {
	w := settings.NewFileWatcher(a.cfg.Agents.File, data, func(b []byte) error {
		specs, err := agents.Parse(b)
		if err != nil {
			return err
		}
		if err := a.set(specs); err != nil {
			a.log.Error("agents reloaded, but not all could be served", "err", err)
		}
		a.log.Info("agents reloaded", "file", a.cfg.Agents.File, "agents", len(specs))
		return nil
	}, a.log)
	w.What, w.Kept = "agents file", "agents"
	w.Run(ctx, tick)
}
