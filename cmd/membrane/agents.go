package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/agenttool"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/ollama"
)

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

// newAgentTools serves the agents of the --agents file as tools agent_NAME
// in router, calling tools (the served set); an agent without a base_url
// talks to the first Ollama host's /v1.
func newAgentTools(cfg *Config, router *calls.Router, tools agent.Tools, getenv func(string) string, log *slog.Logger) *agenttool.Set {
	host := ""
	if len(cfg.Ollama.Hosts) > 0 {
		host = cfg.Ollama.Hosts[0]
	}
	base, _ := ollama.OpenAIBaseURL(host) // "" on a bad host: openaicompat's default
	return agenttool.New(router, &agenttool.Options{
		Tools: tools, BaseURL: base, Getenv: getenv,
		Card: agent.CardMode(cfg.Agents.Card), CardTokens: cfg.Agents.CardTokens,
		MaxDepth: cfg.Agents.Depth, File: cfg.Agents.File, Logger: log,
	})
}

// watchAgents reloads the agents file at each tick, whole or not at all,
// by the rules of the config file's reloads.
func watchAgents(ctx context.Context, cfg *Config, set *agenttool.Set, log *slog.Logger, tick <-chan time.Time) {
	w := settings.NewFileWatcher(cfg.Agents.File, cfg.Agents.Data, set.Load, log)
	w.What, w.Kept = "agents file", "agents"
	w.Run(ctx, tick)
}
