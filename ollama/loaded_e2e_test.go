package ollama_test

import (
	"encoding/json"
	"slices"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// modelsEntry is one model of the ollama_models answer.
type modelsEntry struct {
	Name     string   `json:"name"`
	LoadedOn []string `json:"loaded_on"`
}

func listModels(t *testing.T, h *harness) (map[string]modelsEntry, []ollama.HostStatus) {
	t.Helper()
	res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "ollama_models", Arguments: map[string]any{"refresh": true}})
	if err != nil || res.IsError {
		t.Fatalf("ollama_models: %v %s", err, textOf(res))
	}
	var out struct {
		Models []modelsEntry       `json:"models"`
		Hosts  []ollama.HostStatus `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(textOf(res)), &out); err != nil {
		t.Fatal(err)
	}
	byName := map[string]modelsEntry{}
	for _, m := range out.Models {
		byName[m.Name] = m
	}
	return byName, out.Hosts
}

func TestE2EPreferLoadedHost(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		a, b := v.Start(t), v.Start(t)
		for _, s := range []*ollamatest.Server{a, b} {
			s.Create(t, "shared:latest", scripted())
			s.Create(t, "cold:latest", scripted())
		}
		// Host B has shared loaded, as its /api/ps says; A, first in the
		// configuration, has nothing loaded.
		err := b.Client().Chat(t.Context(), &api.ChatRequest{Model: "shared:latest", Messages: []api.Message{{Role: "user", Content: "hi"}}},
			func(api.ChatResponse) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		pa, pb := newUpstream(t, a.URL), newUpstream(t, b.URL)
		h := start(t, ollama.Config{Hosts: []string{pa.URL, pb.URL}})
		h.ready(t, "both models", has("chat_shared", "chat_cold"))

		models, hosts := listModels(t, h)
		if got := models["shared:latest"].LoadedOn; !slices.Equal(got, []string{pb.URL}) {
			t.Errorf("shared:latest loaded_on = %v, want [%s] (from B's /api/ps)", got, pb.URL)
		}
		if got := models["cold:latest"].LoadedOn; len(got) != 0 {
			t.Errorf("cold:latest loaded_on = %v, want none", got)
		}
		if len(hosts) != 2 || len(hosts[0].Loaded) != 0 || !slices.Contains(hosts[1].Loaded, "shared:latest") {
			t.Errorf("hosts' loaded models: %+v", hosts)
		}

		// Calls of shared go to B, where it is loaded, though A comes first.
		for range 3 {
			res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_shared", Arguments: map[string]any{"prompt": "hi"}})
			if err != nil || res.IsError {
				t.Fatalf("chat_shared: %v %s", err, textOf(res))
			}
		}
		if pa.chats.Load() != 0 || pb.chats.Load() != 3 {
			t.Errorf("calls of the model loaded on B went to A %d times and B %d times; want 0 and 3", pa.chats.Load(), pb.chats.Load())
		}
		// Control: a model loaded nowhere goes to the first host, and is
		// then loaded there.
		res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_cold", Arguments: map[string]any{"prompt": "hi"}})
		if err != nil || res.IsError {
			t.Fatalf("chat_cold: %v %s", err, textOf(res))
		}
		if pa.chats.Load() != 1 {
			t.Errorf("a model loaded nowhere did not go to the first host: A %d, B %d", pa.chats.Load(), pb.chats.Load())
		}
		models, _ = listModels(t, h)
		if got := models["cold:latest"].LoadedOn; !slices.Equal(got, []string{pa.URL}) {
			t.Errorf("after its call cold:latest loaded_on = %v, want [%s]", got, pa.URL)
		}
	})
}
