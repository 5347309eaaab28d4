package main

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2EThinkingModel runs the orchestrator binary over each real Ollama's
// /v1 with a scripted model that reasons before it calls sh and before it
// answers.
//
// Expected on v0.17.4: the reasoning of both steps comes apart from the
// answer (in --json's reasoning; in text mode on stderr, the answer alone
// on stdout); --reasoning-effort none (or MEMBRANE_REASONING_EFFORT=none)
// turns it off; a level, which Ollama takes for gpt-oss only, fails the
// turn with advice naming --reasoning-effort. On v0.6.5 (no thinking) the
// same turn has no reasoning and the level is ignored.
func TestE2EThinkingModel(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: -short")
	}
	needBwrap(t)
	orch, membrane := mcptest.BuildBinary(t, "./cmd/orchestrator"), mcptest.BuildBinary(t, "./cmd/membrane")
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			newer := v.Version != ollamatest.Version
			c := &chain{orch: orch, membrane: membrane, ollama: v.Start(t), model: "thinker"}
			c.ollama.Create(t, c.model, ollamatest.ScriptedModel(ollamatest.Script{
				Calls:     []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo hello"}`}},
				Answer:    " It printed hello.",
				Reasoning: "Run it first.",
			}))
			wantReasoning := ""
			if newer {
				wantReasoning = "Run it first.\nRun it first."
			}
			r := c.run(t, c.env(t), c.args("--json", "-e", "run echo hello")...)
			jt := decodeTurn(t, r.stdout)
			if r.code != 0 || jt.Answer != "It printed hello." || jt.Reasoning != wantReasoning || len(jt.ToolCalls) != 1 || !strings.Contains(jt.ToolCalls[0].Result, "hello") {
				t.Fatalf("exit %d, turn %+v; want the answer, reasoning %q and one sh call", r.code, jt, wantReasoning)
			}

			r = c.run(t, c.env(t), c.args("-e", "run echo hello")...)
			if r.code != 0 || strings.TrimSpace(r.stdout) != "It printed hello." || strings.Contains(r.stdout, "Run it") || (newer && !strings.Contains(r.stderr, "Run it first.")) {
				t.Errorf("text mode: exit %d, stdout %q, stderr %q; want the answer alone on stdout and the reasoning on stderr", r.code, r.stdout, r.stderr)
			}

			for _, off := range [][]string{{"--reasoning-effort", "none"}, nil} {
				env := c.env(t)
				if off == nil {
					env = c.env(t, "MEMBRANE_REASONING_EFFORT=none")
				}
				r = c.run(t, env, c.args(append(off, "--json", "-e", "run echo hello")...)...)
				if jt := decodeTurn(t, r.stdout); r.code != 0 || jt.Reasoning != "" || jt.Answer != "It printed hello." {
					t.Errorf("effort none %v: exit %d, turn %+v; want the answer without reasoning", off, r.code, jt)
				}
			}

			r = c.run(t, c.env(t), c.args("--reasoning-effort", "low", "-e", "run echo hello")...)
			if !newer {
				if r.code != 0 || strings.TrimSpace(r.stdout) != "It printed hello." {
					t.Errorf("a level on %s: exit %d, stdout %q; want it ignored", v.Version, r.code, r.stdout)
				}
				return
			}
			if r.code != 1 || !strings.Contains(r.stderr, "takes no reasoning effort level") || !strings.Contains(r.stderr, "--reasoning-effort none") {
				t.Errorf("a level on the thinker: exit %d, stderr %q; want the refusal with advice", r.code, r.stderr)
			}
		})
	}
}
