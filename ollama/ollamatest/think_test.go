package ollamatest_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// thinkScript thinks before it calls sh, and before it answers.
var thinkScript = ollamatest.Script{
	Calls:     []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo hello"}`}},
	Answer:    " The command printed hello.",
	Reasoning: "I should run it.",
}

func chatThink(t *testing.T, srv *ollamatest.Server, model string, think *api.ThinkValue, msgs []api.Message, tools ...api.Tool) (api.Message, error) {
	t.Helper()
	var got api.Message
	err := srv.Client().Chat(t.Context(), &api.ChatRequest{
		Model: model, Messages: msgs, Tools: tools, Think: think,
	}, func(r api.ChatResponse) error {
		got.Content += r.Message.Content
		got.Thinking += r.Message.Thinking
		got.ToolCalls = append(got.ToolCalls, r.Message.ToolCalls...)
		return nil
	})
	return got, err
}

// TestScriptedThinking pins what each Ollama version does with a script
// that has Reasoning: v0.17.4 reports the thinking capability, thinks by
// default and on think true (reasoning in message.thinking, apart from the
// content and the tool call), answers plainly on think false, and refuses
// a level ("low") for a model without the harmony parser; v0.6.5 has no
// thinking and answers as without Reasoning.
func TestScriptedThinking(t *testing.T) {
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			srv := v.Start(t)
			srv.Create(t, "thinker", ollamatest.ScriptedModel(thinkScript))
			show, err := srv.Client().Show(t.Context(), &api.ShowRequest{Model: "thinker"})
			if err != nil {
				t.Fatal(err)
			}
			var caps []string
			for _, c := range show.Capabilities {
				caps = append(caps, string(c))
			}
			user := api.Message{Role: "user", Content: "run echo hello"}
			newer := v.Version != ollamatest.Version
			if got := slices.Contains(caps, "thinking"); got != newer {
				t.Fatalf("capabilities %v: thinking %v, want %v on %s", caps, got, newer, v.Version)
			}
			if !newer {
				msg, err := chatThink(t, srv, "thinker", nil, []api.Message{user}, shTool)
				if err != nil || msg.Thinking != "" || len(msg.ToolCalls) != 1 {
					t.Fatalf("v0.6.5 reply %+v, %v; want one call and no thinking", msg, err)
				}
				return
			}
			for _, think := range []*api.ThinkValue{nil, {Value: true}} {
				msg, err := chatThink(t, srv, "thinker", think, []api.Message{user}, shTool)
				if err != nil {
					t.Fatal(err)
				}
				if msg.Thinking != "I should run it." || strings.TrimSpace(msg.Content) != "" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "sh" {
					t.Fatalf("think %v: reply %+v; want the reasoning apart and one sh call", think, msg)
				}
				msg.Content = ""
				final, err := chatThink(t, srv, "thinker", think, []api.Message{user, msg, {Role: "tool", Content: "hello\n"}}, shTool)
				if err != nil || final.Thinking != "I should run it." || final.Content != "The command printed hello." {
					t.Fatalf("think %v: final %+v, %v", think, final, err)
				}
			}
			off, err := chatThink(t, srv, "thinker", &api.ThinkValue{Value: false}, []api.Message{user}, shTool)
			if err != nil || off.Thinking != "" || len(off.ToolCalls) != 1 {
				t.Fatalf("think false: %+v, %v; want a call without reasoning", off, err)
			}
			_, err = chatThink(t, srv, "thinker", &api.ThinkValue{Value: "low"}, []api.Message{user})
			var se api.StatusError
			if !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(se.ErrorMessage, `think value "low" is not supported for this model`) {
				t.Errorf("think low: %v; want 400 think value not supported", err)
			}

			// /v1: the reasoning in delta.reasoning, the call whole.
			body := `{"model":"thinker","stream":true,"messages":[{"role":"user","content":"hi"}],
				"tools":[{"type":"function","function":{"name":"sh","parameters":{"type":"object"}}}]}`
			b, events := sseEvents(t, srv, body)
			var reasoning, content strings.Builder
			calls := 0
			for _, data := range events {
				var chunk struct {
					Choices []struct {
						Delta struct {
							Content, Reasoning string
							ToolCalls          []json.RawMessage `json:"tool_calls"`
						}
					}
				}
				if err := json.Unmarshal([]byte(data), &chunk); err != nil {
					t.Fatalf("chunk %q: %v", data, err)
				}
				for _, c := range chunk.Choices {
					reasoning.WriteString(c.Delta.Reasoning)
					content.WriteString(c.Delta.Content)
					calls += len(c.Delta.ToolCalls)
				}
			}
			if reasoning.String() != "I should run it." || strings.TrimSpace(content.String()) != "" || calls != 1 {
				t.Errorf("/v1 stream: reasoning %q content %q calls %d\n%s", reasoning.String(), content.String(), calls, b)
			}
		})
	}
}

// TestLevelsModel pins think levels on each version: v0.17.4 reports the
// thinking capability for a model with the harmony parser, takes "low",
// "medium" and "high", reasons by level apart from the answer, and answers
// without reasoning on think false; v0.6.5 has no thinking.
func TestLevelsModel(t *testing.T) {
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			srv := v.Start(t)
			srv.Create(t, "levels", ollamatest.LevelsModel())
			show, err := srv.Client().Show(t.Context(), &api.ShowRequest{Model: "levels"})
			if err != nil {
				t.Fatal(err)
			}
			newer := v.Version != ollamatest.Version
			if got := slices.Contains(show.Capabilities, "thinking"); got != newer {
				t.Fatalf("capabilities %v: thinking %v, want %v on %s", show.Capabilities, got, newer, v.Version)
			}
			if !newer {
				return
			}
			if !strings.Contains(show.Modelfile, "PARSER harmony") {
				t.Errorf("the Modelfile does not name the parser:\n%s", show.Modelfile)
			}
			user := []api.Message{{Role: "user", Content: "the answer?"}}
			for _, tc := range []struct {
				think *api.ThinkValue
				want  string
			}{
				{&api.ThinkValue{Value: "low"}, ollamatest.LevelsReasoning("low")},
				{&api.ThinkValue{Value: "medium"}, ollamatest.LevelsReasoning("medium")},
				{&api.ThinkValue{Value: "high"}, ollamatest.LevelsReasoning("high")},
				{&api.ThinkValue{Value: true}, ollamatest.LevelsReasoning("medium")},
				{nil, ollamatest.LevelsReasoning("medium")},
				{&api.ThinkValue{Value: false}, ""},
			} {
				msg, err := chatThink(t, srv, "levels", tc.think, user)
				if err != nil {
					t.Fatalf("think %v: %v", tc.think, err)
				}
				if msg.Thinking != tc.want || msg.Content != ollamatest.LevelsAnswer {
					t.Errorf("think %v: thinking %q content %q; want %q and %q", tc.think, msg.Thinking, msg.Content, tc.want, ollamatest.LevelsAnswer)
				}
			}
		})
	}
}
