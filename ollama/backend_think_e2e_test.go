package ollama_test

import (
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2EBackendThinkTrue runs think through a backend marked thinking in
// the config, against Ollama's real /v1 with a scripted thinking model that
// takes no effort levels (as qwen3 and deepseek-r1 take none).
//
// Expected on v0.17.4: think true answers with the reasoning apart (it
// once sent reasoning_effort "medium", which v0.17.4 refuses for such a
// model with HTTP 400), and think false answers without it. On v0.6.5,
// whose /v1 has no reasoning, both answer, with no reasoning.
func TestE2EBackendThinkTrue(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		newer := v.Version != ollamatest.Version
		srv := v.Start(t)
		srv.Create(t, "thinker:latest", ollamatest.ScriptedModel(ollamatest.Script{Answer: scriptAnswer, Reasoning: thinkReasoning}))
		h := start(t, ollama.Config{Hosts: []string{"127.0.0.1:1"}, Backends: []ollama.Backend{{Name: "friend", URL: srv.URL + "/v1",
			Models: map[string]ollama.BackendModel{"thinker:latest": {Thinking: true}}}}})
		h.ready(t, "chat_thinker", has("chat_thinker"))

		chat := func(think bool) *sdk.CallToolResult {
			t.Helper()
			res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_thinker", Arguments: map[string]any{"prompt": "hi", "think": think}})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		res := chat(true)
		out, _ := res.StructuredContent.(map[string]any)
		if res.IsError || strings.TrimSpace(firstText(res)) != strings.TrimSpace(scriptAnswer) {
			t.Fatalf("think true through the backend: %s", textOf(res))
		}
		if got, _ := out["thinking"].(string); newer && strings.TrimSpace(got) != thinkReasoning {
			t.Errorf("think true: reasoning %q, want %q (%v)", got, thinkReasoning, out)
		}
		// The control: think false answers, without reasoning.
		res = chat(false)
		out, _ = res.StructuredContent.(map[string]any)
		if res.IsError || strings.TrimSpace(firstText(res)) != strings.TrimSpace(scriptAnswer) || out["thinking"] != nil {
			t.Errorf("think false through the backend: %s %v", textOf(res), out)
		}
	})
}
