package openaicompat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// sse serves the given chunks as a chat-completions stream and records the
// request body.
func sse(t *testing.T, chunks ...string) (*httptest.Server, *[]map[string]any) {
	t.Helper()
	var mu sync.Mutex
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range chunks {
			fmt.Fprintf(w, "data: %s\n\n", c)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv, &bodies
}

func chunk(delta string, finish string) string {
	f := "null"
	if finish != "" {
		f = `"` + finish + `"`
	}
	return `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + f + `}]}`
}

func collect() (func(agent.Delta), *strings.Builder, *strings.Builder) {
	var c, r strings.Builder
	return func(d agent.Delta) { c.WriteString(d.Content); r.WriteString(d.Reasoning) }, &c, &r
}

func TestStreamReasoningAndContent(t *testing.T) {
	srv, bodies := sse(t,
		chunk(`{"role":"assistant","content":"","reasoning":"Let me "}`, ""),
		chunk(`{"content":"","reasoning":"think."}`, ""),
		chunk(`{"content":"Hello"}`, ""),
		chunk(`{"content":" there."}`, "stop"),
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}`,
	)
	c := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "m"})
	onDelta, content, reasoning := collect()
	reply, err := c.Complete(t.Context(), &agent.Request{
		Messages: []agent.Message{{Role: agent.RoleSystem, Content: "sys"}, {Role: agent.RoleUser, Content: "hi"}},
		Tools:    []agent.Tool{{Name: "sh", Description: "run", Parameters: json.RawMessage(`{"type":"object","properties":{"cmd":{"type":"string"}}}`)}},
	}, onDelta)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Message.Content != "Hello there." || reply.Message.Reasoning != "Let me think." || reply.FinishReason != "stop" {
		t.Errorf("reply = %+v", reply)
	}
	if content.String() != "Hello there." || reasoning.String() != "Let me think." {
		t.Errorf("streamed content %q reasoning %q", content, reasoning)
	}
	if reply.Usage != (agent.Usage{PromptTokens: 12, CompletionTokens: 4}) {
		t.Errorf("usage = %+v", reply.Usage)
	}
	body := (*bodies)[0]
	if body["model"] != "m" || body["stream"] != true {
		t.Errorf("body = %v", body)
	}
	tools := body["tools"].([]any)
	fn := tools[0].(map[string]any)["function"].(map[string]any)
	if fn["name"] != "sh" || fn["parameters"].(map[string]any)["properties"] == nil {
		t.Errorf("tool sent = %v", fn)
	}
}

func TestThinkTagsSplitAcrossChunks(t *testing.T) {
	srv, _ := sse(t,
		chunk(`{"content":"<thi"}`, ""),
		chunk(`{"content":"nk>plan a"}`, ""),
		chunk(`{"content":"nd act</th"}`, ""),
		chunk(`{"content":"ink>\n\nThe answer"}`, ""),
		chunk(`{"content":" is 4 < 5."}`, "stop"),
	)
	c := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "m", ThinkTags: true})
	onDelta, content, reasoning := collect()
	reply, err := c.Complete(t.Context(), &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: "q"}}}, onDelta)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Message.Content != "The answer is 4 < 5." || reply.Message.Reasoning != "plan and act" {
		t.Errorf("reply = %+v", reply.Message)
	}
	if content.String() != "The answer is 4 < 5." || reasoning.String() != "plan and act" {
		t.Errorf("streamed %q / %q", content, reasoning)
	}
}

func TestToolCallsInPieces(t *testing.T) {
	// OpenAI style: the id and name first, then the arguments in pieces; a
	// second call at index 1.
	srv, bodies := sse(t,
		chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"sh","arguments":""}}]}`, ""),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"cmd\":"}}]}`, ""),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"ls\"}"}}]}`, ""),
		chunk(`{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"python_run","arguments":"{}"}}]}`, ""),
		// A server that reuses index 0 with a new id starts a new call.
		chunk(`{"tool_calls":[{"index":0,"id":"call_c","type":"function","function":{"name":"sh","arguments":"{\"cmd\":\"pwd\"}"}}]}`, "tool_calls"),
	)
	c := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1"})
	reply, err := c.Complete(t.Context(), &agent.Request{Model: "gpt-x", Messages: []agent.Message{
		{Role: agent.RoleUser, Content: "q"},
		{Role: agent.RoleAssistant, ToolCalls: []agent.ToolCall{{ID: "old", Name: "sh", Arguments: `{"cmd": broken`}}},
		{Role: agent.RoleTool, ToolCallID: "old", ToolName: "sh", Content: "error: invalid arguments"},
	}}, func(agent.Delta) {})
	if err != nil {
		t.Fatal(err)
	}
	want := []agent.ToolCall{{ID: "call_a", Name: "sh", Arguments: `{"cmd":"ls"}`}, {ID: "call_b", Name: "python_run", Arguments: "{}"}, {ID: "call_c", Name: "sh", Arguments: `{"cmd":"pwd"}`}}
	if fmt.Sprint(reply.Message.ToolCalls) != fmt.Sprint(want) || reply.FinishReason != "tool_calls" {
		t.Errorf("calls = %+v", reply.Message.ToolCalls)
	}
	// The history went out well-formed: invalid arguments replaced by {}.
	msgs := (*bodies)[0]["messages"].([]any)
	asst := msgs[1].(map[string]any)
	tc := asst["tool_calls"].([]any)[0].(map[string]any)
	if tc["id"] != "old" || tc["function"].(map[string]any)["arguments"] != "{}" {
		t.Errorf("assistant message sent = %v", asst)
	}
	tool := msgs[2].(map[string]any)
	if tool["role"] != "tool" || tool["tool_call_id"] != "old" {
		t.Errorf("tool message sent = %v", tool)
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	notFound := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"message":"model \"nope\" not found, try pulling it first","type":"api_error"}}`)
	}))
	defer notFound.Close()
	midStream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", chunk(`{"content":"par"}`, ""))
		fmt.Fprint(w, "data: {\"error\":{\"message\":\"runner crashed\"}}\n\n")
	}))
	defer midStream.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/v1"
	ln.Close()

	tests := []struct {
		name, url string
		want      []string
		code      openaicompat.Code // 0: not an *Error
	}{
		{"unknown model", notFound.URL + "/v1", []string{`model "nope" is not served`, "ollama pull nope", "pick another model"}, openaicompat.CodeModelNotServed},
		{"error mid-stream", midStream.URL + "/v1", []string{"runner crashed"}, 0},
		{"nothing listening", closed, []string{"cannot reach the model endpoint", "OLLAMA_HOST", "base URL"}, openaicompat.CodeUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openaicompat.New(&openaicompat.Options{BaseURL: tt.url, Model: "nope"})
			_, err := c.Complete(t.Context(), &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: "q"}}}, func(agent.Delta) {})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			var e *openaicompat.Error
			if got := errors.As(err, &e); got != (tt.code != 0) || (got && e.Code != tt.code) {
				t.Errorf("error %q (%T): want code %d", err, err, tt.code)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error %q names a flag", err)
			}
		})
	}
}

// TestRealOllamaScriptedToolCalls runs the adapter against a real Ollama
// /v1 serving the scripted model: two parallel tool calls, then the answer
// once the results are in the conversation.
func TestRealOllamaScriptedToolCalls(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{
		Calls:  []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo hello"}`}, {Name: "python_run", Args: `{"code":"print(2+2)"}`}},
		Answer: " Both ran.",
	}))
	c := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "scripted"})
	tools := []agent.Tool{
		{Name: "sh", Parameters: json.RawMessage(`{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]}`)},
		{Name: "python_run", Parameters: json.RawMessage(`{"type":"object","properties":{"code":{"type":"string"}},"required":["code"]}`)},
	}
	msgs := []agent.Message{{Role: agent.RoleUser, Content: "run both"}}
	reply, err := c.Complete(t.Context(), &agent.Request{Messages: msgs, Tools: tools}, func(agent.Delta) {})
	if err != nil {
		t.Fatal(err)
	}
	tcs := reply.Message.ToolCalls
	if len(tcs) != 2 || tcs[0].Name != "sh" || tcs[1].Name != "python_run" || tcs[0].ID == tcs[1].ID {
		t.Fatalf("tool calls = %+v", tcs)
	}
	var args map[string]string
	if err := json.Unmarshal([]byte(tcs[0].Arguments), &args); err != nil || args["cmd"] != "echo hello" {
		t.Errorf("sh arguments = %s (%v)", tcs[0].Arguments, err)
	}
	msgs = append(msgs, reply.Message,
		agent.Message{Role: agent.RoleTool, ToolCallID: tcs[0].ID, ToolName: "sh", Content: "hello"},
		agent.Message{Role: agent.RoleTool, ToolCallID: tcs[1].ID, ToolName: "python_run", Content: "4"})
	onDelta, content, _ := collect()
	reply, err = c.Complete(t.Context(), &agent.Request{Messages: msgs, Tools: tools}, onDelta)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Message.Content != "Both ran." || len(reply.Message.ToolCalls) != 0 || strings.TrimSpace(content.String()) != "Both ran." {
		t.Errorf("answer = %+v, streamed %q", reply.Message, content)
	}
	if reply.Usage.CompletionTokens == 0 {
		t.Errorf("no usage reported: %+v", reply.Usage)
	}
	names, err := c.Models(t.Context())
	if err != nil || len(names) != 1 || !strings.HasPrefix(names[0], "scripted") {
		t.Errorf("models = %v, %v", names, err)
	}
}
