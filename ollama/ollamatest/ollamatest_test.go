package ollamatest_test

import (
	"encoding/json"
	"fmt"
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

// chatStream sends a streamed /api/chat request and returns every chunk.
func chatStream(t *testing.T, srv *ollamatest.Server, model string, msgs []api.Message, tools ...api.Tool) []api.ChatResponse {
	t.Helper()
	var chunks []api.ChatResponse
	err := srv.Client().Chat(t.Context(), &api.ChatRequest{Model: model, Messages: msgs, Tools: tools},
		func(r api.ChatResponse) error { chunks = append(chunks, r); return nil })
	if err != nil {
		t.Fatalf("chat %s: %v", model, err)
	}
	return chunks
}

func callsOf(t *testing.T, tcs []api.ToolCall) []string {
	t.Helper()
	var out []string
	for _, tc := range tcs {
		out = append(out, tc.Function.Name+" "+argsJSON(t, tc))
	}
	return out
}

func TestScripts(t *testing.T) {
	srv := ollamatest.Start(t)
	tests := []struct {
		name   string
		script ollamatest.Script
		calls  []string // want, in the calling turn
		answer string   // want, after a tool message
	}{
		{
			name: "parallel",
			script: ollamatest.Script{
				Calls: []ollamatest.ToolCall{
					{Name: "sh", Args: `{"cmd":"ls"}`},
					{Name: "python_run", Args: `{"code":"print(2+2)", "timeout": 5}`},
				},
				Answer: " Both ran.",
			},
			calls:  []string{`sh {"cmd":"ls"}`, `python_run {"code":"print(2+2)","timeout":5}`},
			answer: " Both ran.",
		},
		{
			name: "same call twice",
			script: ollamatest.Script{
				Calls:  []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"date"}`}, {Name: "sh", Args: `{"cmd":"date"}`}},
				Answer: "twice",
			},
			calls:  []string{`sh {"cmd":"date"}`, `sh {"cmd":"date"}`},
			answer: "twice",
		},
		{
			name: "nested args, unicode, no args",
			script: ollamatest.Script{
				Calls: []ollamatest.ToolCall{
					{Name: "qwen2.5:0.5b", Args: `{"prompt":"héllo \"wörld\" <b>&","options":{"temperature":0,"stop":["a","b"]}}`},
					{Name: "ping"},
				},
				Answer: "the the the end. the end.",
			},
			calls: []string{
				`qwen2.5:0.5b {"options":{"stop":["a","b"],"temperature":0},"prompt":"héllo \"wörld\" \u003cb\u003e\u0026"}`,
				`ping {}`,
			},
			answer: "the the the end. the end.",
		},
		{
			name:   "multi-line answer",
			script: ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"true"}`}}, Answer: "line one\nline two\n\n  indented"},
			calls:  []string{`sh {"cmd":"true"}`},
			answer: "line one\nline two\n\n  indented",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(strings.ReplaceAll(tt.name, " ", "-"), ",", "")
			srv.Create(t, name, ollamatest.ScriptedModel(tt.script))
			user := api.Message{Role: "user", Content: "go"}

			msg := chat(t, srv, name, []api.Message{user}, shTool)
			if got := callsOf(t, msg.ToolCalls); !slices.Equal(got, tt.calls) {
				t.Errorf("calls = %q, want %q", got, tt.calls)
			}
			// Streamed, v0.6.5 sends each call in its own chunk.
			var streamed []api.ToolCall
			for _, c := range chatStream(t, srv, name, []api.Message{user}, shTool) {
				streamed = append(streamed, c.Message.ToolCalls...)
			}
			if got := callsOf(t, streamed); !slices.Equal(got, tt.calls) {
				t.Errorf("streamed calls = %q, want %q", got, tt.calls)
			}

			msgs := []api.Message{user, msg}
			for range msg.ToolCalls {
				msgs = append(msgs, api.Message{Role: "tool", Content: "ok"})
			}
			if final := chat(t, srv, name, msgs, shTool); final.Content != tt.answer || len(final.ToolCalls) != 0 {
				t.Errorf("final = %q %v, want %q", final.Content, final.ToolCalls, tt.answer)
			}
		})
	}
}

func TestScriptStreamsAnswerInPieces(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{}))
	msgs := []api.Message{
		{Role: "user", Content: "hi"},
		{Role: "assistant", ToolCalls: []api.ToolCall{{Function: api.ToolCallFunction{Name: "sh", Arguments: api.ToolCallFunctionArguments{}}}}},
		{Role: "tool", Content: "hello"},
	}
	// Without tools in the request: with tools, v0.6.5 holds content back
	// until the reply is done, to look for tool calls in it.
	var text []string
	for _, c := range chatStream(t, srv, "scripted", msgs) {
		if c.Message.Content != "" {
			text = append(text, c.Message.Content)
		}
	}
	if want := []string{" The", " command", " printed", " hello."}; !slices.Equal(text, want) {
		t.Errorf("streamed content = %q, want %q", text, want)
	}
}

func TestScriptLoopAndAnswerOnly(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "loop", ollamatest.ScriptedModel(ollamatest.Script{
		Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"sleep 1"}`}},
		Loop:  true,
	}))
	srv.Create(t, "answer", ollamatest.ScriptedModel(ollamatest.Script{Answer: "Just an answer."}))

	msgs := []api.Message{{Role: "user", Content: "go"}}
	for step := range 4 {
		msg := chat(t, srv, "loop", msgs, shTool)
		if got := callsOf(t, msg.ToolCalls); !slices.Equal(got, []string{`sh {"cmd":"sleep 1"}`}) {
			t.Fatalf("step %d: calls = %q, want the same call again", step, got)
		}
		msgs = append(msgs, msg, api.Message{Role: "tool", Content: "done"})
	}

	for _, msgs := range [][]api.Message{
		{{Role: "user", Content: "go"}},
		{{Role: "user", Content: "go"}, {Role: "tool", Content: "x"}},
	} {
		if msg := chat(t, srv, "answer", msgs, shTool); msg.Content != "Just an answer." || len(msg.ToolCalls) != 0 {
			t.Errorf("answer-only model said %q %v", msg.Content, msg.ToolCalls)
		}
	}
}

func TestOpenAIFinalAnswer(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{}))
	body := `{"model":"scripted","messages":[{"role":"user","content":"hi"},
		{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"sh","arguments":"{\"cmd\":\"echo hello\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"hello\n"}],
		"tools":[{"type":"function","function":{"name":"sh","parameters":{"type":"object"}}}]}`
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct{ Content string }
		}
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("status %d, body %s: %v", resp.StatusCode, b, err)
	}
	if c := out.Choices[0]; c.FinishReason != "stop" || c.Message.Content != " The command printed hello." {
		t.Errorf("reply %s, want finish_reason stop and the scripted answer", b)
	}
}

func TestChatAndVisionModelsAnswer(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "chat", ollamatest.ChatModel())
	srv.Create(t, "vision", ollamatest.VisionModel())
	for _, name := range []string{"chat", "vision"} {
		var chunks int
		var final api.ChatResponse
		err := srv.Client().Chat(t.Context(), &api.ChatRequest{Model: name, Messages: []api.Message{{Role: "user", Content: "Say something."}}},
			func(r api.ChatResponse) error { chunks++; final = r; return nil })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !final.Done || final.EvalCount == 0 || chunks < 2 {
			t.Errorf("%s: %d chunks, final %+v; want a streamed reply of several tokens", name, chunks, final)
		}
	}
}

func TestDelete(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "gone", ollamatest.ChatModel())
	srv.Delete(t, "gone")
	list, err := srv.Client().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 0 {
		t.Errorf("after Delete /api/tags lists %v", list.Models)
	}
	if err := srv.DeleteModel(t.Context(), "gone"); err == nil {
		t.Error("deleting a missing model did not fail")
	}
}

func TestScriptSteps(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "steps", ollamatest.ScriptedModel(ollamatest.Script{
		Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"ls"}`}},
		Then: [][]ollamatest.ToolCall{
			{{Name: "python_run", Args: `{"code":"print(1)"}`}},
			{{Name: "sh", Args: `{"cmd":"ls"}`}, {Name: "sh", Args: `{"cmd":"pwd"}`}},
		},
		Answer: " Done in three steps.",
	}))
	want := [][]string{
		{`sh {"cmd":"ls"}`},
		{`python_run {"code":"print(1)"}`},
		{`sh {"cmd":"ls"}`, `sh {"cmd":"pwd"}`},
	}
	msgs := []api.Message{{Role: "user", Content: "go"}}
	for round := range 2 { // a second user message starts over
		for step, calls := range want {
			msg := chat(t, srv, "steps", msgs, shTool)
			if got := callsOf(t, msg.ToolCalls); !slices.Equal(got, calls) {
				t.Fatalf("round %d step %d: calls = %q, want %q", round, step, got, calls)
			}
			msgs = append(msgs, msg)
			for range msg.ToolCalls {
				msgs = append(msgs, api.Message{Role: "tool", Content: "ok"})
			}
		}
		final := chat(t, srv, "steps", msgs, shTool)
		if final.Content != " Done in three steps." || len(final.ToolCalls) != 0 {
			t.Fatalf("round %d: final = %q %v", round, final.Content, final.ToolCalls)
		}
		msgs = append(msgs, final, api.Message{Role: "user", Content: "again"})
	}
}

// TestOpenAIStreamedParallelCalls pins what an OpenAI client sees from
// v0.6.5 when streaming a parallel call: each call in its own chunk with
// its own index, then a chunk with finish_reason tool_calls.
func TestOpenAIStreamedParallelCalls(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "parallel", ollamatest.ScriptedModel(ollamatest.Script{
		Calls:  []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"ls"}`}, {Name: "python_run", Args: `{"code":"1"}`}},
		Answer: "ok",
	}))
	body := `{"model":"parallel","stream":true,"messages":[{"role":"user","content":"hi"}],
		"tools":[{"type":"function","function":{"name":"sh","parameters":{"type":"object"}}}]}`
	b, events := sseEvents(t, srv, body)
	var calls []string
	finish := ""
	for _, data := range events {
		var chunk struct {
			Choices []struct {
				FinishReason *string `json:"finish_reason"`
				Delta        struct {
					ToolCalls []struct {
						Index    int
						Function struct{ Name, Arguments string }
					} `json:"tool_calls"`
				}
			}
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		for _, c := range chunk.Choices {
			for _, tc := range c.Delta.ToolCalls {
				calls = append(calls, fmt.Sprintf("%d %s %s", tc.Index, tc.Function.Name, tc.Function.Arguments))
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if want := []string{`0 sh {"cmd":"ls"}`, `1 python_run {"code":"1"}`}; !slices.Equal(calls, want) || finish != "tool_calls" {
		t.Errorf("streamed calls %q, finish %q; want %q and tool_calls\n%s", calls, finish, want, b)
	}
}

// sseEvents posts a streamed chat-completions body to srv's /v1 and
// returns the whole reply and the data of each event before [DONE].
func sseEvents(t *testing.T, srv *ollamatest.Server, body string) ([]byte, []string) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var events []string
	for line := range strings.Lines(string(b)) {
		if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok && data != "[DONE]" {
			events = append(events, data)
		}
	}
	return b, events
}
