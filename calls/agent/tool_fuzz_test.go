package agent_test

import (
	"context"
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
)

// FuzzAgentToolInput checks the decoder of an agent call's input: what it
// refuses never reaches the model, and what it takes reaches it with the
// task first and every file inside the workspace.
func FuzzAgentToolInput(f *testing.F) {
	for _, s := range []string{
		`{"task":"x"}`, `{"task":"x","context":"y","files":["a","b/c"]}`, `{}`, `null`, `[]`,
		`{"task":"x","files":["../a"]}`, `{"task":"x","files":["/a"]}`, `{"task":"x","task":"y"}`,
		`{"task":"x","files":["a/./../../b"]}`, `{"task":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var prompt *string
		m := agent.ModelFunc(func(_ context.Context, req *agent.Request, _ func(agent.Delta)) (*agent.Reply, error) {
			for _, msg := range req.Messages {
				if msg.Role == agent.RoleUser {
					p := msg.Content
					prompt = &p
				}
			}
			return &agent.Reply{Message: agent.Message{Content: "done"}}, nil
		})
		c, err := agent.NewCall(agent.ToolOptions{Name: "f", Model: m})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Handler.Handle(t.Context(), &calls.Request{Call: &c, Arguments: raw, Progress: calls.NoProgress})
		if err != nil {
			t.Fatalf("a Go error for input %q: %v", raw, err)
		}
		if prompt == nil {
			if !res.IsError || !strings.Contains(res.TextOf(), "invalid arguments") {
				t.Fatalf("input %q neither ran nor was refused: %q", raw, res.TextOf())
			}
			return
		}
		var in struct {
			Task  string   `json:"task"`
			Files []string `json:"files"`
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatalf("input %q ran but is not JSON: %v", raw, err)
		}
		if strings.TrimSpace(in.Task) == "" || !strings.HasPrefix(*prompt, in.Task) {
			t.Fatalf("input %q ran with prompt %q", raw, *prompt)
		}
		for _, f := range in.Files {
			if p := path.Clean(f); path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
				t.Fatalf("input %q ran with file %q outside the workspace", raw, f)
			}
		}
		if res.IsError || structuredAnswer(res) != "done" {
			t.Fatalf("input %q: result %q", raw, res.TextOf())
		}
	})
}

func structuredAnswer(res *calls.Result) string {
	if out, ok := res.Structured.(*agent.ToolResult); ok {
		return out.Answer
	}
	return ""
}
