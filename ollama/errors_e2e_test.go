package ollama_test

import (
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2EErrorsThroughTools makes each real Ollama version fail in the ways
// it can be made to, through the MCP tools, and checks what the calling
// model is told: a deleted model (HTTP 404), an input past the context
// (400), a model file that cannot load (500).
func TestE2EErrorsThroughTools(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		{
			srv := v.Start(t)
			srv.Create(t, "doomed", ollamatest.ChatModel())
			srv.Create(t, "embedder", ollamatest.EmbedModel(16))
			broken := ollamatest.ChatModel()
			broken.File.Set("llama.embedding_length", uint32(64))
			srv.Create(t, "broken", broken)
			// No refresh during the test: the deleted model's tool stays.
			h := start(t, ollama.Config{Hosts: []string{srv.Host}, RefreshInterval: time.Hour})
			h.ready(t, "the models", has("chat_doomed", "embed_embedder", "chat_broken"))
			srv.Delete(t, "doomed")

			call := func(tool string, args map[string]any) string {
				t.Helper()
				res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tool, Arguments: args})
				if err != nil {
					t.Fatalf("%s: %v", tool, err)
				}
				if !res.IsError {
					t.Errorf("%s %v succeeded: %s", tool, args, textOf(res))
				}
				return textOf(res)
			}
			if txt := call("chat_doomed", map[string]any{"prompt": "hi"}); !strings.Contains(txt, "doomed:latest is no longer on") {
				t.Errorf("deleted model: %s", txt)
			}
			if txt := call("embed_embedder", map[string]any{"input": strings.Repeat("word ", 5000), "truncate": false}); !strings.Contains(txt, "too long for embedder:latest") || strings.Contains(txt, "no longer on") {
				t.Errorf("input past the context: %s", txt)
			}
			if txt := call("chat_broken", map[string]any{"prompt": "hi"}); !strings.Contains(txt, "broken:latest failed to load") || strings.Contains(txt, "no longer on") {
				t.Errorf("model that cannot load: %s", txt)
			}
		}
	})
}
