package ollama_test

import (
	"slices"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// modelEnum returns the enum of a tool's "model" argument.
func modelEnum(t *testing.T, tool *sdk.Tool) []string {
	t.Helper()
	m, _ := schemaProps(t, tool)["model"].(map[string]any)
	var out []string
	for _, v := range m["enum"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

func enumIs(tool string, want ...string) func(map[string]*sdk.Tool) bool {
	return func(tools map[string]*sdk.Tool) bool {
		tl := tools[tool]
		if tl == nil {
			return false
		}
		m, _ := tl.InputSchema.(map[string]any)["properties"].(map[string]any)["model"].(map[string]any)
		var got []string
		enum, _ := m["enum"].([]any)
		for _, v := range enum {
			got = append(got, v.(string))
		}
		return slices.Equal(got, want)
	}
}

// TestE2EModelToolsGeneric serves a real Ollama's models as the three
// generic tools only, with the model enum following models that come and
// go, each change a list_changed.
func TestE2EModelToolsGeneric(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "scripted:latest", scripted())
	srv.Create(t, "embedder:v1", ollamatest.EmbedModel(64))

	h := start(t, ollama.Config{Hosts: []string{srv.Host}, ModelTools: ollama.ModelToolsGeneric})
	tools := h.ready(t, "the generic tools with their enums", enumIs(ollama.ToolChat, "scripted:latest"))
	if got := slices.Sorted(mapsKeys(tools)); !slices.Equal(got, []string{"ollama_chat", "ollama_embed", "ollama_models"}) {
		t.Fatalf("generic serves %v", got)
	}
	if got := modelEnum(t, tools[ollama.ToolEmbed]); !slices.Equal(got, []string{"embedder:v1"}) {
		t.Fatalf("ollama_embed enum = %v", got)
	}

	srv.Create(t, "late:latest", ollamatest.ChatModel())
	h.waitTools(t, "late in the enum", enumIs(ollama.ToolChat, "late:latest", "scripted:latest"))
	srv.Delete(t, "late:latest")
	tools = h.waitTools(t, "late gone from the enum", enumIs(ollama.ToolChat, "scripted:latest"))
	if len(tools) != 3 {
		t.Fatalf("tools after the delete: %v", slices.Sorted(mapsKeys(tools)))
	}
}

// TestE2EModelToolsOffAndPerModel: off serves no model tool, per-model
// (the default) one per model beside the generic ones.
func TestE2EModelToolsOffAndPerModel(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "scripted:latest", scripted())

	per := start(t, ollama.Config{Hosts: []string{srv.Host}})
	per.ready(t, "the per-model tool", has("chat_scripted", "ollama_chat"))

	off := start(t, ollama.Config{Hosts: []string{srv.Host}, ModelTools: ollama.ModelToolsOff})
	// The per-model harness shows the model was discovered; give off one
	// refresh of its own before looking.
	if err := off.m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tools := off.tools(t); len(tools) != 0 {
		t.Fatalf("off serves %v", slices.Sorted(mapsKeys(tools)))
	}
}
