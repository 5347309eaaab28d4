package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
)

func TestAgentsFileErrors(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"agents: [{name: coder}]", "model: missing"},
		{"agents: [{name: coder, model: m, max_step: 3}]", "max_steps"},
		{"agents: [{name: 'a b', model: m}]", "name"},
	} {
		_, err := loadConfig("membrane", []string{"--agents", writeFile(t, "a.yaml", c.file)}, env(nil), nil)
		if err == nil || !strings.Contains(err.Error(), "--agents") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming --agents and %q", c.file, err, c.want)
		}
	}
	if _, err := loadConfig("membrane", []string{"--agents", "/no/such/agents.yaml"}, env(nil), nil); err == nil || !strings.Contains(err.Error(), "--agents") {
		t.Errorf("a missing file: err = %v", err)
	}
	// Control: a good file loads, relative to the config file that names it.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "agents.yaml"), []byte("agents: [{name: coder, model: m}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "membrane.yaml")
	if err := os.WriteFile(conf, []byte("agents_file: agents.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig("membrane", []string{"--config", conf}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Agents.Specs) != 1 || cfg.Agents.Specs[0].Name != "coder" || cfg.Agents.File != filepath.Join(dir, "agents.yaml") {
		t.Fatalf("agents = %+v from %s", cfg.Agents.Specs, cfg.Agents.File)
	}
	if !slices.Contains(cfg.sandboxConfig().Hide, cfg.Agents.File) {
		t.Errorf("the sandbox does not hide the agents file")
	}
}

// The agent tools follow the file: a new agent appears, a removed one
// goes, and a broken file changes nothing.
func TestAgentsReload(t *testing.T) {
	file := writeFile(t, "agents.yaml", "agents: [{name: one, model: m, description: First}]")
	cfg, err := loadConfig("membrane", []string{"--agents", file, "--capabilities-card", "off"}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := calls.NewRouter(nil)
	log := slog.New(slog.DiscardHandler)
	a := newAgentTools(cfg, r, r, env(nil), log)
	if err := a.Use(cfg.Agents.Specs); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		var out []string
		for _, c := range r.List() {
			if c.Group == agent.ToolGroup {
				out = append(out, c.Name)
			}
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"agent_one"}) {
		t.Fatalf("agent tools = %v", got)
	}
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); watchAgents(ctx, cfg, a, log, tick) }()
	defer func() { cancel(); <-done }()
	settle := func() { tick <- time.Time{}; tick <- time.Time{}; tick <- time.Time{} }

	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("agents: [{name: two, model: m}]")
	settle()
	if got := names(); !slices.Equal(got, []string{"agent_two"}) {
		t.Fatalf("after a reload, agent tools = %v", got)
	}
	write("agents: [{name: three}]") // no model: refused whole
	settle()
	if got := names(); !slices.Equal(got, []string{"agent_two"}) {
		t.Fatalf("a broken file changed the agent tools to %v", got)
	}
}
