package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls"
)

// An agent can be served as one call (vsm's ActsAsTool): a caller hands it
// a task, the agent runs its own loop on its own model with the tools it is
// given, in the caller's session, and the caller gets back only the answer
// and a short summary of the steps. NewCall makes such a call.

// ToolGroup is the router group of agent calls. An agent never offers a
// call of this group to its model beyond the depth limit.
const ToolGroup = "agents"

// ToolPrefix starts the name of every agent call: agent "coder" is the
// call "agent_coder".
const ToolPrefix = "agent_"

// DefaultMaxDepth is how deep agent calls nest when ToolOptions leaves
// MaxDepth zero: an agent called from outside runs, and its model is
// offered no agent calls.
const DefaultMaxDepth = 1

// Bounds of an agent call's input.
const (
	MaxTaskBytes = 64 << 10
	MaxFiles     = 64
	MaxFileBytes = 1024
)

// ReasonRecursion is the Reason of an agent call refused because agent
// calls were already nested as deep as allowed.
const ReasonRecursion calls.Reason = "recursion"

// ReasonApproval is the Reason of a call an agent made that needs an
// approval nobody can give.
const ReasonApproval calls.Reason = "approval"

type depthKey struct{}

// WithDepth returns ctx marked as running inside n nested agent calls.
func WithDepth(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, depthKey{}, n)
}

// Depth returns how many agent calls ctx runs inside (0 outside any).
func Depth(ctx context.Context) int {
	n, _ := ctx.Value(depthKey{}).(int)
	return n
}

// ToolOptions configures the call NewCall makes of an agent.
type ToolOptions struct {
	// Name is the agent's name; the call is ToolPrefix+Name. Required.
	Name string
	// Description tells the caller what the agent is good at. Empty
	// means a generic one.
	Description string
	// Model answers the agent's steps. Required.
	Model Model
	// Agent is the loop's configuration: its Model (the model name),
	// System, MaxSteps, MaxParallel, MaxResultBytes, ExtractTextCalls and
	// Logger are used; Session, Approve, OnEvent and Capabilities are set
	// for each call.
	Agent Options
	// Tools is where the agent's tool calls go, in process: membrane's
	// router, or a policy View of it. Nil means the agent has no tools.
	Tools Tools
	// Allow, when set, returns which of Tools the agent may use when
	// called with the request context ctx (the agent's tool globs, the
	// caller's token scope); a nil filter allows all. Nil Allow allows
	// all. The agent's own call is never offered, nor other agent calls
	// beyond MaxDepth, whatever Allow says.
	Allow func(ctx context.Context) func(calls.Call) bool
	// NeedsApproval, when set, names the tools whose calls need a
	// person's approval. Nobody can approve a call made inside an agent
	// call, so each is refused with a tool error the model sees. Nil
	// means none need it.
	NeedsApproval func(name string) bool
	// MaxDepth bounds how deep agent calls nest: at depth MaxDepth an
	// agent is offered no agent calls, and an agent call made deeper
	// still is refused. Zero means DefaultMaxDepth.
	MaxDepth int
	// Timeout is the agent's time budget for one call. Zero means the
	// router's default.
	Timeout time.Duration
	// Concurrency bounds the calls of this agent that run at once. Zero
	// means the router's default.
	Concurrency int
	// Card, when set, puts a capabilities card of the agent's tools in
	// its system prompt, sized by it. Nil means no card.
	Card *CardOptions
}

// inputSchema is the input of every agent call.
var inputSchema = json.RawMessage(`{"type":"object","properties":{` +
	`"task":{"type":"string","description":"What the agent should do, in full: it sees nothing of your conversation but this task and the context you give."},` +
	`"context":{"type":"string","description":"Background the agent needs: facts, constraints, what was tried."},` +
	`"files":{"type":"array","items":{"type":"string"},"description":"Paths, relative to the session's workspace, of files the agent should work on."}` +
	`},"required":["task"],"additionalProperties":false}`)

// outputSchema is the structured result of an agent call.
var outputSchema = json.RawMessage(`{"type":"object","properties":{` +
	`"agent":{"type":"string"},` +
	`"model":{"type":"string"},` +
	`"answer":{"type":"string"},` +
	`"steps":{"type":"integer","description":"model calls made"},` +
	`"calls":{"type":"array","items":{"type":"object","properties":{` +
	`"step":{"type":"integer"},"tool":{"type":"string"},"ok":{"type":"boolean"},"summary":{"type":"string"}},` +
	`"required":["step","tool","ok"]}},` +
	`"usage":{"type":"object","properties":{"prompt_tokens":{"type":"integer"},"completion_tokens":{"type":"integer"}}},` +
	`"stopped":{"type":"string","description":"why the agent stopped before answering, when it did"}` +
	`},"required":["agent","answer","steps","calls"]}`)

// ToolResult is the structured result of an agent call.
type ToolResult struct {
	Agent   string     `json:"agent"`
	Model   string     `json:"model,omitempty"`
	Answer  string     `json:"answer"`
	Steps   int        `json:"steps"`
	Calls   []ToolStep `json:"calls"`
	Usage   *ToolUsage `json:"usage,omitempty"`
	Stopped string     `json:"stopped,omitempty"`
}

// ToolStep is one tool call an agent made, in short.
type ToolStep struct {
	Step    int    `json:"step"`
	Tool    string `json:"tool"`
	OK      bool   `json:"ok"`
	Summary string `json:"summary,omitempty"`
}

// ToolUsage counts the tokens of every model step of an agent call.
type ToolUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// ErrInvalidTool is wrapped by NewCall's error for options it cannot use.
var ErrInvalidTool = errors.New("agent: invalid agent tool")

// NewCall returns the call that serves an agent as a tool (see
// ToolOptions). Register it in the group ToolGroup.
func NewCall(o ToolOptions) (calls.Call, error) {
	if o.Model == nil {
		return calls.Call{}, fmt.Errorf("%w %q: no model", ErrInvalidTool, o.Name)
	}
	name := ToolPrefix + o.Name
	if !calls.NamePattern.MatchString(name) {
		return calls.Call{}, fmt.Errorf("%w %q: the tool name %s must match %s", ErrInvalidTool, o.Name, name, calls.NamePattern)
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	desc := o.Description
	if desc == "" {
		desc = fmt.Sprintf("Hand a task to the agent %q", o.Name)
	}
	desc = strings.TrimRight(desc, ". ") + ". It works on its own with its tools, in this session's workspace, and returns its answer and a summary of its steps."
	t := &agentTool{o: o, name: name}
	return calls.Call{
		Name:         name,
		Description:  desc,
		InputSchema:  inputSchema,
		OutputSchema: outputSchema,
		Kind:         calls.KindTool,
		Group:        ToolGroup,
		Timeout:      o.Timeout,
		Concurrency:  o.Concurrency,
		Handler:      t,
	}, nil
}

type agentTool struct {
	o    ToolOptions
	name string
}

var _ calls.Handler = (*agentTool)(nil)

type toolInput struct {
	Task    string   `json:"task"`
	Context string   `json:"context,omitempty"`
	Files   []string `json:"files,omitempty"`
}

func (in *toolInput) check() error {
	switch {
	case strings.TrimSpace(in.Task) == "":
		return errors.New("task is empty; say what the agent should do")
	case len(in.Task)+len(in.Context) > MaxTaskBytes:
		return fmt.Errorf("task and context are %d bytes, more than the %d allowed; put long material in a workspace file and name it in files", len(in.Task)+len(in.Context), MaxTaskBytes)
	case len(in.Files) > MaxFiles:
		return fmt.Errorf("%d files named, more than the %d allowed", len(in.Files), MaxFiles)
	}
	for _, f := range in.Files {
		switch {
		case f == "" || len(f) > MaxFileBytes || !utf8.ValidString(f) || strings.ContainsAny(f, "\x00\n\r"):
			return fmt.Errorf("file %q is not a usable path", shortText(f, 80))
		case path.IsAbs(f) || f == ".." || strings.HasPrefix(path.Clean(f), "../"):
			return fmt.Errorf("file %q is outside the workspace; name it relative to the workspace", shortText(f, 80))
		}
	}
	return nil
}

func (in *toolInput) prompt() string {
	var b strings.Builder
	b.WriteString(in.Task)
	if c := strings.TrimSpace(in.Context); c != "" {
		b.WriteString("\n\nContext:\n")
		b.WriteString(c)
	}
	if len(in.Files) > 0 {
		b.WriteString("\n\nFiles in the workspace to work on:\n")
		for _, f := range in.Files {
			b.WriteString("- ")
			b.WriteString(f)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Handle runs one task through the agent's loop.
func (t *agentTool) Handle(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	var in toolInput
	if err := calls.DecodeArgs(req.Arguments, &in); err != nil {
		return calls.Errorf("%v. Call %s with {\"task\": \"...\"} and optionally context and files.", err, t.name), nil
	}
	if err := in.check(); err != nil {
		return calls.Errorf("invalid arguments: %v", err), nil
	}
	depth := Depth(ctx)
	if depth >= t.o.MaxDepth {
		res := calls.Errorf("refused: agent tools may nest only %d deep, and %s was called at depth %d; do this task with your other tools", t.o.MaxDepth, t.name, depth+1)
		res.Reason = ReasonRecursion
		return res, nil
	}
	inner := WithDepth(ctx, depth+1)
	tools := &scopedTools{t: t, nest: depth+1 < t.o.MaxDepth}
	if t.o.Allow != nil {
		tools.allow = t.o.Allow(ctx)
	}

	opts := t.o.Agent
	opts.Session = req.Session
	opts.Approve = nil
	rep := &stepReporter{p: req.Progress}
	opts.OnEvent = func(e Event) { rep.event(ctx, e) }
	opts.Capabilities = nil
	if t.o.Card != nil && t.o.Tools != nil {
		card := t.o.Card
		opts.Capabilities = func() string { return RenderCard(tools.List(), card) }
	}
	var ts Tools
	if t.o.Tools != nil {
		ts = tools
	}
	a := New(t.o.Model, ts, &opts)
	turn, err := a.Ask(inner, in.prompt())
	if err != nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, ctx.Err() // the caller went away: nobody reads a result
	}
	out := t.result(a, turn)
	switch {
	case err != nil && ctx.Err() != nil:
		out.Stopped = "its time budget ran out"
		if t.o.Timeout > 0 {
			out.Stopped += " (" + t.o.Timeout.String() + ")"
		}
	case errors.Is(err, ErrMaxSteps):
		out.Stopped = err.Error()
	case err != nil:
		out.Stopped = "the model failed: " + err.Error()
	}
	res := &calls.Result{Content: []calls.Content{{Type: calls.ContentText, Text: calls.ValidUTF8(out.text())}}, Structured: out}
	if out.Stopped != "" {
		res.IsError = true
	}
	return res, nil
}

func (t *agentTool) result(a *Agent, turn *Turn) *ToolResult {
	out := &ToolResult{Agent: t.o.Name, Model: a.Model(), Answer: strings.TrimSpace(turn.Answer), Steps: turn.Steps, Calls: []ToolStep{}}
	for _, c := range turn.Calls {
		out.Calls = append(out.Calls, ToolStep{Step: c.Step, Tool: c.Name, OK: !c.IsError, Summary: shortText(oneLine(c.Result), 120)})
	}
	if u := turn.Usage; u.PromptTokens != 0 || u.CompletionTokens != 0 {
		out.Usage = &ToolUsage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	}
	return out
}

// text is the result as a client that reads only text sees it: the answer,
// then one line per tool call.
func (r *ToolResult) text() string {
	var b strings.Builder
	switch {
	case r.Stopped != "" && r.Answer != "":
		fmt.Fprintf(&b, "The agent %s stopped before it finished: %s\nIts last words: %s", r.Agent, r.Stopped, r.Answer)
	case r.Stopped != "":
		fmt.Fprintf(&b, "The agent %s stopped before it finished: %s", r.Agent, r.Stopped)
	default:
		b.WriteString(r.Answer)
	}
	fmt.Fprintf(&b, "\n\n[%s: %s, %d tool call", r.Agent, steps(r.Steps), len(r.Calls))
	if len(r.Calls) != 1 {
		b.WriteByte('s')
	}
	b.WriteString("]")
	for _, c := range r.Calls {
		mark := "ok"
		if !c.OK {
			mark = "failed"
		}
		fmt.Fprintf(&b, "\n- step %d: %s %s", c.Step, c.Tool, mark)
		if c.Summary != "" {
			b.WriteString(": ")
			b.WriteString(c.Summary)
		}
	}
	return b.String()
}

// scopedTools is the set of tools one agent call may use: the agent's own
// call and, beyond the depth limit, other agent calls are left out; Allow
// filters the rest for the caller; a call that needs approval is refused.
type scopedTools struct {
	t     *agentTool
	allow func(calls.Call) bool // nil: all
	nest  bool
}

func (s *scopedTools) allows(c calls.Call) bool {
	if c.Name == s.t.name {
		return false
	}
	if c.Group == ToolGroup && !s.nest {
		return false
	}
	return s.allow == nil || s.allow(c)
}

func (s *scopedTools) List() []calls.Call {
	all := s.t.o.Tools.List()
	out := all[:0:0]
	for _, c := range all {
		if s.allows(c) {
			out = append(out, c)
		}
	}
	return out
}

func (s *scopedTools) Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error) {
	var (
		c     calls.Call
		found bool
	)
	for _, x := range s.t.o.Tools.List() {
		if x.Name == name {
			c, found = x, true
			break
		}
	}
	if !found || !s.allows(c) {
		return nil, fmt.Errorf("%w %q", calls.ErrUnknownCall, name)
	}
	if s.t.o.NeedsApproval != nil && s.t.o.NeedsApproval(name) {
		res := calls.Errorf("refused: %s needs a person's approval, and nobody can approve the calls an agent makes here. Do the task without it, or say in your answer that it needs %s.", name, name)
		res.Reason = ReasonApproval
		return res, nil
	}
	return s.t.o.Tools.Call(ctx, name, req)
}

// stepReporter turns the agent's events into progress reports of the
// outer call: one as each model step starts, one as each tool call starts
// and one as it ends.
type stepReporter struct {
	p calls.Progress

	mu sync.Mutex
	n  float64
}

func (r *stepReporter) event(ctx context.Context, e Event) {
	var msg string
	switch e.Kind {
	case EventModelStart:
		msg = fmt.Sprintf("step %d: thinking", e.Step)
	case EventToolStart:
		msg = fmt.Sprintf("step %d: %s %s", e.Step, e.Call.Name, shortText(oneLine(e.Call.Arguments), 100))
	case EventToolDone:
		state := "ok"
		if e.Record.IsError {
			state = "failed"
		}
		msg = fmt.Sprintf("step %d: %s %s", e.Step, e.Record.Name, state)
	default:
		return
	}
	r.mu.Lock()
	r.n++
	n := r.n
	r.mu.Unlock()
	r.p.Report(ctx, n, 0, msg)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// shortText cuts s to at most n bytes on a rune boundary, with "...".
func shortText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
