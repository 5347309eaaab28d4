package ollama_test

import (
	"encoding/json"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// thinkReasoning is what the scripted thinking model reasons before it
// answers, on an Ollama that thinks.
const thinkReasoning = "I should say what it printed."

// TestE2EThinking runs the chat tools of a thinking model and of a model
// that takes think levels against each real Ollama version.
//
// Expected on v0.17.4: both report the thinking capability, so their tools
// offer think (the scripted thinker a boolean, the levels model a boolean
// or "low"/"medium"/"high"); the reasoning comes back apart from the
// answer (structured "thinking", a "Reasoning:" text block, and progress
// marked "(thinking)"); think false answers without it; a level on the
// thinker is a tool error before any request, as is any think on a model
// without the capability. On v0.6.5 (no thinking) no tool offers think,
// and think true is the same tool error as for any non-thinking model.
func TestE2EThinking(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		newer := v.Version != ollamatest.Version
		srv := v.Start(t)
		srv.Create(t, "thinker:latest", ollamatest.ScriptedModel(ollamatest.Script{Answer: scriptAnswer, Reasoning: thinkReasoning}))
		srv.Create(t, "levels:latest", ollamatest.LevelsModel())
		srv.Create(t, "plain:latest", scripted())
		h := start(t, ollama.Config{Hosts: []string{srv.Host}})
		tools := h.ready(t, "the chat tools", has("chat_thinker", "chat_levels", "chat_plain"))
		schemas := mcptest.OutputSchemas(t, h.cs, nil)

		think := func(tool string) any { return schemaProps(t, tools[tool])["think"] }
		if think("chat_plain") != nil {
			t.Error("a model without thinking offers think")
		}
		if !newer {
			if think("chat_thinker") != nil || think("chat_levels") != nil {
				t.Errorf("%s has no thinking, yet a tool offers think", v.Version)
			}
			res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: ollama.ToolChat, Arguments: map[string]any{"model": "thinker", "prompt": "hi", "think": true}})
			if err != nil || !res.IsError || !strings.Contains(textOf(res), "not a thinking model") {
				t.Errorf("think on %s: %v %s; want a tool error saying it does not think", v.Version, err, textOf(res))
			}
			// The control: the same model answers without think.
			res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_thinker", Arguments: map[string]any{"prompt": "hi"}})
			if err != nil || res.IsError || firstText(res) != scriptAnswer || strings.Contains(textOf(res), "Reasoning:") {
				t.Errorf("plain answer on %s: %v %q", v.Version, err, textOf(res))
			}
			return
		}

		if s, _ := think("chat_thinker").(map[string]any); s["type"] != "boolean" {
			t.Errorf("the thinker's think is %v, want a boolean (Ollama takes no levels for it)", s)
		}
		if s, _ := think("chat_levels").(map[string]any); !strings.Contains(mustJSON(t, s), `"high"`) {
			t.Errorf("the levels model's think is %v, want the levels", s)
		}

		// The default and think true: the reasoning apart from the answer.
		for _, args := range []map[string]any{{"prompt": "hi"}, {"prompt": "hi", "think": true}} {
			params := &sdk.CallToolParams{Name: "chat_thinker", Arguments: args}
			params.SetProgressToken("t1")
			h.mu.Lock()
			h.progress = nil
			h.mu.Unlock()
			res, err := h.cs.CallTool(t.Context(), params)
			if err != nil || res.IsError {
				t.Fatalf("%v: %v %s", args, err, textOf(res))
			}
			mcptest.CheckStructured(t, "chat_thinker", schemas["chat_thinker"], res)
			st, _ := res.StructuredContent.(map[string]any)
			if firstText(res) != strings.TrimSpace(scriptAnswer) || st["answer"] != strings.TrimSpace(scriptAnswer) || st["thinking"] != thinkReasoning {
				t.Errorf("%v: answer %q, structured %v; want the answer and the reasoning apart", args, firstText(res), st)
			}
			if !strings.Contains(textOf(res), "Reasoning:\n"+thinkReasoning) || strings.Count(textOf(res), thinkReasoning) != 1 {
				t.Errorf("%v: the text does not show the reasoning once, apart: %q", args, textOf(res))
			}
			h.waitProgress(t, "(thinking) I")
		}

		res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_thinker", Arguments: map[string]any{"prompt": "hi", "think": false}})
		if st, _ := res.StructuredContent.(map[string]any); err != nil || res.IsError || st["thinking"] != nil || strings.Contains(textOf(res), "Reasoning:") || firstText(res) != scriptAnswer {
			t.Errorf("think false: %v %q %v; want the answer without reasoning", err, textOf(res), res.StructuredContent)
		}

		for _, level := range []string{"low", "medium", "high"} {
			res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_levels", Arguments: map[string]any{"prompt": "?", "think": level}})
			st, _ := res.StructuredContent.(map[string]any)
			if err != nil || res.IsError || st["thinking"] != ollamatest.LevelsReasoning(level) || firstText(res) != ollamatest.LevelsAnswer {
				t.Errorf("think %q: %v %q %v", level, err, textOf(res), st)
			}
			mcptest.CheckStructured(t, "chat_levels", schemas["chat_levels"], res)
		}

		// Refusals, each beside its allowed control above.
		for _, c := range []struct {
			tool string
			args map[string]any
			want string
		}{
			{"chat_thinker", map[string]any{"prompt": "hi", "think": "high"}, "takes no effort levels"},
			{ollama.ToolChat, map[string]any{"model": "thinker", "prompt": "hi", "think": "low"}, "takes no effort levels"},
			{ollama.ToolChat, map[string]any{"model": "plain", "prompt": "hi", "think": true}, "not a thinking model"},
			{"chat_levels", map[string]any{"prompt": "hi", "think": "max"}, "think must be"},
		} {
			res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: c.tool, Arguments: c.args})
			if err != nil {
				t.Fatal(err)
			}
			if !res.IsError || !strings.Contains(textOf(res), c.want) {
				t.Errorf("%s %v: %q; want a tool error with %q", c.tool, c.args, textOf(res), c.want)
			}
		}
		// think false on a model that does not think is nothing to turn off.
		res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: ollama.ToolChat, Arguments: map[string]any{"model": "plain", "prompt": "hi", "think": false}})
		if err != nil || res.IsError || firstText(res) != scriptAnswer {
			t.Errorf("think false on a plain model: %v %q", err, textOf(res))
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
