package ollama_test

import (
	"encoding/json"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// sentNumCtx is the options.num_ctx of a chat request body; 0 when none.
func sentNumCtx(t *testing.T, body []byte) int {
	t.Helper()
	var req struct {
		Options map[string]any `json:"options"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("chat request body: %v", err)
	}
	n, _ := req.Options["num_ctx"].(float64)
	return int(n)
}

func TestE2ENumCtxSizedToTheInput(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		// The plain model's template keeps the whole input (the scripted
		// one's reads only its markers), and its tokenizer is byte-level:
		// a byte is a token.
		small := ollamatest.ChatModel()
		small.File.Set("llama.context_length", uint32(4096))
		srv.Create(t, "small:latest", small)
		// The scripted model's vocabulary with the whole input kept in the
		// prompt: " The command printed" is 3 tokens of 20 bytes.
		roomy := scripted()
		roomy.Template = "{{ .Prompt }}"
		roomy.File.Set("llama.context_length", uint32(32768))
		srv.Create(t, "roomy:latest", roomy)
		up := newUpstream(t, srv.URL)
		h := start(t, ollama.Config{Hosts: []string{up.URL}})
		h.ready(t, "both models", has("chat_small", "chat_roomy"))

		chat := func(tool, prompt string, predict int) (*sdk.CallToolResult, int) {
			t.Helper()
			res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tool, Arguments: map[string]any{"prompt": prompt,
				"options": map[string]any{"num_predict": predict, "temperature": 0, "seed": 1}}})
			if err != nil {
				t.Fatal(err)
			}
			return res, sentNumCtx(t, up.lastChatBody())
		}

		// A short input fits any default window: no num_ctx, no warning.
		res, n := chat("chat_roomy", "hi", 2)
		if res.IsError || n != 0 || strings.Contains(textOf(res), "warning") {
			t.Errorf("short prompt: num_ctx %d, %s", n, textOf(res))
		}

		// 6200 bytes are estimated at about 2070 tokens, more than the 2048
		// v0.6.5 loads a model with by default: membrane asks for the next
		// size, 4096, and the whole input (930 tokens of this vocabulary) is
		// read.
		medium := strings.Repeat(" The command printed", 310)
		// Newer versions load it with 4096 by default already (their
		// /api/ps says so): membrane then sends no num_ctx, as the first
		// call did, since one that differs from the load's makes Ollama
		// load the model again.
		res, n = chat("chat_roomy", medium, 2)
		read, _ := res.StructuredContent.(map[string]any)["prompt_eval_count"].(float64)
		want := 4096
		if v.Version != ollamatest.Version {
			want = 0
		}
		if res.IsError || n != want || strings.Contains(textOf(res), "warning") || read < 930 {
			t.Errorf("medium prompt: num_ctx %d (want %d), IsError %v, %v tokens read, %s", n, want, res.IsError, read, textOf(res))
		}
		if got, _ := res.StructuredContent.(map[string]any)["num_ctx"].(float64); want > 0 && got != 4096 {
			t.Errorf("the result does not say which num_ctx was used: %v", res.StructuredContent)
		}

		// A long input against the small-context model: num_ctx is capped at
		// its 4096, and the input does not fit. v0.6.5 cuts it, and membrane
		// warns; newer versions refuse it (truncate:false), and membrane
		// explains.
		res, n = chat("chat_small", strings.Repeat("a", 12400), 2)
		if n != 4096 {
			t.Errorf("long prompt on the small model: num_ctx %d, want its context length 4096", n)
		}
		txt := textOf(res)
		if v.Version == ollamatest.Version {
			if res.IsError || !strings.Contains(txt, "[warning: ") || !strings.Contains(txt, "cut the beginning of the input") {
				t.Errorf("v0.6.5 cut the input without a warning: %s", txt)
			}
			// num_ctx is already the model's whole length: the advice is
			// to shorten the input, not to raise num_ctx.
			if strings.Contains(txt, "raise options.num_ctx") || !strings.Contains(txt, "4096 tokens is the model's whole context length") {
				t.Errorf("v0.6.5 warning advises what cannot help: %s", txt)
			}
		} else if !res.IsError || !strings.Contains(txt, "too long for small:latest's context window of 4096 tokens") {
			t.Errorf("%s: a prompt past the window: %s", v.Version, txt)
		}

		// ollama_models shows the limit.
		lres, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "ollama_models", Arguments: map[string]any{}})
		if err != nil || !strings.Contains(textOf(lres), `"num_ctx_limit": 4096`) || !strings.Contains(textOf(lres), `"num_ctx_limit": 32768`) {
			t.Errorf("ollama_models lacks num_ctx_limit: %v %s", err, textOf(lres))
		}
	})
}
