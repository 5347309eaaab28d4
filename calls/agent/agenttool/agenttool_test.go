package agenttool_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/agenttool"
)

func agentNames(r *calls.Router) []string {
	var out []string
	for _, c := range r.List() {
		if c.Group == agent.ToolGroup {
			out = append(out, c.Name)
		}
	}
	return out
}

// Use and Load make the agent tools exactly those of the specs; a file
// that does not parse, or a spec that cannot be served, changes nothing.
func TestSetFollowsSpecs(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	set := agenttool.New(r, &agenttool.Options{Tools: r, Card: agent.CardModeOff})
	if err := set.Load([]byte("agents: [{name: one, model: m, description: First}]")); err != nil {
		t.Fatal(err)
	}
	if got := agentNames(r); !slices.Equal(got, []string{"agent_one"}) {
		t.Fatalf("agent tools = %v", got)
	}
	c, _ := r.Lookup("agent_one")
	if !strings.Contains(c.Description, "First") {
		t.Errorf("description = %q", c.Description)
	}
	if err := set.Load([]byte("agents: [{name: two, model: m}, {name: three, model: m}]")); err != nil {
		t.Fatal(err)
	}
	if got := agentNames(r); !slices.Equal(got, []string{"agent_three", "agent_two"}) && !slices.Equal(got, []string{"agent_two", "agent_three"}) {
		t.Fatalf("after a second file, agent tools = %v", got)
	}
	if err := set.Load([]byte("agents: [{name: four}]")); err == nil || !strings.Contains(err.Error(), "model") {
		t.Errorf("a spec without a model: err = %v", err)
	}
	bad := []agents.Spec{{Name: "five", Model: "m", Tools: []string{"[unclosed"}}}
	if err := set.Use(bad); err == nil || !strings.Contains(err.Error(), "agent five") {
		t.Errorf("a bad tools glob: err = %v", err)
	}
	if got := agentNames(r); len(got) != 2 {
		t.Errorf("refused specs changed the tools to %v", got)
	}
	if err := set.Use(nil); err != nil || len(agentNames(r)) != 0 {
		t.Errorf("no specs: err %v, tools %v", err, agentNames(r))
	}
}

// A zero Options is safe: the agent is served, on the local endpoint.
func TestZeroOptions(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	if err := agenttool.New(r, nil).Use([]agents.Spec{{Name: "z", Model: "m", APIKeyEnv: "SOME_KEY"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup("agent_z"); !ok {
		t.Fatal("agent_z not served")
	}
}
