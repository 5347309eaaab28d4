package ollama_test

import (
	"encoding/json"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2EArgumentNamesExact sends every Ollama tool arguments whose names
// differ from the schema only in case, or that repeat a name, through the
// real MCP path to a real Ollama. encoding/json alone folds case and keeps
// the last of two equal keys; each tool must refuse both, and still take
// the exact spelling (the allow control beside each).
func TestE2EArgumentNamesExact(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		srv.Create(t, "scripted:latest", scripted())
		srv.Create(t, "embedder:latest", ollamatest.EmbedModel(16))
		h := start(t, ollama.Config{Hosts: []string{srv.Host}})
		h.ready(t, "chat and embed tools", has("chat_scripted", "embed_embedder"))

		for _, tt := range []struct {
			tool, good string
			bad        []string
		}{
			{"chat_scripted", `{"prompt":"hi"}`, []string{
				`{"Prompt":"hi"}`, `{"PROMPT":"hi"}`, `{"prompt":"hi","prompt":"ho"}`,
				`{"prompt":"hi","Options":{"temperature":1}}`,
				`{"prompt":"hi","options":{"temperature":1,"temperature":2}}`,
				`{"messages":[{"Role":"user","content":"hi"}]}`,
				`{"messages":[{"role":"user","content":"hi","content":"ho"}]}`,
				`{"prompt":"hi","format":{"type":"object","type":"string"}}`,
			}},
			{"ollama_chat", `{"model":"scripted","prompt":"hi"}`, []string{
				`{"MODEL":"scripted","prompt":"hi"}`, `{"Model":"scripted","prompt":"hi"}`,
				`{"model":"nothing","model":"scripted","prompt":"hi"}`, `{"model":"scripted","Prompt":"hi"}`,
			}},
			{"embed_embedder", `{"input":"a"}`, []string{
				`{"Input":"a"}`, `{"input":"a","input":"b"}`, `{"input":"a","Summary":true}`,
			}},
			{"ollama_embed", `{"model":"embedder","input":"a"}`, []string{
				`{"MODEL":"embedder","input":"a"}`, `{"model":"embedder","INPUT":"a"}`,
			}},
			{"ollama_models", `{"refresh":false}`, []string{
				`{"Refresh":true}`, `{"capability":"tools","capability":"embedding"}`,
			}},
		} {
			res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tt.tool, Arguments: json.RawMessage(tt.good)})
			if err != nil || res.IsError {
				t.Errorf("%s %s (allow control): %v %s", tt.tool, tt.good, err, textOf(res))
			}
			for _, bad := range tt.bad {
				res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tt.tool, Arguments: json.RawMessage(bad)})
				if err != nil {
					t.Errorf("%s %s: protocol error %v, want a tool error", tt.tool, bad, err)
					continue
				}
				txt := textOf(res)
				if !res.IsError || !strings.Contains(txt, "invalid arguments") {
					t.Errorf("%s accepted %s: %s", tt.tool, bad, txt)
				}
				if strings.Contains(bad, `":"hi","prompt"`) || strings.Contains(bad, `"input":"a","input"`) {
					if !strings.Contains(txt, "twice") {
						t.Errorf("%s %s: the error does not say a key came twice: %s", tt.tool, bad, txt)
					}
				}
			}
		}
	})
}
