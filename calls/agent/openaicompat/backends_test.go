package openaicompat_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

func listNames(t agent.Tools) []string {
	var out []string
	for _, c := range t.List() {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

// TestBackendsServersOfOtherAgentsHidden: an agent sees the tools of the
// command line's servers and of the servers it names, never those of a
// server only another agent names; its globs narrow that further, and a
// call of a hidden tool is refused as unknown (with a visible control).
func TestBackendsServersOfOtherAgentsHidden(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	owner := map[string]string{"membrane__sh": "membrane", "a__x": "a", "b__y": "b"}
	for name := range owner {
		c := mcptest.EchoCall(name)
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	specs := []agents.Spec{
		{Name: "one", Model: "m", Servers: map[string]agents.Server{"a": {Command: "a"}}},
		{Name: "two", Model: "m", Servers: map[string]agents.Server{"b": {Command: "b"}}},
		{Name: "none", Model: "m"},
		{Name: "narrow", Model: "m", Tools: []string{"*__x", "membrane__*"}, ExcludeTools: []string{"membrane__*"}, Servers: map[string]agents.Server{"a": {Command: "a"}}},
	}
	made := 0
	bk := openaicompat.NewBackends(specs, &openaicompat.BackendsOptions{
		Tools: r,
		Model: func(agents.Spec) *openaicompat.Client {
			made++
			return openaicompat.New(&openaicompat.Options{BaseURL: "http://127.0.0.1:1/v1"})
		},
		ServerOf: func(tool string) (string, bool) { s, ok := owner[tool]; return s, ok },
		Card:     agent.CardModeOff,
	})
	for spec, want := range map[int][]string{
		0: {"a__x", "membrane__sh"},
		1: {"b__y", "membrane__sh"},
		2: {"membrane__sh"},
		3: {"a__x"},
	} {
		be, err := bk.Backend(specs[spec])
		if err != nil {
			t.Fatal(err)
		}
		if got := listNames(be.Tools); !slices.Equal(got, want) {
			t.Errorf("agent %s sees %v, want %v", specs[spec].Name, got, want)
		}
		if be.Capabilities != nil {
			t.Errorf("agent %s has a card with the card off", specs[spec].Name)
		}
	}
	be, _ := bk.Backend(specs[0])
	if _, err := be.Tools.Call(t.Context(), "b__y", &calls.Request{}); !errors.Is(err, calls.ErrUnknownCall) {
		t.Errorf("agent one called another agent's server's tool: %v", err)
	}
	if res, err := be.Tools.Call(t.Context(), "a__x", &calls.Request{}); err != nil || res.IsError {
		t.Errorf("agent one's own server's tool: %v %v", res, err)
	}

	// A reload that drops agent two: its server is nobody's, so all see it.
	bk.Own(specs[:1])
	be, _ = bk.Backend(specs[2])
	if got := listNames(be.Tools); !slices.Equal(got, []string{"b__y", "membrane__sh"}) {
		t.Errorf("after the reload, agent none sees %v", got)
	}

	// Model clients are made once per agent, and again when it changes.
	made = 0
	bk.Backend(specs[0])
	bk.Backend(specs[0])
	changed := specs[0]
	changed.System = "be brief"
	bk.Backend(changed)
	if made != 1 {
		t.Errorf("%d model clients made for one unchanged then one changed agent, want 1", made)
	}
}

// TestBackendsExtractTextCalls: the agent's own setting wins, then the
// program's default; the card follows the mode.
func TestBackendsExtractTextCalls(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	var asked []string
	bk := openaicompat.NewBackends(nil, &openaicompat.BackendsOptions{
		Tools: calls.NewRouter(nil),
		Model: func(agents.Spec) *openaicompat.Client {
			return openaicompat.New(&openaicompat.Options{BaseURL: "http://127.0.0.1:1/v1"})
		},
		ExtractTextCalls: func(s agents.Spec) bool { asked = append(asked, s.Name); return true },
		Card:             agent.CardModeOn,
	})
	for _, c := range []struct {
		spec agents.Spec
		want bool
	}{
		{agents.Spec{Name: "own-no", Model: "m", ExtractTextCalls: &no}, false},
		{agents.Spec{Name: "own-yes", Model: "m", ExtractTextCalls: &yes}, true},
		{agents.Spec{Name: "default", Model: "m"}, true},
	} {
		be, err := bk.Backend(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if be.ExtractTextCalls != c.want {
			t.Errorf("%s: ExtractTextCalls %v, want %v", c.spec.Name, be.ExtractTextCalls, c.want)
		}
		if be.Capabilities == nil {
			t.Errorf("%s: no card with the card on", c.spec.Name)
		}
	}
	if !slices.Equal(asked, []string{"default"}) {
		t.Errorf("the default was asked for %v, want only the agent without a setting", asked)
	}

	// The zero options refuse, rather than panic.
	if _, err := openaicompat.NewBackends(nil, nil).Backend(agents.Spec{Name: "x"}); err == nil {
		t.Error("Backend with no model or tools configured succeeded")
	}
}

// TestStoreConversations: a saved conversation loads back for its owner
// and agent only.
func TestStoreConversations(t *testing.T) {
	t.Parallel()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &openaicompat.StoreConversations{Store: st}
	msgs := []agent.Message{{Role: agent.RoleUser, Content: "hi"}, {Role: agent.RoleAssistant, Content: "hello"}}
	if err := c.Save(t.Context(), "alice", "coder", "c1", msgs); err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(t.Context(), "alice", "coder", "c1")
	if err != nil || len(got) != 2 || got[1].Content != "hello" {
		t.Fatalf("Load = %v, %v", got, err)
	}
	for _, who := range [][2]string{{"bob", "coder"}, {"alice", "other"}} {
		if got, err := c.Load(t.Context(), who[0], who[1], "c1"); err != nil || got != nil {
			t.Errorf("%s/%s read alice's conversation: %v %v", who[0], who[1], got, err)
		}
	}
}
