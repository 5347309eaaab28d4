package openaicompat_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
)

// script is a model for the wire tests: it calls the "echo" tool once,
// then answers with what the tool said. The real model paths are in the
// orchestrator's e2e tests; these check the server's HTTP shapes.
func script(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
	last := req.Messages[len(req.Messages)-1]
	if last.Role == agent.RoleTool {
		onDelta(agent.Delta{Reasoning: "the tool answered"})
		onDelta(agent.Delta{Content: "answer: "})
		onDelta(agent.Delta{Content: last.Content})
		return &agent.Reply{Message: agent.Message{Content: "answer: " + last.Content}, Usage: agent.Usage{PromptTokens: 7, CompletionTokens: 3}}, nil
	}
	return &agent.Reply{Message: agent.Message{ToolCalls: []agent.ToolCall{{ID: "c1", Name: "echo", Arguments: `{"text":"` + last.Content + `"}`}}},
		Usage: agent.Usage{PromptTokens: 5, CompletionTokens: 1}}, nil
}

type env struct {
	srv    *openaicompat.Server
	url    string
	calls  atomic.Int32
	router *calls.Router
	block  chan struct{} // when set, echo waits on it (or its ctx)
	ctxErr chan error    // echo reports why it stopped waiting
}

func newEnv(t *testing.T, specs []agents.Spec, mod func(*openaicompat.ServerOptions)) *env {
	t.Helper()
	e := &env{router: calls.NewRouter(nil), ctxErr: make(chan error, 16)}
	err := e.router.Add(calls.Call{Name: "echo", Description: "echo", Kind: calls.KindTool,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`),
		Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			e.calls.Add(1)
			if e.block != nil {
				select {
				case <-e.block:
				case <-ctx.Done():
					e.ctxErr <- ctx.Err()
					return nil, ctx.Err()
				}
			}
			var in struct {
				Text string `json:"text"`
			}
			_ = json.Unmarshal(req.Arguments, &in)
			if req.Progress != nil {
				req.Progress.Report(ctx, 1, 2, "halfway")
			}
			return calls.Text("echo " + in.Text), nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	if specs == nil {
		specs = []agents.Spec{{Name: "coder", Model: "m", Description: "writes code", Tools: []string{"echo"}}}
	}
	opts := openaicompat.ServerOptions{
		Agents: agents.NewCatalog(specs),
		Backend: func(spec agents.Spec) (*openaicompat.Backend, error) {
			return &openaicompat.Backend{Model: agent.ModelFunc(script), Tools: e.router}, nil
		},
	}
	if mod != nil {
		mod(&opts)
	}
	e.srv, err = openaicompat.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(e.srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

func post(t *testing.T, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func wantError(t *testing.T, resp *http.Response, body []byte, status int, code, says string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error object: %s", body)
	}
	if e.Error.Code == nil || *e.Error.Code != code {
		t.Errorf("code %v, want %s: %s", e.Error.Code, code, body)
	}
	if !strings.Contains(e.Error.Message, says) {
		t.Errorf("message %q does not say %q", e.Error.Message, says)
	}
}

const hello = `{"model":"coder","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}`

func TestChatCompletion(t *testing.T) {
	e := newEnv(t, nil, nil)
	resp, body := post(t, e.url+"/v1/chat/completions", hello)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Role, Content string
			}
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
			TotalTokens      int64 `json:"total_tokens"`
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Object != "chat.completion" || out.Model != "coder" || len(out.Choices) != 1 || out.Choices[0].Message.Content != "answer: echo hi" ||
		out.Choices[0].FinishReason != "stop" || out.Choices[0].Message.Role != "assistant" {
		t.Errorf("got %s", body)
	}
	// Usage counts both model calls: 5+7 prompt, 1+3 completion.
	if out.Usage.PromptTokens != 12 || out.Usage.CompletionTokens != 4 || out.Usage.TotalTokens != 16 {
		t.Errorf("usage %+v, want 12/4/16", out.Usage)
	}
	if e.calls.Load() != 1 {
		t.Errorf("the tool ran %d times, want 1", e.calls.Load())
	}
}

// readSSE returns the data lines of a stream, up to and including [DONE].
func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := sc.Text()
		if d, ok := strings.CutPrefix(l, "data: "); ok {
			out = append(out, d)
			if d == "[DONE]" {
				break
			}
		} else if l != "" && !strings.HasPrefix(l, ":") {
			t.Errorf("not an SSE line: %q", l)
		}
	}
	return out
}

func TestChatCompletionStream(t *testing.T) {
	e := newEnv(t, nil, nil)
	body := strings.Replace(hello, `"model"`, `"stream":true,"stream_options":{"include_usage":true},"model"`, 1)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.url+"/v1/chat/completions", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := readSSE(t, resp.Body)
	if len(lines) < 4 || lines[len(lines)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", lines)
	}
	var content, reasoning strings.Builder
	var finish []string
	var usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	}
	for i, l := range lines[:len(lines)-1] {
		var c struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Model   string `json:"model"`
			Choices []struct {
				Delta struct {
					Role      string `json:"role"`
					Content   string `json:"content"`
					Reasoning string `json:"reasoning_content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens     int64 `json:"prompt_tokens"`
				CompletionTokens int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("chunk %d: %v: %s", i, err, l)
		}
		if c.Object != "chat.completion.chunk" || c.Model != "coder" || !strings.HasPrefix(c.ID, "chatcmpl-") {
			t.Errorf("chunk %d: %s", i, l)
		}
		if i == 0 && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant") {
			t.Errorf("first chunk gives no role: %s", l)
		}
		for _, ch := range c.Choices {
			content.WriteString(ch.Delta.Content)
			reasoning.WriteString(ch.Delta.Reasoning)
			if ch.FinishReason != nil {
				finish = append(finish, *ch.FinishReason)
			}
		}
		if c.Usage != nil {
			usage = c.Usage
			if len(c.Choices) != 0 {
				t.Errorf("the usage chunk has choices: %s", l)
			}
		}
	}
	if content.String() != "answer: echo hi" {
		t.Errorf("content %q", content.String())
	}
	for _, w := range []string{`[tool echo {"text":"hi"}]`, "[echo] halfway", "[tool echo done in", "the tool answered"} {
		if !strings.Contains(reasoning.String(), w) {
			t.Errorf("reasoning %q lacks %q", reasoning.String(), w)
		}
	}
	if len(finish) != 1 || finish[0] != "stop" {
		t.Errorf("finish reasons %q", finish)
	}
	if usage == nil || usage.PromptTokens != 12 || usage.CompletionTokens != 4 {
		t.Errorf("usage %+v, want 12/4", usage)
	}
}

func TestModelsAndAgents(t *testing.T) {
	e := newEnv(t, []agents.Spec{
		{Name: "coder", Model: "m", Description: "writes code", Tools: []string{"echo"}, Timeout: agents.Duration(time.Minute)},
		{Name: "helper", Model: "n", APIKeyEnv: "SECRET_KEY", Servers: map[string]agents.Server{"x": {Command: "/bin/secret-cmd"}}},
	}, nil)
	_, body := get(t, e.url+"/v1/models")
	var models struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if err := json.Unmarshal(body, &models); err != nil || models.Object != "list" || len(models.Data) != 2 ||
		models.Data[0].ID != "coder" || models.Data[1].ID != "helper" || models.Data[0].Object != "model" {
		t.Errorf("models: %s", body)
	}
	_, body = get(t, e.url+"/v1/agents")
	var list struct{ Agents []openaicompat.AgentInfo }
	if err := json.Unmarshal(body, &list); err != nil || len(list.Agents) != 2 {
		t.Fatalf("agents: %s", body)
	}
	if a := list.Agents[0]; a.Name != "coder" || a.Description != "writes code" || a.TimeoutSeconds != 60 || a.MaxSteps != agents.DefaultMaxSteps || a.Unattended != "refuse" {
		t.Errorf("coder: %+v", a)
	}
	if strings.Contains(string(body), "SECRET_KEY") || strings.Contains(string(body), "secret-cmd") {
		t.Errorf("/v1/agents shows how the agent reaches its endpoint or servers: %s", body)
	}
	resp, body := get(t, e.url+"/v1/agents/helper")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"helper"`) {
		t.Errorf("agent: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, e.url+"/v1/agents/nobody")
	wantError(t, resp, body, 404, "model_not_found", "the agents are: coder, helper")
	resp, body = get(t, e.url+"/v1/nowhere")
	wantError(t, resp, body, 404, "unknown_url", "the routes are")
}

func TestAgentChatTrace(t *testing.T) {
	e := newEnv(t, nil, nil)
	resp, body := post(t, e.url+"/v1/agents/coder/chat", `{"messages":[{"role":"user","content":"yo"}],"trace":true}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var out struct {
		Agent   string
		Message struct{ Role, Content string }
		Steps   int
		Trace   []openaicompat.TraceStep
		Usage   struct {
			TotalTokens int64 `json:"total_tokens"`
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Agent != "coder" || out.Message.Content != "answer: echo yo" || out.Steps != 2 || out.Usage.TotalTokens != 16 {
		t.Errorf("got %s", body)
	}
	if len(out.Trace) != 1 || out.Trace[0].Tool != "echo" || out.Trace[0].Result != "echo yo" || string(out.Trace[0].Arguments) != `{"text":"yo"}` {
		t.Errorf("trace %+v", out.Trace)
	}
	// Without trace, none is sent (the control).
	_, body = post(t, e.url+"/v1/agents/coder/chat", `{"messages":[{"role":"user","content":"yo"}]}`)
	if strings.Contains(string(body), `"trace"`) {
		t.Errorf("a trace nobody asked for: %s", body)
	}
	resp, body = post(t, e.url+"/v1/agents/coder/chat", `{"model":"other","messages":[{"role":"user","content":"yo"}]}`)
	wantError(t, resp, body, 400, "invalid_value", "differs from the agent")
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, nil, func(o *openaicompat.ServerOptions) { o.MaxRequestBytes = 64 << 10 })
	for _, tc := range []struct {
		name, body string
		status     int
		code, says string
	}{
		{"unknown agent", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found", `no agent "gpt-4o"; the agents are: coder`},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_value", "model is missing"},
		{"not json", `{"model":`, 400, "invalid_value", "not valid"},
		{"array body", `[1]`, 400, "invalid_value", "JSON object"},
		{"empty", ``, 400, "invalid_value", "empty"},
		{"no messages", `{"model":"coder"}`, 400, "invalid_value", "messages is missing"},
		{"messages wrong type", `{"model":"coder","messages":"hi"}`, 400, "invalid_value", "messages must be a list"},
		{"bad role", `{"model":"coder","messages":[{"role":"bot","content":"x"}]}`, 400, "invalid_value", `role "bot"`},
		{"no content", `{"model":"coder","messages":[{"role":"user"}]}`, 400, "invalid_value", "has no content"},
		{"image", `{"model":"coder","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "invalid_value", "only text parts"},
		{"tool without call", `{"model":"coder","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c9","content":"r"},{"role":"user","content":"y"}]}`, 400, "invalid_value", "no earlier assistant message made"},
		{"tool without id", `{"model":"coder","messages":[{"role":"tool","content":"r"},{"role":"user","content":"y"}]}`, 400, "invalid_value", "without tool_call_id"},
		{"last not user", `{"model":"coder","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}`, 400, "invalid_value", "must be the user's"},
		{"n", `{"model":"coder","n":2,"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_value", "n must be 1"},
		{"conversation without store", `{"model":"coder","conversation_id":"c","messages":[{"role":"user","content":"x"}]}`, 400, "invalid_value", "keeps no conversations"},
		{"huge", `{"model":"coder","messages":[{"role":"user","content":"` + strings.Repeat("x", 70<<10) + `"}]}`, 413, "request_too_large", "larger than 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, e.url+"/v1/chat/completions", tc.body)
			wantError(t, resp, body, tc.status, tc.code, tc.says)
		})
	}
	// The server survives them all, and a good request still works.
	resp, body := post(t, e.url+"/v1/chat/completions", hello)
	if resp.StatusCode != 200 {
		t.Fatalf("after bad requests: %d %s", resp.StatusCode, body)
	}
	// A whole conversation with a tool call and its answer is accepted.
	resp, body = post(t, e.url+"/v1/chat/completions", `{"model":"coder","messages":[{"role":"user","content":"x"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"echo","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"assistant","content":"done"},{"role":"user","content":[{"type":"text","text":"again"}]}],
		"temperature":0.3,"tools":[],"user":"u1"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "answer: echo again") {
		t.Fatalf("a whole conversation: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, e.url+"/v1/chat/completions", hello, "Content-Type", "text/plain")
	wantError(t, resp, body, 415, "unsupported_media_type", "application/json")
}

func TestTurnsPerToken(t *testing.T) {
	e := newEnv(t, nil, func(o *openaicompat.ServerOptions) { o.TurnsPerToken = 1 })
	e.block = make(chan struct{})
	first := make(chan int, 1)
	go func() {
		resp, _ := post(t, e.url+"/v1/chat/completions", hello, "Authorization", "Bearer a")
		first <- resp.StatusCode
	}()
	for e.srv.Running() != 1 {
		time.Sleep(time.Millisecond)
	}
	resp, body := post(t, e.url+"/v1/chat/completions", hello, "Authorization", "Bearer a")
	wantError(t, resp, body, 429, "too_many_concurrent_turns", "runs 1 turns at once")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another token is not held up by the first one's turns (the control).
	done := make(chan int, 1)
	go func() {
		resp, _ := post(t, e.url+"/v1/chat/completions", hello, "Authorization", "Bearer b")
		done <- resp.StatusCode
	}()
	for e.srv.Running() != 2 {
		time.Sleep(time.Millisecond)
	}
	close(e.block)
	if s := <-first; s != 200 {
		t.Errorf("first turn: %d", s)
	}
	if s := <-done; s != 200 {
		t.Errorf("other token's turn: %d", s)
	}
}

func TestTurnBudget(t *testing.T) {
	e := newEnv(t, []agents.Spec{{Name: "coder", Model: "m", Timeout: agents.Duration(50 * time.Millisecond)}}, nil)
	e.block = make(chan struct{})
	defer close(e.block)
	resp, body := post(t, e.url+"/v1/chat/completions", hello)
	wantError(t, resp, body, 504, "turn_budget_exceeded", "time budget of 50ms")
	if resp.Header.Get("X-Should-Retry") != "false" {
		t.Error("a turn past its budget must not be retried by clients: it ran tools")
	}
	if err := <-e.ctxErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the tool saw %v, want its deadline", err)
	}
	// In a stream, the error comes as an error event, then [DONE].
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.url+"/v1/chat/completions", strings.NewReader(strings.Replace(hello, `{`, `{"stream":true,`, 1)))
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	lines := readSSE(t, resp2.Body)
	if len(lines) < 2 || lines[len(lines)-1] != "[DONE]" || !strings.Contains(lines[len(lines)-2], `"code":"turn_budget_exceeded"`) {
		t.Errorf("stream: %q", lines)
	}
}

// A client that goes away cancels the turn and the tool it runs.
func TestDisconnectCancels(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.block = make(chan struct{})
	defer close(e.block)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/v1/chat/completions", strings.NewReader(hello))
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	for e.calls.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-e.ctxErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the tool saw %v, want cancelled", err)
	}
	<-errc
	for e.srv.Running() != 0 {
		time.Sleep(time.Millisecond)
	}
}

func TestApproval(t *testing.T) {
	for _, tc := range []struct {
		un   agents.Unattended
		runs int32
		says string
	}{{"", 0, "did not allow"}, {agents.Refuse, 0, "did not allow"}, {agents.Allow, 1, "echo hi"}} {
		t.Run(string(tc.un), func(t *testing.T) {
			e := newEnv(t, []agents.Spec{{Name: "coder", Model: "m", Approve: []string{"ec*"}, Unattended: tc.un}}, nil)
			resp, body := post(t, e.url+"/v1/chat/completions", hello)
			if resp.StatusCode != 200 || !strings.Contains(string(body), tc.says) {
				t.Errorf("%d %s, want %q", resp.StatusCode, body, tc.says)
			}
			if e.calls.Load() != tc.runs {
				t.Errorf("the tool ran %d times, want %d", e.calls.Load(), tc.runs)
			}
		})
	}
}

// memConversations is an in-memory Conversations for the wire test; the
// store's own is tested against SQLite.
type memConversations struct {
	mu sync.Mutex
	m  map[string][]agent.Message
}

func (c *memConversations) Load(_ context.Context, owner, ag, id string) ([]agent.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[owner+"/"+ag+"/"+id], nil
}

func (c *memConversations) Save(_ context.Context, owner, ag, id string, msgs []agent.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[owner+"/"+ag+"/"+id] = msgs
	return nil
}

func TestConversation(t *testing.T) {
	store := &memConversations{m: map[string][]agent.Message{}}
	var seen atomic.Int32
	e := newEnv(t, nil, func(o *openaicompat.ServerOptions) {
		o.Conversations = store
		o.Backend = func(spec agents.Spec) (*openaicompat.Backend, error) {
			return &openaicompat.Backend{Model: agent.ModelFunc(func(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
				seen.Store(int32(len(req.Messages)))
				return &agent.Reply{Message: agent.Message{Content: fmt.Sprintf("%d messages", len(req.Messages))}}, nil
			})}, nil
		}
	})
	turn := func(tok string) string {
		_, body := post(t, e.url+"/v1/chat/completions", `{"model":"coder","conversation_id":"c1","messages":[{"role":"user","content":"x"}]}`, "Authorization", tok)
		return string(body)
	}
	turn("Bearer a")
	if b := turn("Bearer a"); !strings.Contains(b, "3 messages") {
		t.Errorf("the second turn should see the first (user, assistant, user): %s", b)
	}
	if b := turn("Bearer other"); !strings.Contains(b, "1 messages") {
		t.Errorf("another token reads the conversation: %s", b)
	}
}
