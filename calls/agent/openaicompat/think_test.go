package openaicompat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestToolCallFragments covers splits the real Ollama never makes (it
// sends each call whole): arguments cut inside a string and inside an
// escape, two calls whose pieces interleave by index with content between
// them, the ID and name only in a call's first delta, and whole calls
// without IDs that all reuse index 0.
func TestToolCallFragments(t *testing.T) {
	tc := func(index int, id, name, args string) string {
		idPart := ""
		if id != "" {
			idPart = fmt.Sprintf(`"id":%q,"type":"function",`, id)
		}
		namePart := ""
		if name != "" {
			namePart = fmt.Sprintf(`"name":%q,`, name)
		}
		return fmt.Sprintf(`{"tool_calls":[{"index":%d,%s"function":{%s"arguments":%s}}]}`, index, idPart, namePart, mustQuote(args))
	}
	tests := []struct {
		name    string
		chunks  []string
		want    []agent.ToolCall
		content string
	}{
		{
			name: "arguments split mid-string and mid-escape",
			chunks: []string{
				tc(0, "call_1", "sh", ""),
				tc(0, "", "", `{"cmd":"echo \"hel`),
				tc(0, "", "", `lo\`),
				tc(0, "", "", `" wor`),
				tc(0, "", "", `ld"}`),
			},
			want: []agent.ToolCall{{ID: "call_1", Name: "sh", Arguments: `{"cmd":"echo \"hello\" world"}`}},
		},
		{
			name: "two calls interleaved with content",
			chunks: []string{
				chunk(`{"role":"assistant","content":"Running "}`, ""),
				tc(0, "call_a", "sh", `{"cmd":`),
				tc(1, "call_b", "python_run", `{"co`),
				chunk(`{"content":"both."}`, ""),
				tc(0, "", "", `"ls -l"}`),
				tc(1, "", "", `de":"print(1)"}`),
			},
			want:    []agent.ToolCall{{ID: "call_a", Name: "sh", Arguments: `{"cmd":"ls -l"}`}, {ID: "call_b", Name: "python_run", Arguments: `{"code":"print(1)"}`}},
			content: "Running both.",
		},
		{
			name: "whole calls without IDs at index 0",
			chunks: []string{
				tc(0, "", "sh", `{"cmd":"ls"}`),
				tc(0, "", "sh", `{"cmd":"pwd"}`),
			},
			want: []agent.ToolCall{{Name: "sh", Arguments: `{"cmd":"ls"}`}, {Name: "sh", Arguments: `{"cmd":"pwd"}`}},
		},
		{
			name: "the name repeated in every piece",
			chunks: []string{
				tc(0, "call_1", "sh", `{"cmd":`),
				tc(0, "", "sh", `"ls"}`),
			},
			want: []agent.ToolCall{{ID: "call_1", Name: "sh", Arguments: `{"cmd":"ls"}`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := make([]string, 0, len(tt.chunks)+1)
			for _, c := range tt.chunks {
				if strings.HasPrefix(c, `{"tool_calls"`) {
					c = chunk(c, "")
				}
				chunks = append(chunks, c)
			}
			chunks = append(chunks, chunk(`{}`, "tool_calls"))
			srv, _ := sse(t, chunks...)
			c := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "m"})
			onDelta, content, _ := collect()
			reply, err := c.Complete(t.Context(), &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: "q"}}}, onDelta)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(reply.Message.ToolCalls) != fmt.Sprint(tt.want) || reply.FinishReason != "tool_calls" {
				t.Errorf("calls = %+v, want %+v", reply.Message.ToolCalls, tt.want)
			}
			for _, call := range reply.Message.ToolCalls {
				if !json.Valid([]byte(call.Arguments)) {
					t.Errorf("arguments %q are not JSON", call.Arguments)
				}
			}
			if reply.Message.Content != tt.content || content.String() != tt.content {
				t.Errorf("content %q, streamed %q; want %q", reply.Message.Content, content, tt.content)
			}
		})
	}
}

func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestTooManyToolCalls: an endpoint that streams calls without end is
// stopped at the bound, with an error that says so; the control at the
// bound goes through.
func TestTooManyToolCalls(t *testing.T) {
	for _, n := range []int{openaicompat.MaxToolCalls, openaicompat.MaxToolCalls + 2} {
		var chunks []string
		for i := range n {
			chunks = append(chunks, chunk(fmt.Sprintf(`{"tool_calls":[{"index":%d,"id":"c%d","type":"function","function":{"name":"sh","arguments":"{}"}}]}`, i, i), ""))
		}
		srv, _ := sse(t, append(chunks, chunk(`{}`, "tool_calls"))...)
		c := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "m"})
		reply, err := c.Complete(t.Context(), &agent.Request{Messages: []agent.Message{{Role: agent.RoleUser, Content: "q"}}}, func(agent.Delta) {})
		if n <= openaicompat.MaxToolCalls {
			if err != nil || len(reply.Message.ToolCalls) != n {
				t.Errorf("%d calls: %v", n, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("%d calls: %v, want the bound's error", n, err)
		}
	}
}

// TestRealOllamaThinking runs the client against each real Ollama's /v1
// with the scripted thinking model (and, where levels exist, the levels
// model).
//
// Expected on v0.17.4: the reasoning streams as Reasoning deltas (from
// delta.reasoning) and never reaches the content; the tool call comes
// whole; after the result, the answer has its own reasoning; reasoning
// effort none answers without reasoning, a level is refused for the
// thinker with CodeThinkLevelUnsupported and, for a plain model, with
// CodeNoThinking, and the levels model reasons at the level sent. On
// v0.6.5 (no thinking) there is no reasoning and reasoning_effort is
// ignored.
func TestRealOllamaThinking(t *testing.T) {
	tools := []agent.Tool{{Name: "sh", Parameters: json.RawMessage(`{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]}`)}}
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			newer := v.Version != ollamatest.Version
			srv := v.Start(t)
			srv.Create(t, "thinker", ollamatest.ScriptedModel(ollamatest.Script{
				Calls:     []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo hello"}`}},
				Answer:    " It printed hello.",
				Reasoning: "Run it first.",
			}))
			srv.Create(t, "plain", ollamatest.ScriptedModel(ollamatest.Script{Answer: " Plain."}))
			// ThinkTags as the orchestrator sets it: <think> in the content
			// would move too, so a pass shows Ollama split it.
			client := func(effort string) *openaicompat.Client {
				return openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "thinker", ReasoningEffort: effort, ThinkTags: true})
			}
			msgs := []agent.Message{{Role: agent.RoleUser, Content: "run echo hello"}}
			onDelta, content, reasoning := collect()
			reply, err := client("").Complete(t.Context(), &agent.Request{Messages: msgs, Tools: tools}, onDelta)
			if err != nil {
				t.Fatal(err)
			}
			wantReasoning := ""
			if newer {
				wantReasoning = "Run it first."
			}
			tcs := reply.Message.ToolCalls
			if len(tcs) != 1 || tcs[0].Name != "sh" || tcs[0].Arguments != `{"cmd":"echo hello"}` || tcs[0].ID == "" || reply.FinishReason != "tool_calls" {
				t.Fatalf("tool calls = %+v (finish %q)", tcs, reply.FinishReason)
			}
			if reply.Message.Reasoning != wantReasoning || reasoning.String() != wantReasoning || reply.Message.Content != "" || content.Len() != 0 {
				t.Errorf("reasoning %q (streamed %q), content %q (streamed %q); want reasoning %q and no content",
					reply.Message.Reasoning, reasoning, reply.Message.Content, content, wantReasoning)
			}
			msgs = append(msgs, reply.Message, agent.Message{Role: agent.RoleTool, ToolCallID: tcs[0].ID, ToolName: "sh", Content: "hello"})
			onDelta, content, reasoning = collect()
			reply, err = client("").Complete(t.Context(), &agent.Request{Messages: msgs, Tools: tools}, onDelta)
			if err != nil || reply.Message.Content != "It printed hello." || reply.Message.Reasoning != wantReasoning || reasoning.String() != wantReasoning || content.String() != "It printed hello." {
				t.Errorf("answer %+v, %v; streamed %q / %q", reply, err, content, reasoning)
			}

			// none turns the reasoning off; a level the model does not take.
			reply, err = client("none").Complete(t.Context(), &agent.Request{Messages: msgs[:1], Tools: tools}, func(agent.Delta) {})
			if err != nil || reply.Message.Reasoning != "" || len(reply.Message.ToolCalls) != 1 {
				t.Errorf("effort none: %+v, %v; want the call without reasoning", reply, err)
			}
			_, err = client("low").Complete(t.Context(), &agent.Request{Messages: msgs[:1], Tools: tools}, func(agent.Delta) {})
			var e *openaicompat.Error
			if !newer {
				if err != nil {
					t.Errorf("effort low on %s: %v; want it ignored", v.Version, err)
				}
				return
			}
			if !errors.As(err, &e) || e.Code != openaicompat.CodeThinkLevelUnsupported || !strings.Contains(err.Error(), "gpt-oss") || strings.Contains(err.Error(), "--") {
				t.Errorf("effort low on the thinker: %v; want CodeThinkLevelUnsupported", err)
			}
			plain := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "plain", ReasoningEffort: "high"})
			_, err = plain.Complete(t.Context(), &agent.Request{Messages: msgs[:1]}, func(agent.Delta) {})
			if !errors.As(err, &e) || e.Code != openaicompat.CodeNoThinking {
				t.Errorf("effort high on a plain model: %v; want CodeNoThinking", err)
			}

			srv.Create(t, "levels", ollamatest.LevelsModel())
			for _, level := range []string{"low", "high"} {
				c := openaicompat.New(&openaicompat.Options{BaseURL: srv.URL + "/v1", Model: "levels", ReasoningEffort: level, ThinkTags: true})
				reply, err := c.Complete(t.Context(), &agent.Request{Messages: msgs[:1]}, func(agent.Delta) {})
				if err != nil || reply.Message.Reasoning != ollamatest.LevelsReasoning(level) || reply.Message.Content != strings.TrimSpace(ollamatest.LevelsAnswer) {
					t.Errorf("levels at %s: %+v, %v", level, reply, err)
				}
			}
		})
	}
}
