package ollamatest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

var shTool = api.Tool{
	Type: "function",
	Function: api.ToolFunction{
		Name:        "sh",
		Description: "run a shell command",
	},
}

func noStream() *bool { b := false; return &b }

// chat sends one non-streamed /api/chat request.
func chat(t *testing.T, srv *ollamatest.Server, model string, msgs []api.Message, tools ...api.Tool) api.Message {
	t.Helper()
	var got api.ChatResponse
	err := srv.Client().Chat(t.Context(), &api.ChatRequest{
		Model: model, Messages: msgs, Tools: tools, Stream: noStream(),
	}, func(r api.ChatResponse) error { got = r; return nil })
	if err != nil {
		t.Fatalf("chat %s: %v", model, err)
	}
	return got.Message
}

func argsJSON(t *testing.T, tc api.ToolCall) string {
	t.Helper()
	b, err := json.Marshal(tc.Function.Arguments)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScriptedDefault(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{}))

	user := api.Message{Role: "user", Content: "run echo hello"}
	msg := chat(t, srv, "scripted", []api.Message{user}, shTool)
	if len(msg.ToolCalls) != 1 {
		t.Fatalf("reply = %+v, want one tool call", msg)
	}
	tc := msg.ToolCalls[0]
	if tc.Function.Name != "sh" || argsJSON(t, tc) != `{"cmd":"echo hello"}` {
		t.Errorf("tool call = %s %s, want sh {\"cmd\":\"echo hello\"}", tc.Function.Name, argsJSON(t, tc))
	}

	msgs := []api.Message{user, msg, {Role: "tool", Content: "hello\n"}}
	final := chat(t, srv, "scripted", msgs, shTool)
	if final.Content != " The command printed hello." || len(final.ToolCalls) != 0 {
		t.Errorf("final = %+v, want content \" The command printed hello.\"", final)
	}
}

func TestOpenAIToolCall(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{}))

	body := `{"model":"scripted","messages":[{"role":"user","content":"hi"}],
		"tools":[{"type":"function","function":{"name":"sh","parameters":{"type":"object","properties":{"cmd":{"type":"string"}}}}}]}`
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct {
				ToolCalls []struct {
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			}
		}
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("status %d, body %s: %v", resp.StatusCode, b, err)
	}
	c := out.Choices[0]
	if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 ||
		c.Message.ToolCalls[0].Function.Name != "sh" || c.Message.ToolCalls[0].Function.Arguments != `{"cmd":"echo hello"}` {
		t.Errorf("reply %s, want finish_reason tool_calls and sh {\"cmd\":\"echo hello\"}", b)
	}
}

func TestModelsListedWithCapabilities(t *testing.T) {
	srv := ollamatest.Start(t)
	models := map[string]ollamatest.Model{
		"chat":     ollamatest.ChatModel(),
		"embed":    ollamatest.EmbedModel(16),
		"vision":   ollamatest.VisionModel(),
		"scripted": ollamatest.ScriptedModel(ollamatest.Script{}),
	}
	want := map[string][]string{
		"chat":     {"completion"},
		"embed":    {"embedding"},
		"vision":   {"completion", "vision"},
		"scripted": {"completion", "tools"},
	}
	for name, m := range models {
		srv.Create(t, name, m)
	}
	list, err := srv.Client().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if want := []string{"chat:latest", "embed:latest", "scripted:latest", "vision:latest"}; !slices.Equal(names, want) {
		t.Errorf("/api/tags = %v, want %v", names, want)
	}
	for name, caps := range want {
		show, err := srv.Client().Show(t.Context(), &api.ShowRequest{Model: name})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range show.Capabilities {
			got = append(got, string(c))
		}
		slices.Sort(got)
		if !slices.Equal(got, caps) {
			t.Errorf("%s capabilities = %v, want %v", name, got, caps)
		}
	}
}

func TestEmbed(t *testing.T) {
	srv := ollamatest.Start(t)
	for _, dim := range []int{8, 24} {
		srv.Create(t, "embed", ollamatest.EmbedModel(dim))
		resp, err := srv.Client().Embed(t.Context(), &api.EmbedRequest{Model: "embed", Input: []string{"hello", "world"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Embeddings) != 2 || len(resp.Embeddings[0]) != dim || len(resp.Embeddings[1]) != dim {
			t.Fatalf("dim %d: got %d vectors of sizes %v", dim, len(resp.Embeddings), lens(resp.Embeddings))
		}
		if slices.Equal(resp.Embeddings[0], resp.Embeddings[1]) {
			t.Errorf("dim %d: different inputs embedded to the same vector", dim)
		}
	}
}

func lens(v [][]float32) []int {
	var n []int
	for _, x := range v {
		n = append(n, len(x))
	}
	return n
}
