package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestEveryToolsStructuredContentMatchesItsSchema walks the whole tool
// list of a real membrane (the real test Ollama with a chat and an
// embedding model, logical tools, http_get, the sandbox and the file
// tools): every tool declares an outputSchema, and the structured content
// of a call to each validates against it.
func TestEveryToolsStructuredContentMatchesItsSchema(t *testing.T) {
	bin := binary(t)
	srv := ollamatest.Start(t)
	srv.Create(t, "talker", ollamatest.ChatModel())
	srv.Create(t, "vec", ollamatest.EmbedModel(16))
	conf := filepath.Join(t.TempDir(), "membrane.yaml")
	if err := os.WriteFile(conf, []byte("ollama:\n  tools:\n    - tool: helper\n      model: talker\n      system: Be brief.\n    - tool: vectors\n      model: vec\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, _, _ := launch(t, bin, []string{"--ollama-host", srv.URL, "--config", conf, "--http-get-allow", "docs.python.org"}, nil)
	t.Cleanup(func() { cs.Close() })
	want := []string{"chat_talker", "embed_vec", "helper", "vectors", "ollama_models", "ollama_chat", "ollama_embed",
		"sh", "python_run", "write_file", "read_file", "list_files", "http_get"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		have := toolSet(t, cs)
		missing := slices.DeleteFunc(slices.Clone(want), func(n string) bool { return slices.Contains(have, n) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tools %v lack %v", have, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "true"})
	sandboxWorks(t, res, text)

	schemas := mcptest.OutputSchemas(t, cs, nil)
	pixel, _ := base64.StdEncoding.DecodeString(onePixelPNG)
	args := map[string]map[string]any{
		"chat_talker":   {"prompt": "hi", "options": map[string]any{"num_predict": 3}},
		"helper":        {"prompt": "hi", "options": map[string]any{"num_predict": 3}},
		"ollama_chat":   {"model": "talker", "prompt": "hi", "options": map[string]any{"num_predict": 3}},
		"embed_vec":     {"input": []string{"a", "b"}},
		"vectors":       {"input": "a", "summary": true},
		"ollama_embed":  {"model": "vec", "input": "a"},
		"ollama_models": {},
		"write_file":    {"path": "out/pixel.png", "content": base64.StdEncoding.EncodeToString(pixel), "encoding": "base64"},
		"sh":            {"cmd": "echo hi > out/note.txt; cat out/note.txt", "files": []string{"out/pixel.png", "/etc/passwd"}},
		"python_run":    {"code": "print(open('out/note.txt').read())"},
		"read_file":     {"path": "out/pixel.png"},
		"list_files":    {"path": "out"},
		// No network here, and the guard refuses private addresses: the
		// refusal is the structured answer to check.
		"http_get": {"url": "http://10.0.0.1/"},
	}
	order := []string{"write_file", "sh", "python_run", "read_file", "list_files", "http_get",
		"ollama_models", "chat_talker", "helper", "ollama_chat", "embed_vec", "vectors", "ollama_embed"}
	for name := range schemas {
		if !slices.Contains(order, name) {
			t.Errorf("tool %s has no sample call in this test: add one", name)
		}
	}
	for _, name := range order {
		res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: name, Arguments: args[name]})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if res.IsError && name != "http_get" {
			t.Errorf("%s failed: %s", name, mcptest.TextOf(res))
			continue
		}
		mcptest.CheckStructured(t, name, schemas[name], res)
		if name == "sh" && !strings.Contains(mcptest.TextOf(res), "/workspace/out/note.txt") {
			t.Errorf("sh: the text does not list the file it wrote under out/: %s", mcptest.TextOf(res))
		}
	}
}
