package agents_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent/agents"
)

const good = `
# membrane's own settings may sit beside the agents
http:
  addr: 127.0.0.1:8765
agents:
  - name: coder
    description: writes and tests small scripts
    system: You write POSIX shell.
    model: qwen3:0.6b
    temperature: 0.2
    max_tokens: 512
    reasoning_effort: low
    tools: [sh, python_run]
    exclude_tools: ["ollama_*"]
    mcp_servers:
      files:
        command: mcp-files
        args: [--root, /tmp]
      web:
        url: http://127.0.0.1:9000/mcp
        headers: {X-Team: a}
    max_steps: 8
    timeout: 2m
    parallel: 2
    approve: [python_run]
    unattended: allow
    extract_text_calls: false
  - name: Helper
    model: llama3.2
    base_url: https://api.example.com/v1
    api_key_env: HELPER_KEY
    timeout: 90
`

func TestParseGood(t *testing.T) {
	specs, err := agents.Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("got %d agents, want 2", len(specs))
	}
	c := specs[0]
	off := false
	temp := 0.2
	want := agents.Spec{
		Name: "coder", Description: "writes and tests small scripts", System: "You write POSIX shell.",
		Model: "qwen3:0.6b", Temperature: &temp, MaxTokens: 512, ReasoningEffort: "low",
		Tools: []string{"sh", "python_run"}, ExcludeTools: []string{"ollama_*"},
		Servers: map[string]agents.Server{
			"files": {Command: "mcp-files", Args: []string{"--root", "/tmp"}},
			"web":   {URL: "http://127.0.0.1:9000/mcp", Headers: map[string]string{"X-Team": "a"}},
		},
		MaxSteps: 8, Timeout: agents.Duration(2 * time.Minute), Parallel: 2,
		Approve: []string{"python_run"}, Unattended: agents.Allow, ExtractTextCalls: &off,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("coder:\n got %+v\nwant %+v", c, want)
	}
	h := specs[1]
	if h.Timeout != agents.Duration(90*time.Second) || h.Steps() != agents.DefaultMaxSteps || h.AllowUnattended() || h.ExtractTextCalls != nil {
		t.Errorf("Helper defaults: %+v", h)
	}
	if !c.NeedsApproval("python_run") || c.NeedsApproval("sh") {
		t.Error("NeedsApproval: python_run should need approval, sh not")
	}
	if !c.AllowUnattended() {
		t.Error("coder says unattended: allow")
	}
}

func TestParseJSON(t *testing.T) {
	specs, err := agents.Parse([]byte("{\n\t\"agents\": [{\"name\": \"a\", \"model\": \"m\", \"timeout\": \"5s\"}]\n}"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 1 || specs[0].Name != "a" || specs[0].Timeout != agents.Duration(5*time.Second) {
		t.Fatalf("got %+v", specs)
	}
}

func TestParseNone(t *testing.T) {
	for _, in := range []string{"", "   \n", "null", "http: {addr: x}", "agents:", "agents: []"} {
		specs, err := agents.Parse([]byte(in))
		if err != nil || len(specs) != 0 {
			t.Errorf("%q: got %v, %v; want no agents and no error", in, specs, err)
		}
	}
}

// Each bad file is refused with an error that names what is wrong (and,
// where it can, the line); the control beside each is accepted.
func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"not yaml", "agents: [", []string{"not YAML or JSON"}},
		{"two docs", "agents: []\n---\nagents: []", []string{"more than one YAML document"}},
		{"scalar file", "hello", []string{"must be a mapping"}},
		{"agents not list", "agents: {name: a}", []string{"line 1", "must be a list"}},
		{"agent not mapping", "agents: [coder]", []string{"agents[0]", "must be a mapping"}},
		{"unknown key", "agents:\n  - name: a\n    model: m\n    tols: [sh]", []string{"line 4", "agent a", "tols", "did you mean tools?"}},
		{"unknown server key", "agents:\n  - name: a\n    model: m\n    mcp_servers:\n      s: {comand: x}", []string{"line 5", "mcp_servers.s.comand", "did you mean mcp_servers.s.command?"}},
		{"key twice", "agents:\n  - name: a\n    model: m\n    model: n", []string{"line 4", "given twice"}},
		{"no name", "agents:\n  - model: m", []string{"line 2", "agents[0]", "name: missing"}},
		{"bad name", "agents:\n  - name: 'a b'\n    model: m", []string{"agents[0]", `"a b" must be 1 to 48`}},
		{"dup name", "agents:\n  - {name: a, model: m}\n  - {name: A, model: m}", []string{"line 3", "used by agents[0]"}},
		{"no model", "agents:\n  - name: a", []string{"agent a: model: missing"}},
		{"bad url", "agents:\n  - {name: a, model: m, base_url: 'ftp://x'}", []string{"base_url", "not an http or https URL"}},
		{"url password hidden", "agents:\n  - {name: a, model: m, base_url: 'ftp://u:secret@x'}", []string{"xxxxx"}},
		{"key not env", "agents:\n  - {name: a, model: m, api_key_env: 'sk-123'}", []string{"api_key_env", "not an environment variable name"}},
		{"temperature", "agents:\n  - {name: a, model: m, temperature: 3}", []string{"temperature", "from 0 to 2"}},
		{"effort", "agents:\n  - {name: a, model: m, reasoning_effort: max}", []string{"reasoning_effort"}},
		{"glob", "agents:\n  - {name: a, model: m, tools: ['[']}", []string{"tools", "not a valid glob"}},
		{"empty glob", "agents:\n  - {name: a, model: m, approve: ['']}", []string{"approve", "is empty"}},
		{"steps", "agents:\n  - {name: a, model: m, max_steps: -1}", []string{"max_steps", "from 1 to 1000"}},
		{"timeout", "agents:\n  - {name: a, model: m, timeout: soon}", []string{"agent a", "want a duration"}},
		{"neg timeout", "agents:\n  - {name: a, model: m, timeout: -5s}", []string{"must not be negative"}},
		{"unattended", "agents:\n  - {name: a, model: m, unattended: ask}", []string{"unattended", "refuse (the default) or allow"}},
		{"server both", "agents:\n  - {name: a, model: m, mcp_servers: {s: {command: x, url: 'http://h'}}}", []string{"mcp_servers.s", "not both"}},
		{"server none", "agents:\n  - {name: a, model: m, mcp_servers: {s: {}}}", []string{"mcp_servers.s", "either command"}},
		{"server name", "agents:\n  - {name: a, model: m, mcp_servers: {'a b': {command: x}}}", []string{"server name must be"}},
		{"type", "agents:\n  - {name: a, model: m, tools: sh}", []string{"agent a", "into a list of text"}},
		{"nul", "agents:\n  - {name: a, model: m, system: \"x\\0y\"}", []string{"system", "NUL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := agents.Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted %q", tc.in)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	// The control: the smallest valid agent.
	if _, err := agents.Parse([]byte("agents:\n  - {name: a, model: m}")); err != nil {
		t.Fatalf("control refused: %v", err)
	}
}

func TestValidateTypedErrors(t *testing.T) {
	err := agents.Validate([]agents.Spec{{Name: "a"}, {Name: "b", Model: "m", Parallel: -1}})
	var ae *agents.Error
	if !errors.As(err, &ae) {
		t.Fatalf("%v is not an *agents.Error", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 2 {
		t.Errorf("want both problems reported, got %d: %v", n, err)
	}
	if err := agents.Validate(make([]agents.Spec, agents.MaxAgents+1)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("too many agents: %v", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	specs, err := agents.Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	b, err := agents.Encode(specs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := agents.Parse(b)
	if err != nil {
		t.Fatalf("Parse(Encode): %v\n%s", err, b)
	}
	if !reflect.DeepEqual(specs, again) {
		t.Errorf("round trip changed the agents:\n%s", b)
	}
}

func TestFileTooBig(t *testing.T) {
	big := bytes.Repeat([]byte("#"), agents.MaxFileBytes+1)
	if _, err := agents.Parse(big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("got %v", err)
	}
}

func TestCatalog(t *testing.T) {
	c := agents.NewCatalog([]agents.Spec{{Name: "Coder", Model: "m"}})
	if s, ok := c.Get("coder"); !ok || s.Name != "Coder" {
		t.Fatalf("Get ignores case: %v %v", s, ok)
	}
	if _, ok := c.Get("other"); ok {
		t.Fatal("found an agent that is not there")
	}
	var got [][]agents.Spec
	c.Subscribe(func(s []agents.Spec) { got = append(got, s) })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				l := c.List()
				if len(l) != 1 || (l[0].Name != "Coder" && l[0].Name != "other") {
					t.Errorf("a reader saw %v", l)
					return
				}
			}
		})
	}
	c.Replace([]agents.Spec{{Name: "other", Model: "m"}})
	wg.Wait()
	if _, ok := c.Get("coder"); ok {
		t.Error("the replaced agent is still there")
	}
	if len(got) != 1 || got[0][0].Name != "other" {
		t.Errorf("subscriber got %v", got)
	}
}
