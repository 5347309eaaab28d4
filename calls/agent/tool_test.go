package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
)

// progressLog keeps the progress reports of one call.
type progressLog struct {
	mu   sync.Mutex
	msgs []string
	vals []float64
}

func (p *progressLog) Report(_ context.Context, v, _ float64, msg string) {
	p.mu.Lock()
	p.msgs = append(p.msgs, msg)
	p.vals = append(p.vals, v)
	p.mu.Unlock()
}

func (p *progressLog) messages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

func addAgent(t *testing.T, r *calls.Router, o agent.ToolOptions) {
	t.Helper()
	c, err := agent.NewCall(o)
	if err != nil {
		t.Fatal(err)
	}
	others := slices.DeleteFunc(agentsOf(r), func(x calls.Call) bool { return x.Name == c.Name })
	if _, err := r.Sync(agent.ToolGroup, append(others, c)); err != nil {
		t.Fatal(err)
	}
}

func agentsOf(r *calls.Router) []calls.Call {
	var out []calls.Call
	for _, c := range r.List() {
		if c.Group == agent.ToolGroup {
			out = append(out, c)
		}
	}
	return out
}

func toolNames(ts []agent.Tool) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func structured(t *testing.T, res *calls.Result) agent.ToolResult {
	t.Helper()
	out, ok := res.Structured.(*agent.ToolResult)
	if !ok {
		t.Fatalf("structured = %T, want *agent.ToolResult (text %q)", res.Structured, res.TextOf())
	}
	return *out
}

func TestAgentToolRunsTheLoop(t *testing.T) {
	r, _ := echoRouter(t)
	var seen *calls.Session
	add(t, r, tool("whoami", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		seen = req.Session
		return calls.Text("you"), nil
	}))
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){
		callTools(agent.ToolCall{Name: "echo", Arguments: `{"text":"hi"}`}, agent.ToolCall{Name: "whoami"}),
		answer("All done."),
	}}
	addAgent(t, r, agent.ToolOptions{Name: "coder", Description: "Writes code.", Model: m, Tools: r,
		Agent: agent.Options{Model: "tiny", System: "You code."}})
	c, ok := r.Lookup("agent_coder")
	if !ok || !strings.HasPrefix(c.Description, "Writes code. It works on its own") || len(c.OutputSchema) == 0 {
		t.Fatalf("agent call = %+v", c)
	}
	sess := calls.NewSession("outer")
	prog := &progressLog{}
	res, err := r.Call(t.Context(), "agent_coder", &calls.Request{
		Arguments: json.RawMessage(`{"task":"say hi","context":"be nice","files":["src/a.sh"]}`),
		Session:   sess, Progress: prog,
	})
	if err != nil || res.IsError {
		t.Fatalf("call = %v, %q", err, res.TextOf())
	}
	out := structured(t, res)
	if out.Answer != "All done." || out.Steps != 2 || out.Agent != "coder" || out.Model != "tiny" || len(out.Calls) != 2 {
		t.Fatalf("result = %+v", out)
	}
	if out.Calls[0] != (agent.ToolStep{Step: 1, Tool: "echo", OK: true, Summary: "echo: hi"}) {
		t.Fatalf("first step = %+v", out.Calls[0])
	}
	if out.Usage == nil || out.Usage.PromptTokens != 15 {
		t.Fatalf("usage = %+v, want every step counted", out.Usage)
	}
	if txt := res.TextOf(); !strings.HasPrefix(txt, "All done.\n\n[coder: 2 steps, 2 tool calls]\n- step 1: echo ok: echo: hi") {
		t.Fatalf("text = %q", txt)
	}
	// The inner calls ran in the caller's session.
	if seen != sess {
		t.Fatalf("inner call's session = %v, want the caller's", seen)
	}
	// The model saw the task, the context and the files; not itself.
	req := m.requests()[0]
	var user string
	for _, msg := range req.Messages {
		if msg.Role == agent.RoleUser {
			user = msg.Content
		}
	}
	for _, want := range []string{"say hi", "Context:\nbe nice", "- src/a.sh"} {
		if !strings.Contains(user, want) {
			t.Fatalf("prompt %q lacks %q", user, want)
		}
	}
	if names := toolNames(req.Tools); slices.Contains(names, "agent_coder") || !slices.Contains(names, "echo") {
		t.Fatalf("the agent was offered %v", names)
	}
	// Progress: one report per model step and per tool start and end,
	// rising.
	msgs := prog.messages()
	want := []string{"step 1: thinking", "step 1: echo", "step 1: whoami", "step 1: echo ok", "step 1: whoami ok", "step 2: thinking"}
	for _, w := range want {
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, w) }) {
			t.Fatalf("progress %q lacks %q", msgs, w)
		}
	}
	if len(msgs) != 6 {
		t.Fatalf("progress = %q, want 6 reports", msgs)
	}
	if !slices.IsSorted(prog.vals) || prog.vals[0] <= 0 {
		t.Fatalf("progress values %v do not rise", prog.vals)
	}
}

func TestAgentToolDepth(t *testing.T) {
	r, _ := echoRouter(t)
	var offered [][]string
	var mu sync.Mutex
	m := agent.ModelFunc(func(ctx context.Context, req *agent.Request, _ func(agent.Delta)) (*agent.Reply, error) {
		mu.Lock()
		offered = append(offered, toolNames(req.Tools))
		mu.Unlock()
		// Ask for the other agent once, then answer.
		for _, msg := range req.Messages {
			if msg.Role == agent.RoleTool {
				return &agent.Reply{Message: agent.Message{Content: "answered: " + msg.Content}}, nil
			}
		}
		return &agent.Reply{Message: agent.Message{ToolCalls: []agent.ToolCall{{Name: "agent_b", Arguments: `{"task":"t"}`}}}}, nil
	})
	for _, depth := range []int{1, 2} {
		t.Run("max"+string(rune('0'+depth)), func(t *testing.T) {
			offered = nil
			addAgent(t, r, agent.ToolOptions{Name: "a", Model: m, Tools: r, MaxDepth: depth})
			addAgent(t, r, agent.ToolOptions{Name: "b", Model: m, Tools: r, MaxDepth: depth})
			res, err := r.Call(t.Context(), "agent_a", &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)})
			if err != nil || res.IsError {
				t.Fatalf("call = %v, %q", err, res.TextOf())
			}
			out := structured(t, res)
			switch depth {
			case 1:
				// agent_b is not offered: the call is an unknown tool.
				if names := offered[0]; slices.Contains(names, "agent_a") || slices.Contains(names, "agent_b") {
					t.Fatalf("depth 1 offered %v", names)
				}
				if out.Calls[0].OK || !strings.Contains(out.Calls[0].Summary, "unknown tool") {
					t.Fatalf("depth 1 call of agent_b = %+v", out.Calls[0])
				}
			case 2:
				// a may call b (control), b is offered no agent at all.
				if names := offered[0]; !slices.Contains(names, "agent_b") || slices.Contains(names, "agent_a") {
					t.Fatalf("depth 2, outer agent offered %v", names)
				}
				if names := offered[1]; slices.Contains(names, "agent_a") || slices.Contains(names, "agent_b") {
					t.Fatalf("depth 2, inner agent offered %v", names)
				}
				if !out.Calls[0].OK {
					t.Fatalf("depth 2 call of agent_b = %+v", out.Calls[0])
				}
			}
		})
	}
	// A call made deeper than the limit, whatever offered it, is refused.
	ctx := agent.WithDepth(t.Context(), 2)
	res, err := r.Call(ctx, "agent_b", &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)})
	if err != nil || !res.IsError || res.Reason != agent.ReasonRecursion || !strings.Contains(res.TextOf(), "refused") {
		t.Fatalf("deep call = %v, %+v", err, res)
	}
}

func TestAgentToolPolicy(t *testing.T) {
	r, n := echoRouter(t)
	m := &fakeModel{forever: func(req *agent.Request) (*agent.Reply, error) {
		if len(lastToolMessages(req)) > 0 {
			return &agent.Reply{Message: agent.Message{Content: "ok"}}, nil
		}
		return &agent.Reply{Message: agent.Message{ToolCalls: []agent.ToolCall{{Name: "echo", Arguments: `{"text":"x"}`}, {Name: "fail"}}}}, nil
	}}
	addAgent(t, r, agent.ToolOptions{Name: "a", Model: m, Tools: r,
		NeedsApproval: func(name string) bool { return name == "echo" },
		Allow: func(ctx context.Context) func(calls.Call) bool {
			if ctx.Value(hideFail{}) != nil {
				return func(c calls.Call) bool { return c.Name != "fail" }
			}
			return nil
		},
	})
	res, err := r.Call(t.Context(), "agent_a", &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)})
	if err != nil {
		t.Fatal(err)
	}
	out := structured(t, res)
	if out.Calls[0].OK || !strings.Contains(out.Calls[0].Summary, "needs a person's approval") || n.Load() != 0 {
		t.Fatalf("an approval-required call = %+v (echo ran %d times)", out.Calls[0], n.Load())
	}
	if out.Calls[1].Summary == "" || strings.Contains(out.Calls[1].Summary, "unknown tool") {
		t.Fatalf("fail, allowed, = %+v", out.Calls[1])
	}
	// The caller's context decides what Allow lets through.
	res, err = r.Call(context.WithValue(t.Context(), hideFail{}, true), "agent_a", &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out := structured(t, res); !strings.Contains(out.Calls[1].Summary, "unknown tool") {
		t.Fatalf("fail, hidden, = %+v", out.Calls[1])
	}
}

type hideFail struct{}

func TestAgentToolBadInput(t *testing.T) {
	r, _ := echoRouter(t)
	m := &fakeModel{forever: answer("x")}
	addAgent(t, r, agent.ToolOptions{Name: "a", Model: m, Tools: r})
	for _, c := range []struct{ args, want string }{
		{`{}`, "task is empty"},
		{`{"task":"  "}`, "task is empty"},
		{`{"task":"x","extra":1}`, "unknown field"},
		{`{"Task":"x"}`, "Task"},
		{`{"task":"x","files":["/etc/passwd"]}`, "outside the workspace"},
		{`{"task":"x","files":["a/../../b"]}`, "outside the workspace"},
		{`{"task":"x","files":[""]}`, "not a usable path"},
		{`{"task":"` + strings.Repeat("a", agent.MaxTaskBytes+1) + `"}`, "put long material in a workspace file"},
		{`[1]`, "invalid arguments"},
	} {
		res, err := r.Call(t.Context(), "agent_a", &calls.Request{Arguments: json.RawMessage(c.args)})
		if err != nil || !res.IsError || !strings.Contains(res.TextOf(), c.want) {
			t.Errorf("%.60s: %v, %q; want a tool error with %q", c.args, err, res.TextOf(), c.want)
		}
	}
	if n := len(m.requests()); n != 0 {
		t.Fatalf("bad input reached the model %d times", n)
	}
	// Control: good input runs.
	res, err := r.Call(t.Context(), "agent_a", &calls.Request{Arguments: json.RawMessage(`{"task":"x","files":["a/b.txt","./c"]}`)})
	if err != nil || res.IsError {
		t.Fatalf("good input: %v, %q", err, res.TextOf())
	}
	if _, err := agent.NewCall(agent.ToolOptions{Name: "a b", Model: m}); !errors.Is(err, agent.ErrInvalidTool) {
		t.Fatalf("a bad name: %v", err)
	}
	if _, err := agent.NewCall(agent.ToolOptions{Name: "a"}); !errors.Is(err, agent.ErrInvalidTool) {
		t.Fatalf("no model: %v", err)
	}
}

func TestAgentToolStops(t *testing.T) {
	r, _ := echoRouter(t)
	loop := &fakeModel{forever: callTools(agent.ToolCall{Name: "echo", Arguments: `{"text":"again"}`})}
	addAgent(t, r, agent.ToolOptions{Name: "loop", Model: loop, Tools: r, Agent: agent.Options{MaxSteps: 2}})
	res, err := r.Call(t.Context(), "agent_loop", &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)})
	if err != nil || !res.IsError {
		t.Fatalf("step limit: %v, %+v", err, res)
	}
	if out := structured(t, res); out.Steps != 2 || !strings.Contains(out.Stopped, "step limit") || len(out.Calls) != 2 {
		t.Fatalf("step limit result = %+v", out)
	}
	broken := agent.ModelFunc(func(context.Context, *agent.Request, func(agent.Delta)) (*agent.Reply, error) {
		return nil, errors.New("endpoint down")
	})
	addAgent(t, r, agent.ToolOptions{Name: "broken", Model: broken, Tools: r})
	res, err = r.Call(t.Context(), "agent_broken", &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)})
	if err != nil || !res.IsError || !strings.Contains(res.TextOf(), "endpoint down") {
		t.Fatalf("model failure: %v, %q", err, res.TextOf())
	}
}

// Cancelling the outer call cancels the tool call the agent is running.
func TestAgentToolCancel(t *testing.T) {
	r, _ := echoRouter(t)
	started := make(chan struct{})
	stopped := make(chan error, 1)
	add(t, r, tool("block", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	}))
	m := &fakeModel{forever: callTools(agent.ToolCall{Name: "block"})}
	addAgent(t, r, agent.ToolOptions{Name: "a", Model: m, Tools: r})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Call(ctx, "agent_a", &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)})
		done <- err
	}()
	<-started
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("inner call ended with %v", err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("outer call = %v, want cancelled", err)
	}
}

func TestAgentToolCard(t *testing.T) {
	r, _ := echoRouter(t)
	m := &fakeModel{forever: answer("x")}
	addAgent(t, r, agent.ToolOptions{Name: "a", Model: m, Tools: r, Card: &agent.CardOptions{}, Agent: agent.Options{System: "Sys."},
		Allow: func(context.Context) func(calls.Call) bool {
			return func(c calls.Call) bool { return c.Name == "echo" }
		}})
	addAgent(t, r, agent.ToolOptions{Name: "nocard", Model: m, Tools: r, Agent: agent.Options{System: "Sys."}})
	for _, name := range []string{"agent_a", "agent_nocard"} {
		if _, err := r.Call(t.Context(), name, &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	reqs := m.requests()
	if sys := reqs[0].Messages[0].Content; !strings.Contains(sys, "- echo: echo tool") || strings.Contains(sys, "fail") || strings.Contains(sys, "agent_") {
		t.Fatalf("card of the allowed tools = %q", sys)
	}
	if sys := reqs[1].Messages[0].Content; sys != "Sys." {
		t.Fatalf("without a card, system = %q", sys)
	}
}

// The structured result matches the output schema the call declares, in
// success and when the agent stopped early.
func TestAgentToolOutputSchema(t *testing.T) {
	r, _ := echoRouter(t)
	good := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){callTools(agent.ToolCall{Name: "echo", Arguments: `{"text":"a"}`}), answer("ok")}}
	loop := &fakeModel{forever: callTools(agent.ToolCall{Name: "fail"})}
	addAgent(t, r, agent.ToolOptions{Name: "good", Model: good, Tools: r})
	addAgent(t, r, agent.ToolOptions{Name: "loop", Model: loop, Tools: r, Agent: agent.Options{MaxSteps: 1}})
	c, _ := r.Lookup("agent_good")
	var schema jsonschema.Schema
	if err := json.Unmarshal(c.OutputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	rs, err := schema.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"agent_good", "agent_loop"} {
		res, err := r.Call(t.Context(), name, &calls.Request{Arguments: json.RawMessage(`{"task":"go"}`)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res.Structured)
		var v any
		_ = json.Unmarshal(b, &v)
		if err := rs.Validate(v); err != nil {
			t.Fatalf("%s: %s does not match the output schema: %v", name, b, err)
		}
	}
	// Control: the schema does refuse a result without an answer.
	if rs.Validate(map[string]any{"agent": "x", "steps": 1, "calls": []any{}}) == nil {
		t.Fatal("the output schema accepts a result with no answer")
	}
}
