package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
)

// fakeModel answers each step with the next reply of its script and keeps
// every request it was sent. It streams content in small pieces, as a real
// endpoint does.
type fakeModel struct {
	mu      sync.Mutex
	steps   []func(req *agent.Request) (*agent.Reply, error)
	reqs    []*agent.Request
	forever func(req *agent.Request) (*agent.Reply, error) // used once steps run out
}

func (m *fakeModel) Complete(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
	m.mu.Lock()
	m.reqs = append(m.reqs, req)
	var f func(*agent.Request) (*agent.Reply, error)
	if len(m.steps) > 0 {
		f, m.steps = m.steps[0], m.steps[1:]
	} else {
		f = m.forever
	}
	m.mu.Unlock()
	if f == nil {
		return nil, errors.New("fake model: script ran out")
	}
	r, err := f(req)
	if err != nil {
		return nil, err
	}
	if r.Message.Reasoning != "" {
		onDelta(agent.Delta{Reasoning: r.Message.Reasoning})
	}
	for s := r.Message.Content; s != ""; {
		n := min(len(s), 5)
		onDelta(agent.Delta{Content: s[:n]})
		s = s[n:]
	}
	return r, nil
}

func (m *fakeModel) requests() []*agent.Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*agent.Request(nil), m.reqs...)
}

func answer(s string) func(*agent.Request) (*agent.Reply, error) {
	return func(*agent.Request) (*agent.Reply, error) {
		return &agent.Reply{Message: agent.Message{Content: s}, Usage: agent.Usage{PromptTokens: 10, CompletionTokens: 2}}, nil
	}
}

func callTools(tcs ...agent.ToolCall) func(*agent.Request) (*agent.Reply, error) {
	return func(*agent.Request) (*agent.Reply, error) {
		return &agent.Reply{Message: agent.Message{ToolCalls: tcs}, FinishReason: "tool_calls", Usage: agent.Usage{PromptTokens: 5, CompletionTokens: 1}}, nil
	}
}

func text(s string) func(*agent.Request) (*agent.Reply, error) {
	return func(*agent.Request) (*agent.Reply, error) {
		return &agent.Reply{Message: agent.Message{Content: s}}, nil
	}
}

const objSchema = `{"type":"object","properties":{"text":{"type":"string"}}}`

func tool(name string, h calls.HandlerFunc) calls.Call {
	return calls.Call{Name: name, Description: name + " tool", InputSchema: json.RawMessage(objSchema), Kind: calls.KindTool, Handler: h}
}

// echoRouter holds "echo", which answers its "text" argument, and "fail",
// which always answers a tool error.
func echoRouter(t *testing.T) (*calls.Router, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	r := calls.NewRouter(nil)
	add(t, r, tool("echo", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		n.Add(1)
		var in struct {
			Text string `json:"text"`
		}
		if err := calls.DecodeArgs(req.Arguments, &in); err != nil {
			return calls.Errorf("%v", err), nil
		}
		return calls.Text("echo: " + in.Text), nil
	}))
	add(t, r, tool("fail", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		return calls.Errorf("exit status 3: no such file"), nil
	}))
	return r, &n
}

func add(t *testing.T, r *calls.Router, c calls.Call) {
	t.Helper()
	if err := r.Add(c); err != nil {
		t.Fatal(err)
	}
}

func lastToolMessages(req *agent.Request) []agent.Message {
	var out []agent.Message
	for _, m := range req.Messages {
		if m.Role == agent.RoleTool {
			out = append(out, m)
		}
	}
	return out
}

func TestAnswerWithoutTools(t *testing.T) {
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){answer("Paris.")}}
	var content strings.Builder
	a := agent.New(m, nil, &agent.Options{Model: "m1", System: "be brief", OnEvent: func(e agent.Event) {
		if e.Kind == agent.EventContent {
			content.WriteString(e.Text)
		}
	}})
	turn, err := a.Ask(t.Context(), "capital of France?")
	if err != nil {
		t.Fatal(err)
	}
	if turn.Answer != "Paris." || turn.Steps != 1 || len(turn.Calls) != 0 {
		t.Fatalf("turn = %+v", turn)
	}
	if content.String() != "Paris." {
		t.Errorf("streamed %q", content.String())
	}
	if turn.Usage.PromptTokens != 10 || turn.Usage.CompletionTokens != 2 {
		t.Errorf("usage = %+v", turn.Usage)
	}
	req := m.requests()[0]
	if req.Model != "m1" || req.Messages[0].Role != agent.RoleSystem || req.Messages[1].Content != "capital of France?" {
		t.Errorf("request = %+v", req)
	}
	if h := a.History(); len(h) != 2 || h[1].Role != agent.RoleAssistant {
		t.Errorf("history = %+v", h)
	}
}

func TestToolCallThenAnswer(t *testing.T) {
	r, n := echoRouter(t)
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){
		callTools(agent.ToolCall{ID: "c1", Name: "echo", Arguments: `{"text":"hi"}`}),
		answer("It said hi."),
	}}
	var kinds []agent.EventKind
	a := agent.New(m, r, &agent.Options{OnEvent: func(e agent.Event) { kinds = append(kinds, e.Kind) }})
	turn, err := a.Ask(t.Context(), "say hi")
	if err != nil {
		t.Fatal(err)
	}
	if turn.Answer != "It said hi." || turn.Steps != 2 || n.Load() != 1 {
		t.Fatalf("turn = %+v, echo ran %d times", turn, n.Load())
	}
	rec := turn.Calls[0]
	if rec.Name != "echo" || rec.Result != "echo: hi" || rec.IsError || rec.ID != "c1" {
		t.Errorf("record = %+v", rec)
	}
	reqs := m.requests()
	if len(reqs[0].Tools) != 2 || reqs[0].Tools[0].Name != "echo" || string(reqs[0].Tools[0].Parameters) != objSchema {
		t.Errorf("tools sent = %+v", reqs[0].Tools)
	}
	tm := lastToolMessages(reqs[1])
	if len(tm) != 1 || tm[0].Content != "echo: hi" || tm[0].ToolCallID != "c1" || tm[0].ToolName != "echo" {
		t.Errorf("tool messages = %+v", tm)
	}
	want := []agent.EventKind{agent.EventModelStart, agent.EventModelDone, agent.EventToolStart, agent.EventToolDone,
		agent.EventModelStart, agent.EventContent, agent.EventContent, agent.EventContent, agent.EventModelDone}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("events = %v, want %v", kinds, want)
	}
	if turn.Usage.PromptTokens != 15 {
		t.Errorf("usage = %+v", turn.Usage)
	}
}

func TestParallelToolCalls(t *testing.T) {
	r := calls.NewRouter(nil)
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	add(t, r, tool("meet", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		arrived.Done()
		select {
		case <-both: // the other call is running at the same time
			return calls.Text("met"), nil
		case <-time.After(10 * time.Second):
			return calls.Errorf("the other call never started: calls ran one after another"), nil
		}
	}))
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){
		callTools(agent.ToolCall{ID: "a", Name: "meet"}, agent.ToolCall{ID: "b", Name: "meet"}),
		answer("done"),
	}}
	turn, err := agent.New(m, r, nil).Ask(t.Context(), "go")
	if err != nil {
		t.Fatal(err)
	}
	if len(turn.Calls) != 2 {
		t.Fatalf("calls = %+v", turn.Calls)
	}
	for _, c := range turn.Calls {
		if c.IsError || c.Result != "met" {
			t.Errorf("call %s: %+v", c.ID, c)
		}
	}
	tm := lastToolMessages(m.requests()[1])
	if len(tm) != 2 || tm[0].ToolCallID != "a" || tm[1].ToolCallID != "b" {
		t.Errorf("tool results out of order: %+v", tm)
	}
}

func TestToolFailuresGoBackToTheModel(t *testing.T) {
	tests := []struct {
		name    string
		call    agent.ToolCall
		wantRes string
		echoRan bool
	}{
		{"tool error", agent.ToolCall{Name: "fail", Arguments: `{}`}, "error: exit status 3: no such file", false},
		{"invalid json", agent.ToolCall{Name: "echo", Arguments: `{"text": "hi"`}, "error: invalid arguments for echo: not valid JSON", false},
		{"not an object", agent.ToolCall{Name: "echo", Arguments: `["hi"]`}, "error: invalid arguments for echo: a JSON object is needed, not an array", false},
		{"unknown tool", agent.ToolCall{Name: "rm_rf", Arguments: `{}`}, `error: unknown tool "rm_rf"; the available tools are: echo, fail`, false},
		{"schema violation from the handler", agent.ToolCall{Name: "echo", Arguments: `{"txt":"x"}`}, "error: invalid arguments: json: unknown field", true},
		{"double-encoded object", agent.ToolCall{Name: "echo", Arguments: `"{\"text\":\"hi\"}"`}, "echo: hi", true},
		{"empty arguments", agent.ToolCall{Name: "echo", Arguments: ``}, "echo: ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, n := echoRouter(t)
			m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){callTools(tt.call), answer("recovered")}}
			turn, err := agent.New(m, r, nil).Ask(t.Context(), "x")
			if err != nil {
				t.Fatal(err)
			}
			if turn.Answer != "recovered" {
				t.Errorf("answer = %q", turn.Answer)
			}
			tm := lastToolMessages(m.requests()[1])
			if len(tm) != 1 || !strings.HasPrefix(tm[0].Content, tt.wantRes) {
				t.Errorf("fed back %+v, want prefix %q", tm, tt.wantRes)
			}
			wantErr := strings.HasPrefix(tt.wantRes, "error:")
			if turn.Calls[0].IsError != wantErr {
				t.Errorf("IsError = %v", turn.Calls[0].IsError)
			}
			if (n.Load() > 0) != tt.echoRan {
				t.Errorf("echo ran %d times", n.Load())
			}
		})
	}
}

func TestMaxSteps(t *testing.T) {
	r, n := echoRouter(t)
	m := &fakeModel{forever: callTools(agent.ToolCall{Name: "echo", Arguments: `{"text":"again"}`})}
	a := agent.New(m, r, &agent.Options{MaxSteps: 3})
	turn, err := a.Ask(t.Context(), "loop")
	if !errors.Is(err, agent.ErrMaxSteps) {
		t.Fatalf("err = %v, want ErrMaxSteps", err)
	}
	if turn.Steps != 3 || len(turn.Calls) != 3 || n.Load() != 3 || len(m.requests()) != 3 {
		t.Errorf("steps %d, calls %d, runs %d, model calls %d; want 3 each", turn.Steps, len(turn.Calls), n.Load(), len(m.requests()))
	}
	// The conversation keeps the steps, every call answered, so a later
	// turn can continue.
	h := a.History()
	if len(h) != 1+3*2 || h[len(h)-1].Role != agent.RoleTool {
		t.Errorf("history = %d messages, last %+v", len(h), h[len(h)-1])
	}
}

func TestCancelStopsRunningTools(t *testing.T) {
	r := calls.NewRouter(nil)
	started := make(chan struct{})
	stopped := make(chan error, 1)
	add(t, r, tool("slow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	}))
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){callTools(agent.ToolCall{Name: "slow"})}}
	a := agent.New(m, r, nil)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-started; cancel() }()
	_, err := a.Ask(ctx, "wait")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := <-stopped; !errors.Is(got, context.Canceled) {
		t.Errorf("tool saw %v", got)
	}
	if h := a.History(); len(h) != 0 {
		t.Errorf("history after a cancelled turn = %+v, want empty", h)
	}
}

func TestModelErrorLeavesHistory(t *testing.T) {
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){
		answer("first"),
		func(*agent.Request) (*agent.Reply, error) { return nil, errors.New("connection refused") },
	}}
	a := agent.New(m, nil, nil)
	if _, err := a.Ask(t.Context(), "one"); err != nil {
		t.Fatal(err)
	}
	_, err := a.Ask(t.Context(), "two")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
	if h := a.History(); len(h) != 2 {
		t.Errorf("history = %+v", h)
	}
	a.Reset()
	if len(a.History()) != 0 {
		t.Error("Reset kept history")
	}
}

func TestApproval(t *testing.T) {
	r, n := echoRouter(t)
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){
		callTools(agent.ToolCall{ID: "1", Name: "echo", Arguments: `{"text":"a"}`}, agent.ToolCall{ID: "2", Name: "echo", Arguments: `{"text":"b"}`}),
		answer("ok"),
	}}
	var asked []string
	a := agent.New(m, r, &agent.Options{Approve: func(ctx context.Context, c agent.ToolCall) (bool, error) {
		asked = append(asked, c.ID)
		return c.ID == "2", nil
	}})
	turn, err := a.Ask(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(asked) != "[1 2]" || n.Load() != 1 {
		t.Errorf("asked %v, ran %d", asked, n.Load())
	}
	if !turn.Calls[0].Denied || !turn.Calls[0].IsError || turn.Calls[1].Denied || turn.Calls[1].Result != "echo: b" {
		t.Errorf("records = %+v", turn.Calls)
	}

	// An approver that fails ends the turn.
	m.steps = append(m.steps, callTools(agent.ToolCall{Name: "echo"}))
	a = agent.New(m, r, &agent.Options{Approve: func(context.Context, agent.ToolCall) (bool, error) {
		return false, errors.New("no terminal")
	}})
	if _, err := a.Ask(t.Context(), "y"); err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Errorf("err = %v", err)
	}
}

func TestToolCallsWrittenAsText(t *testing.T) {
	const reply = "Let me run it.\n<tool_call>\n{\"name\": \"echo\", \"arguments\": {\"text\": \"hi\"}}\n</tool_call>"
	for _, extract := range []bool{true, false} {
		t.Run(fmt.Sprint("extract=", extract), func(t *testing.T) {
			r, n := echoRouter(t)
			m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){text(reply), answer("It said hi.")}}
			var shown strings.Builder
			a := agent.New(m, r, &agent.Options{ExtractTextCalls: extract, OnEvent: func(e agent.Event) {
				if e.Kind == agent.EventContent {
					shown.WriteString(e.Text)
				}
			}})
			turn, err := a.Ask(t.Context(), "x")
			if err != nil {
				t.Fatal(err)
			}
			if !extract {
				if turn.Answer != reply || n.Load() != 0 || shown.String() != reply {
					t.Errorf("without extraction: answer %q, shown %q, runs %d", turn.Answer, shown.String(), n.Load())
				}
				return
			}
			if turn.Answer != "It said hi." || n.Load() != 1 || !turn.Calls[0].FromText || turn.Calls[0].Arguments != `{"text":"hi"}` {
				t.Errorf("turn = %+v", turn)
			}
			if shown.String() != "Let me run it.\nIt said hi." {
				t.Errorf("shown %q: the call's JSON must not be shown as answer text", shown.String())
			}
			h := a.History()
			if h[1].Content != "Let me run it." || len(h[1].ToolCalls) != 1 || h[1].ToolCalls[0].ID == "" {
				t.Errorf("assistant message = %+v", h[1])
			}
		})
	}
}

func TestTextThatIsNotACallIsShown(t *testing.T) {
	const reply = `Use {"name": "value"} in the config, or [1, 2].`
	r, _ := echoRouter(t)
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){text(reply)}}
	var shown strings.Builder
	a := agent.New(m, r, &agent.Options{ExtractTextCalls: true, OnEvent: func(e agent.Event) {
		if e.Kind == agent.EventContent {
			shown.WriteString(e.Text)
		}
	}})
	turn, err := a.Ask(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if turn.Answer != reply || shown.String() != reply || len(turn.Calls) != 0 {
		t.Errorf("answer %q, shown %q, calls %v", turn.Answer, shown.String(), turn.Calls)
	}
}

func TestToolsRelistedEachStep(t *testing.T) {
	r, _ := echoRouter(t)
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){
		func(*agent.Request) (*agent.Reply, error) {
			// The server's tool list changes while the turn runs.
			add(t, r, tool("late", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("late ok"), nil }))
			r.Remove("fail")
			return &agent.Reply{Message: agent.Message{ToolCalls: []agent.ToolCall{{Name: "late"}}}}, nil
		},
		answer("fine"),
	}}
	turn, err := agent.New(m, r, nil).Ask(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if turn.Calls[0].Result != "late ok" {
		t.Errorf("record = %+v", turn.Calls[0])
	}
	var names []string
	for _, tl := range m.requests()[1].Tools {
		names = append(names, tl.Name)
	}
	if fmt.Sprint(names) != "[echo late]" {
		t.Errorf("second step saw tools %v", names)
	}
}

func TestLongResultsAreCut(t *testing.T) {
	r := calls.NewRouter(nil)
	add(t, r, tool("big", func(context.Context, *calls.Request) (*calls.Result, error) {
		return calls.Text(strings.Repeat("é", 1000)), nil
	}))
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){callTools(agent.ToolCall{Name: "big"}), answer("ok")}}
	turn, err := agent.New(m, r, &agent.Options{MaxResultBytes: 101}).Ask(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	res := turn.Calls[0].Result
	if !strings.HasPrefix(res, strings.Repeat("é", 50)+"\n[output cut: 100 of 2000 bytes shown]") {
		t.Errorf("result = %q", res)
	}
}

func TestSetModel(t *testing.T) {
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){answer("a"), answer("b")}}
	a := agent.New(m, nil, &agent.Options{Model: "one"})
	if _, err := a.Ask(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	a.SetModel("two")
	if _, err := a.Ask(t.Context(), "y"); err != nil {
		t.Fatal(err)
	}
	if got := m.requests()[1].Model; got != "two" || a.Model() != "two" {
		t.Errorf("model = %q", got)
	}
	if len(m.requests()[1].Messages) != 3 {
		t.Errorf("second request carries %d messages, want 3", len(m.requests()[1].Messages))
	}
}

func TestToolProgressEvents(t *testing.T) {
	r := calls.NewRouter(nil)
	add(t, r, tool("work", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		req.Progress.Report(ctx, 1, 2, "half")
		req.Progress.Report(ctx, 2, 2, "done")
		return calls.Text("ok"), nil
	}))
	m := &fakeModel{steps: []func(*agent.Request) (*agent.Reply, error){callTools(agent.ToolCall{ID: "w", Name: "work"}), answer("ok")}}
	var got []string
	a := agent.New(m, r, &agent.Options{OnEvent: func(e agent.Event) {
		if e.Kind == agent.EventToolProgress {
			got = append(got, fmt.Sprintf("%s %v/%v %s", e.Call.ID, e.Progress, e.Total, e.Text))
		}
	}})
	if _, err := a.Ask(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[w 1/2 half w 2/2 done]" {
		t.Errorf("progress events = %v", got)
	}
}
