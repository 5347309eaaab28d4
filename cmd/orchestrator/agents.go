package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/mcp"
)

// loadAgents reads the --agents file: its agents, and the bytes they came
// from (for the reload watcher). No file means no agents.
func (c *Config) loadAgents() ([]agents.Spec, []byte, error) {
	if c.AgentsFile == "" {
		return nil, nil, nil
	}
	data, err := os.ReadFile(c.AgentsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--agents: %v", err)
	}
	specs, err := agents.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("--agents %s: %w", c.AgentsFile, err)
	}
	return specs, data, nil
}

// useAgent makes the agent named c.Agent the one the REPL and one-shot run:
// its settings fill every setting not given by a flag or a variable.
func (c *Config) useAgent(set *settings.Set, specs []agents.Spec) error {
	if c.Agent == "" {
		return nil
	}
	if c.AgentsFile == "" {
		return set.Errorf("agent", "needs --agents FILE, the file that defines it")
	}
	cat := agents.NewCatalog(specs)
	spec, ok := cat.Get(c.Agent)
	if !ok {
		names := cat.Names()
		msg := fmt.Sprintf("no agent %q in %s", c.Agent, c.AgentsFile)
		if near := settings.Nearest(c.Agent, names); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		} else if len(names) > 0 {
			msg += "; its agents are: " + strings.Join(names, ", ")
		}
		return set.Errorf("agent", "%s", msg)
	}
	given := func(key string) bool { return set.SourceOf(key) != settings.FromDefault }
	if !given("model") {
		c.Model = spec.Model
	}
	if !given("base-url") && spec.BaseURL != "" {
		c.BaseURL = spec.BaseURL
		c.APIKey = ""
		if spec.APIKeyEnv != "" {
			c.APIKey = strings.TrimSpace(os.Getenv(spec.APIKeyEnv))
		}
	}
	if !given("system") {
		c.System = spec.System
	}
	if !given("max-steps") {
		c.MaxSteps = spec.Steps()
	}
	if !given("parallel") {
		c.Parallel = spec.Parallel
	}
	if !given("temperature") && spec.Temperature != nil {
		c.Temperature = spec.Temperature
	}
	if !given("reasoning-effort") && spec.ReasoningEffort != "" {
		c.ReasoningEffort = spec.ReasoningEffort
	}
	if !given("timeout") && spec.Timeout > 0 {
		c.Timeout = time.Duration(spec.Timeout)
	}
	if !given("extract-text-calls") && spec.ExtractTextCalls != nil {
		c.ExtractText = spec.ExtractTextCalls
	}
	if !given("tools") {
		c.Tools = spec.Tools
	}
	if !given("exclude-tools") {
		c.ExcludeTools = spec.ExcludeTools
	}
	if !given("approve") {
		c.Approve = spec.Approve
		// Without a terminal, the agent's rule for unattended calls holds.
		if !given("yes") {
			c.Yes = spec.AllowUnattended()
		}
	}
	c.agentServers = spec.Servers
	return nil
}

// extraServers turns the agents' MCP servers into servers to connect, one
// per name: agents may share a server by giving the same entry, but one
// name with two different entries is an error, as is a name taken by a
// server of the command line.
func extraServers(specs []agents.Spec, taken []mcp.FleetServer, serverLog io.Writer) ([]mcp.FleetServer, error) {
	seen := map[string]agents.Server{}
	owner := map[string]string{}
	var out []mcp.FleetServer
	for _, spec := range specs {
		for _, name := range slices.Sorted(maps.Keys(spec.Servers)) {
			sc := spec.Servers[name]
			if slices.ContainsFunc(taken, func(s mcp.FleetServer) bool { return s.Name == name }) {
				return nil, fmt.Errorf("agent %s: mcp_servers.%s: the name is taken by a server of the command line; rename it", spec.Name, name)
			}
			if prev, ok := seen[name]; ok {
				if !reflect.DeepEqual(prev, sc) {
					return nil, fmt.Errorf("agent %s: mcp_servers.%s differs from agent %s's server of that name; give one of them another name", spec.Name, name, owner[name])
				}
				continue
			}
			seen[name], owner[name] = sc, spec.Name
			m := mcp.ServerConfig{Command: sc.Command, Args: sc.Args, Env: sc.Env, Cwd: sc.Cwd, URL: sc.URL, Headers: sc.Headers}
			if m.URL != "" {
				out = append(out, mcp.HTTPFleetServer(name, m.URL, "", m.Headers))
			} else {
				out = append(out, mcp.CommandFleetServer(name, func() *exec.Cmd { return m.Cmd(serverLog) }))
			}
		}
	}
	return out, nil
}
