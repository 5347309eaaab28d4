package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// The agents of agentsFile, each on a scripted model of the real test
// Ollama: writer writes a file in the workspace with sh; recurse asks for
// itself and for writer at once; sleeper runs a long sleep.
const agentsFile = `
agents:
  - name: writer
    description: Writes files with sh
    model: writer
    tools: [sh, python_run]
  - name: recurse
    model: recurse
  - name: sleeper
    model: sleeper
    tools: [sh]
    approve: [python_run]
`

const sleepMarker = "419.25"

// progressLog collects the progress notifications a client receives.
type progressLog struct {
	mu   sync.Mutex
	msgs map[any][]string
}

func (p *progressLog) handle(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.msgs == nil {
		p.msgs = map[any][]string{}
	}
	p.msgs[req.Params.ProgressToken] = append(p.msgs[req.Params.ProgressToken], req.Params.Message)
}

func (p *progressLog) of(tok string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs[tok])
}

func startAgents(t *testing.T, depth string, extra ...string) (*sdk.ClientSession, *progressLog) {
	t.Helper()
	bin := binary(t)
	srv := ollamatest.Start(t)
	srv.Create(t, "writer", ollamatest.ScriptedModel(ollamatest.Script{
		Calls:  []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo written-by-the-agent > from-agent.txt && echo done"}`}},
		Answer: " I wrote from-agent.txt.",
	}))
	srv.Create(t, "recurse", ollamatest.ScriptedModel(ollamatest.Script{
		Calls:  []ollamatest.ToolCall{{Name: "agent_recurse", Args: `{"task":"again"}`}, {Name: "agent_writer", Args: `{"task":"write it"}`}},
		Answer: " Recursion handled.",
	}))
	srv.Create(t, "sleeper", ollamatest.ScriptedModel(ollamatest.Script{
		Calls:  []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"sleep ` + sleepMarker + `"}`}},
		Answer: " Slept.",
	}))
	file := filepath.Join(t.TempDir(), "agents.yaml")
	if err := os.WriteFile(file, []byte(agentsFile), 0o600); err != nil {
		t.Fatal(err)
	}
	prog := &progressLog{}
	cs, _, _ := launch(t, bin, append([]string{"--ollama-host", srv.URL, "--agents", file, "--agent-depth", depth}, extra...),
		&sdk.ClientOptions{ProgressNotificationHandler: prog.handle})
	t.Cleanup(func() { cs.Close() })
	return cs, prog
}

type agentResult struct {
	Agent  string `json:"agent"`
	Answer string `json:"answer"`
	Steps  int    `json:"steps"`
	Calls  []struct {
		Step    int    `json:"step"`
		Tool    string `json:"tool"`
		OK      bool   `json:"ok"`
		Summary string `json:"summary"`
	} `json:"calls"`
	Stopped string `json:"stopped"`
}

func callAgent(t *testing.T, ctx context.Context, cs *sdk.ClientSession, name, tok string) (*sdk.CallToolResult, agentResult, error) {
	t.Helper()
	p := &sdk.CallToolParams{Name: name, Arguments: map[string]any{"task": "do it"}}
	p.SetProgressToken(tok)
	res, err := cs.CallTool(ctx, p)
	var out agentResult
	if err == nil && res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("structured content %s: %v", b, err)
		}
	}
	return res, out, err
}

// TestAgentToolEndToEnd calls an agent tool of the real binary from a
// go-sdk client: progress arrives per step, the answer and its summary
// come back, and the file the agent wrote with sh is in the caller's
// workspace.
func TestAgentToolEndToEnd(t *testing.T) {
	cs, prog := startAgents(t, "1")
	var tool *sdk.Tool
	for tl, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if tl.Name == "agent_writer" {
			tool = tl
		}
	}
	if tool == nil || tool.OutputSchema == nil || !strings.HasPrefix(tool.Description, "Writes files with sh.") {
		t.Fatalf("agent_writer tool = %+v", tool)
	}
	// Control: the file is not there before the agent runs.
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "test -e from-agent.txt && echo present || echo absent"})
	sandboxWorks(t, res, text)
	if res.IsError || !strings.Contains(text, "stdout:\nabsent\n") {
		t.Fatalf("before the agent ran, the file test = %q", text)
	}

	res, out, err := callAgent(t, t.Context(), cs, "agent_writer", "w1")
	if err != nil || res.IsError {
		t.Fatalf("agent_writer = %v, %q", err, mcptest.TextOf(res))
	}
	if out.Answer != "I wrote from-agent.txt." || out.Steps != 2 || len(out.Calls) != 1 || out.Calls[0].Tool != "sh" || !out.Calls[0].OK || !strings.Contains(out.Calls[0].Summary, "done") {
		t.Fatalf("structured result = %+v", out)
	}
	if txt := mcptest.TextOf(res); !strings.HasPrefix(txt, "I wrote from-agent.txt.\n\n[writer: 2 steps, 1 tool call]") {
		t.Fatalf("text = %q", txt)
	}
	msgs := prog.of("w1")
	for _, want := range []string{"step 1: thinking", "step 1: sh {", "step 1: sh ok", "step 2: thinking"} {
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, want) }) {
			t.Fatalf("progress %q lacks %q", msgs, want)
		}
	}
	// The caller's own sh sees what the agent wrote.
	res, text = mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "cat from-agent.txt"})
	if res.IsError || !strings.Contains(text, "stdout:\nwritten-by-the-agent\n") {
		t.Fatalf("after the agent ran, cat = %q (isError %v)", text, res.IsError)
	}

	// Recursion: at depth 1 the agent is offered neither itself nor
	// writer; both calls come back to it refused.
	res, out, err = callAgent(t, t.Context(), cs, "agent_recurse", "r1")
	if err != nil || res.IsError {
		t.Fatalf("agent_recurse = %v, %q", err, mcptest.TextOf(res))
	}
	if len(out.Calls) != 2 || out.Calls[0].OK || out.Calls[1].OK || !strings.Contains(out.Calls[0].Summary, "unknown tool") || out.Answer != "Recursion handled." {
		t.Fatalf("recursion at depth 1 = %+v", out)
	}
}

// TestAgentToolNesting: with --agent-depth 2 an agent may call another
// agent (writer runs, nested, in the same workspace) but never itself.
func TestAgentToolNesting(t *testing.T) {
	cs, _ := startAgents(t, "2")
	res, out, err := callAgent(t, t.Context(), cs, "agent_recurse", "r2")
	if err != nil || res.IsError {
		t.Fatalf("agent_recurse = %v, %q", err, mcptest.TextOf(res))
	}
	if len(out.Calls) != 2 || out.Calls[0].Tool != "agent_recurse" || out.Calls[0].OK || !strings.Contains(out.Calls[0].Summary, "unknown tool") {
		t.Fatalf("the agent's call of itself = %+v", out)
	}
	if out.Calls[1].Tool != "agent_writer" || !out.Calls[1].OK || !strings.Contains(out.Calls[1].Summary, "I wrote from-agent.txt.") {
		t.Fatalf("the agent's call of writer = %+v", out)
	}
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "cat from-agent.txt"})
	sandboxWorks(t, res, text)
	if res.IsError || !strings.Contains(text, "stdout:\nwritten-by-the-agent\n") {
		t.Fatalf("the nested agent's file: cat = %q (isError %v)", text, res.IsError)
	}
}

// TestAgentToolCancel cancels an agent call while its sh runs a sleep: the
// sleep is gone from /proc, and the session still works.
func TestAgentToolCancel(t *testing.T) {
	cs, prog := startAgents(t, "1")
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "echo ready"})
	sandboxWorks(t, res, text)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := callAgent(t, ctx, cs, "agent_sleeper", "s1")
		done <- err
	}()
	waitProcs(t, sleepMarker, func(n int) bool { return n > 0 }, "the agent's sleep never started")
	if msgs := prog.of("s1"); !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, "step 1: sh") }) {
		t.Fatalf("progress before the cancel = %q", msgs)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled agent call answered")
	}
	waitProcs(t, sleepMarker, func(n int) bool { return n == 0 }, "cancelling the agent call left its sleep running")
	res, text = mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "echo still-here"})
	if res.IsError || !strings.Contains(text, "still-here") {
		t.Fatalf("after the cancel, sh = %q", text)
	}
}

// TestAgentToolPolicy: the served selection applies to the calls an agent
// makes, as to the client's own (TestAgentToolEndToEnd is the control,
// where writer's sh runs).
func TestAgentToolPolicy(t *testing.T) {
	cs, _ := startAgents(t, "1", "--exclude-tools", "sh")
	if names := toolSet(t, cs); slices.Contains(names, "sh") || !slices.Contains(names, "agent_writer") {
		t.Fatalf("tools = %v", names)
	}
	res, out, err := callAgent(t, t.Context(), cs, "agent_writer", "p1")
	if err != nil || res.IsError {
		t.Fatalf("agent_writer = %v, %q", err, mcptest.TextOf(res))
	}
	if len(out.Calls) != 1 || out.Calls[0].OK || !strings.Contains(out.Calls[0].Summary, "unknown tool") {
		t.Fatalf("the excluded sh, called by the agent = %+v", out)
	}
}
