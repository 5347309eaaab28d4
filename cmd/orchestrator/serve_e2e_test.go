package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// served is a running `orchestrator serve`.
type served struct {
	url    string // up to and including /v1
	addr   string
	agents string // the agents file
	logs   *mcptest.SyncBuffer
}

var servingRE = regexp.MustCompile(`at http://(\S+)/v1 `)

// startServe runs `orchestrator serve` on a free port with the agents of
// agentsYAML (none: the flags' default agent) and waits for its address.
func (c *chain) startServe(t *testing.T, agentsYAML string, env []string, args ...string) *served {
	t.Helper()
	all := []string{"serve", "--http", "127.0.0.1:0", "--membrane", c.membrane, "--base-url", c.ollama.URL + "/v1"}
	var f string
	if agentsYAML != "" {
		f = filepath.Join(t.TempDir(), "agents.yaml")
		if err := os.WriteFile(f, []byte(agentsYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		all = append(all, "--agents", f)
	} else {
		all = append(all, "--model", c.model)
	}
	cmd := exec.Command(c.orch, append(all, args...)...)
	cmd.Env = append(c.env(t), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &served{logs: &mcptest.SyncBuffer{}, agents: f}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("orchestrator serve logs:\n%s", s.logs.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				line <- m[1]
			}
		}
		close(line)
	}()
	select {
	case addr, ok := <-line:
		if !ok {
			t.Fatalf("orchestrator serve exited before serving:\n%s", s.logs.String())
		}
		s.addr, s.url = addr, "http://"+addr+"/v1"
	case <-time.After(90 * time.Second):
		t.Fatalf("orchestrator serve did not start:\n%s", s.logs.String())
	}
	return s
}

const coderYAML = `agents:
  - name: coder
    description: runs shell commands in the sandbox
    model: scripted
    tools: [sh]
    max_steps: 4
`

const wantAnswer = "The command printed hello."

// curl drives the API as a shell script would.
func TestE2EServeCurl(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	s := c.startServe(t, coderYAML, nil)
	curl := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), "curl", append([]string{"-sS", "--max-time", "120"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return string(out)
	}
	body := `{"model":"coder","messages":[{"role":"user","content":"say hello"}]}`
	out := curl("-H", "Content-Type: application/json", "-d", body, s.url+"/chat/completions")
	var resp struct {
		Choices []struct {
			Message struct{ Content string }
		}
		Usage struct {
			CompletionTokens int64 `json:"completion_tokens"`
		}
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Choices) != 1 || strings.TrimSpace(resp.Choices[0].Message.Content) != wantAnswer {
		t.Fatalf("non-streaming: %s", out)
	}
	if resp.Usage.CompletionTokens == 0 {
		t.Errorf("no usage: %s", out)
	}
	out = curl("-N", "-H", "Content-Type: application/json", "-d", strings.Replace(body, "{", `{"stream":true,`, 1), s.url+"/chat/completions")
	if !strings.HasSuffix(strings.TrimSpace(out), "data: [DONE]") || !strings.Contains(out, `"reasoning_content":"\n[tool sh {\"cmd\":\"echo hello\"}]\n"`) {
		t.Errorf("stream:\n%s", out)
	}
	var content strings.Builder
	for l := range strings.SplitSeq(out, "\n") {
		d, ok := strings.CutPrefix(l, "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct{ Content string }
			}
		}
		json.Unmarshal([]byte(d), &ch)
		for _, c := range ch.Choices {
			content.WriteString(c.Delta.Content)
		}
	}
	if strings.TrimSpace(content.String()) != wantAnswer {
		t.Errorf("streamed content %q", content.String())
	}
	// V2's shapes, with the trace of the real sh run.
	out = curl("-H", "Content-Type: application/json", "-d", `{"messages":[{"role":"user","content":"say hello"}],"trace":true}`, s.url+"/agents/coder/chat")
	var ac struct {
		Message struct{ Content string }
		Trace   []struct {
			Tool, Result string
		}
	}
	if err := json.Unmarshal([]byte(out), &ac); err != nil || strings.TrimSpace(ac.Message.Content) != wantAnswer || len(ac.Trace) != 1 ||
		ac.Trace[0].Tool != "sh" || !strings.Contains(ac.Trace[0].Result, "stdout:\nhello\n") || !strings.Contains(ac.Trace[0].Result, "isolation: ") {
		t.Errorf("agents chat: %s", out)
	}
	out = curl(s.url + "/agents/coder")
	if !strings.Contains(out, `"name":"coder"`) || !strings.Contains(out, `"tools":["sh"]`) {
		t.Errorf("agent: %s", out)
	}
}

// openai-go, the official Go client, as an application would use it.
func TestE2EServeOpenAIGo(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	const token = "serve-e2e-token"
	s := c.startServe(t, coderYAML, []string{"MEMBRANE_API_TOKEN=" + token})
	client := openai.NewClient(option.WithBaseURL(s.url), option.WithAPIKey(token), option.WithMaxRetries(0))
	ctx := t.Context()

	models, err := client.Models.List(ctx)
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != "coder" {
		t.Fatalf("models: %+v, %v", models, err)
	}
	params := openai.ChatCompletionNewParams{Model: "coder", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("say hello")}}
	comp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(comp.Choices[0].Message.Content) != wantAnswer || comp.Usage.TotalTokens == 0 {
		t.Errorf("completion: %+v", comp)
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(acc.Choices[0].Message.Content) != wantAnswer || acc.Usage.TotalTokens == 0 {
		t.Errorf("stream: %q, usage %+v", acc.Choices[0].Message.Content, acc.Usage)
	}
	// Another token is refused, with an error the client reads.
	bad := openai.NewClient(option.WithBaseURL(s.url), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
	_, err = bad.Chat.Completions.New(ctx, params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
		t.Errorf("wrong token: %v", err)
	}
	// An unknown agent is a 404 that names the agents.
	params.Model = "gpt-4o"
	_, err = client.Chat.Completions.New(ctx, params)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" || !strings.Contains(apiErr.Message, "coder") {
		t.Errorf("unknown agent: %v", err)
	}
}

// A client that goes away mid-turn kills the sleep its turn runs; a turn
// past its budget ends with an error that says so, and its sleep is
// killed too.
func TestE2EServeDisconnectAndBudget(t *testing.T) {
	const marker = "4243.5"
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"sleep ` + marker + `"}`}}, Answer: " Slept."})
	s := c.startServe(t, coderYAML+`  - name: hasty
    model: scripted
    tools: [sh]
    timeout: 3s
`, nil)
	body := `{"model":"coder","stream":true,"messages":[{"role":"user","content":"sleep"}]}`

	t.Run("disconnect", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/chat/completions", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		until(t, "the sleep to start", func() bool { return len(procsWith("sleep", marker)) > 0 })
		cancel()
		until(t, "the sleep to be killed", func() bool { return len(procsWith("sleep", marker)) == 0 })
	})
	t.Run("budget", func(t *testing.T) {
		resp, err := http.Post(s.url+"/chat/completions", "application/json", strings.NewReader(strings.Replace(body, `"coder","stream":true`, `"hasty"`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 504 || !strings.Contains(string(b), `"code":"turn_budget_exceeded"`) || !strings.Contains(string(b), "time budget of 3s") {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
		until(t, "the sleep to be killed", func() bool { return len(procsWith("sleep", marker)) == 0 })
	})
}

// Bad input gets OpenAI-shaped errors over the real listener, and the
// server goes on serving.
func TestE2EServeBadInput(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	s := c.startServe(t, coderYAML, nil, "--max-request", "64KiB")
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"unknown agent", `{"model":"nobody","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found"},
		{"bad messages", `{"model":"coder","messages":[{"role":"user","content":7}]}`, 400, "invalid_value"},
		{"tool without call", `{"model":"coder","messages":[{"role":"tool","tool_call_id":"x","content":"r"},{"role":"user","content":"x"}]}`, 400, "invalid_value"},
		{"huge", `{"model":"coder","messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<20) + `"}]}`, 413, "request_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(s.url+"/chat/completions", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct {
				Error struct{ Message, Type, Code string }
			}
			if resp.StatusCode != tc.status || json.Unmarshal(b, &e) != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("%d %s", resp.StatusCode, b)
			}
		})
	}
	resp, err := http.Post(s.url+"/chat/completions", "application/json", strings.NewReader(`{"model":"coder","messages":[{"role":"user","content":"say hello"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), wantAnswer) {
		t.Errorf("after bad input: %d %s", resp.StatusCode, b)
	}
}

// The listener keeps the same Host, Origin, token and body rules as
// membrane's: the shared suite runs against it.
func TestE2EServeHTTPRules(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	const token = "serve-rules-token"
	s := c.startServe(t, coderYAML, []string{"MEMBRANE_API_TOKEN=" + token}, "--allowed-origin", "https://chat.example.com", "--max-request", "8KiB")
	mcptest.CheckHTTPRules(t, mcptest.HTTPRules{
		URL:  s.url + "/chat/completions",
		Body: `{"model":"nobody","messages":[{"role":"user","content":"x"}]}`, Header: map[string]string{"Content-Type": "application/json"},
		OKStatus: 404, Token: token, AllowedOrigin: "https://chat.example.com", MaxBody: 8 << 10,
	})
	// A refusal of the layer is an OpenAI error object too.
	resp, err := http.Post(s.url+"/models", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(b), `"code":"invalid_api_key"`) {
		t.Errorf("no token: %d %s", resp.StatusCode, b)
	}
}

// With a conversation_id the server keeps the history in the store: the
// second turn starts from the first, and the store holds both.
func TestE2EServeConversation(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	db := filepath.Join(t.TempDir(), "store.db")
	s := c.startServe(t, coderYAML, nil, "--store", db)
	ask := func() string {
		resp, err := http.Post(s.url+"/agents/coder/chat", "application/json",
			strings.NewReader(`{"conversation_id":"talk-1","messages":[{"role":"user","content":"say hello"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), wantAnswer) || !strings.Contains(string(b), `"conversation_id":"talk-1"`) {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	ask()
	ask()
	st, err := store.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := st.LoadConversation(t.Context(), identity(&http.Request{Header: http.Header{}}), "coder", "talk-1")
	if err != nil || b == nil {
		t.Fatalf("the store holds no conversation: %v", err)
	}
	var msgs []agent.Message
	if err := json.Unmarshal(b, &msgs); err != nil {
		t.Fatal(err)
	}
	// Two turns of user, assistant (sh call), tool, assistant.
	if len(msgs) != 8 || msgs[0].Role != agent.RoleUser || msgs[4].Role != agent.RoleUser || msgs[2].Role != agent.RoleTool {
		t.Errorf("kept %d messages: %+v", len(msgs), msgs)
	}
}

// The one-shot runs a named agent: its model, with no --model given.
func TestE2EAgentOneShot(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	f := filepath.Join(t.TempDir(), "agents.yaml")
	if err := os.WriteFile(f, []byte(coderYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.run(t, c.env(t), "--membrane", c.membrane, "--base-url", c.ollama.URL+"/v1", "--agents", f, "--agent", "coder", "--json", "-e", "say hello")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	jt := decodeTurn(t, r.stdout)
	if jt.Answer != wantAnswer || jt.Model != "scripted" || len(jt.ToolCalls) != 1 || jt.ToolCalls[0].Name != "sh" {
		t.Errorf("turn = %+v", jt)
	}
	// An agent whose tools leave out sh cannot run it: the model is told.
	os.WriteFile(f, []byte(strings.Replace(coderYAML, "tools: [sh]", "tools: [python_run]", 1)), 0o600)
	r = c.run(t, c.env(t), "--membrane", c.membrane, "--base-url", c.ollama.URL+"/v1", "--agents", f, "--agent", "coder", "--json", "-e", "say hello")
	jt = decodeTurn(t, r.stdout)
	if len(jt.ToolCalls) != 1 || !jt.ToolCalls[0].IsError || !strings.Contains(jt.ToolCalls[0].Result, "unknown tool") {
		t.Errorf("sh ran outside the agent's tools: %+v", jt)
	}
}

// serve reloads the agents file when it changes, whole or not at all.
func TestE2EServeReload(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	s := c.startServe(t, coderYAML, nil)
	models := func() string {
		resp, err := http.Get(s.url + "/models")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if err := os.WriteFile(s.agents, []byte(coderYAML+"  - {name: helper, model: scripted}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	until(t, "the new agent to be served", func() bool { return strings.Contains(models(), `"helper"`) })
	// A bad file keeps the agents in use, and says why in the log.
	if err := os.WriteFile(s.agents, []byte("agents:\n  - {name: coder}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	until(t, "the refusal to be logged", func() bool { return strings.Contains(s.logs.String(), "keeping the agents in use") })
	if m := models(); !strings.Contains(m, `"helper"`) || !strings.Contains(m, `"coder"`) {
		t.Errorf("a bad file changed the agents: %s", m)
	}
}
