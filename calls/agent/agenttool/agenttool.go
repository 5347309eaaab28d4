// Package agenttool serves the agents of an agents file (package agents)
// as MCP tools agent_NAME: each is an agent.NewCall driving its model
// through an OpenAI-compatible endpoint (openaicompat), whose tool calls go
// to the served set in the caller's session. A Set keeps the tools in the
// router's agent.ToolGroup in step with the file.
package agenttool

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/calls/policy"
)

// Options configure a Set. The zero value is safe: agents that call no
// tools, on openaicompat.LocalBaseURL, with no API keys, no card in
// CardModeAuto's judgement, and the depth agent.ToolOptions defaults to.
type Options struct {
	// Tools is what the agents' calls go to: the served set (a router or a
	// policy view), so an agent sees what its caller may call.
	Tools agent.Tools
	// BaseURL is the endpoint of an agent whose spec gives none; "" is
	// openaicompat.LocalBaseURL.
	BaseURL string
	// Getenv reads the variable an agent's api_key_env names; nil reads
	// none, and the agents go without a key.
	Getenv func(string) string
	// Card decides which agents get a capabilities card; CardTokens is its
	// budget (0: the card's default).
	Card       agent.CardMode
	CardTokens int
	// MaxDepth bounds agents calling agents (agent.ToolOptions.MaxDepth).
	MaxDepth int
	// File names the agents file in Load's log lines.
	File string
	// Logger gets each agent's log lines, with its name; nil discards them.
	Logger *slog.Logger
}

// Set is the agent tools of a router: Use makes them those of a list of
// specs, Load those of an agents file's contents.
type Set struct {
	router *calls.Router
	opts   Options
	log    *slog.Logger
}

// New returns the agent tools of router, none yet. A nil opts is the zero
// Options.
func New(router *calls.Router, opts *Options) *Set {
	s := &Set{router: router}
	if opts != nil {
		s.opts = *opts
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Use makes the agent tools exactly those of specs, whole or not at all:
// a spec that cannot be served leaves the tools as they were.
func (s *Set) Use(specs []agents.Spec) error {
	cs := make([]calls.Call, 0, len(specs))
	for i := range specs {
		c, err := s.call(&specs[i])
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	_, err := s.router.Sync(agent.ToolGroup, cs)
	return err
}

// Load parses an agents file's contents and serves its agents. It is a
// reload's apply step: a file that does not parse changes nothing and is
// the error; one that parses but cannot all be served is logged and keeps
// the tools as they were, since the file itself was read.
func (s *Set) Load(data []byte) error {
	specs, err := agents.Parse(data)
	if err != nil {
		return err
	}
	if err := s.Use(specs); err != nil {
		s.log.Error("agents reloaded, but not all could be served", "err", err)
	}
	s.log.Info("agents reloaded", "file", s.opts.File, "agents", len(specs))
	return nil
}

// call turns one spec into its tool.
func (s *Set) call(spec *agents.Spec) (calls.Call, error) {
	base := spec.BaseURL
	if base == "" {
		base = s.opts.BaseURL
	}
	if base == "" {
		base = openaicompat.LocalBaseURL
	}
	var key string
	if spec.APIKeyEnv != "" && s.opts.Getenv != nil {
		key = s.opts.Getenv(spec.APIKeyEnv)
	}
	log := s.log.With("agent", spec.Name)
	model := openaicompat.New(&openaicompat.Options{
		BaseURL:         base,
		APIKey:          key,
		Model:           spec.Model,
		Temperature:     spec.Temperature,
		MaxTokens:       spec.MaxTokens,
		ReasoningEffort: spec.ReasoningEffort,
		ThinkTags:       true,
		Logger:          log,
	})
	sel, err := policy.NewSelector(spec.Tools, spec.ExcludeTools)
	if err != nil {
		return calls.Call{}, fmt.Errorf("agent %s: %w", spec.Name, err)
	}
	extract := true // small local models write calls as text
	if spec.ExtractTextCalls != nil {
		extract = *spec.ExtractTextCalls
	}
	var approve func(string) bool
	if len(spec.Approve) > 0 && !spec.AllowUnattended() {
		approve = spec.NeedsApproval
	}
	var card *agent.CardOptions
	if s.opts.Card.Enabled(spec.Model, base) {
		card = &agent.CardOptions{MaxTokens: s.opts.CardTokens}
	}
	if len(spec.Servers) > 0 {
		log.Warn("an agent tool uses membrane's own tools only; its mcp_servers are for the orchestrator", "servers", len(spec.Servers))
	}
	return agent.NewCall(agent.ToolOptions{
		Name:        spec.Name,
		Description: spec.Description,
		Model:       model,
		Agent: agent.Options{
			Model:            spec.Model,
			System:           spec.System,
			MaxSteps:         spec.Steps(),
			MaxParallel:      spec.Parallel,
			ExtractTextCalls: extract,
			Logger:           log,
		},
		Tools:         s.opts.Tools,
		Allow:         allowFor(sel),
		NeedsApproval: approve,
		MaxDepth:      s.opts.MaxDepth,
		Timeout:       time.Duration(spec.Timeout),
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
