package agent_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls/agent"
)

func knownTools(n string) bool { return n == "sh" || n == "python_run" }

func TestExtractToolCalls(t *testing.T) {
	sh := `{"cmd":"echo hello"}`
	tests := []struct {
		name  string
		text  string
		calls []agent.ToolCall
		rest  string
	}{
		{"bare object", `{"name": "sh", "arguments": {"cmd": "echo hello"}}`,
			[]agent.ToolCall{{Name: "sh", Arguments: sh}}, ""},
		{"parameters key (llama 3)", `{"name": "sh", "parameters": {"cmd": "echo hello"}}`,
			[]agent.ToolCall{{Name: "sh", Arguments: sh}}, ""},
		{"prose around", "I will run it.\n{\"name\":\"sh\",\"arguments\":{\"cmd\":\"echo hello\"}}\nThen report.",
			[]agent.ToolCall{{Name: "sh", Arguments: sh}}, "I will run it.\n\nThen report."},
		{"json fence", "```json\n{\"name\": \"sh\", \"arguments\": {\"cmd\": \"echo hello\"}}\n```",
			[]agent.ToolCall{{Name: "sh", Arguments: sh}}, ""},
		{"plain fence with text", "Running:\n```\n{\"name\": \"sh\", \"arguments\": {\"cmd\": \"echo hello\"}}\n```\nok",
			[]agent.ToolCall{{Name: "sh", Arguments: sh}}, "Running:\n\nok"},
		{"tool_call tags (qwen, hermes)", "<tool_call>\n{\"name\": \"sh\", \"arguments\": {\"cmd\": \"echo hello\"}}\n</tool_call>",
			[]agent.ToolCall{{Name: "sh", Arguments: sh}}, ""},
		{"two tool_call tags", "<tool_call>{\"name\": \"sh\", \"arguments\": {\"cmd\": \"a\"}}</tool_call>\n<tool_call>{\"name\": \"python_run\", \"arguments\": {\"code\": \"print(1)\"}}</tool_call>",
			[]agent.ToolCall{{Name: "sh", Arguments: `{"cmd":"a"}`}, {Name: "python_run", Arguments: `{"code":"print(1)"}`}}, ""},
		{"unclosed tag", "<tool_call>{\"name\": \"sh\", \"arguments\": {\"cmd\": \"echo hello\"}}",
			[]agent.ToolCall{{Name: "sh", Arguments: sh}}, ""},
		{"list", `[{"name": "sh", "arguments": {"cmd": "a"}}, {"name": "sh", "arguments": {"cmd": "b"}}]`,
			[]agent.ToolCall{{Name: "sh", Arguments: `{"cmd":"a"}`}, {Name: "sh", Arguments: `{"cmd":"b"}`}}, ""},
		{"mistral prefix", `[TOOL_CALLS] [{"name": "sh", "arguments": {"cmd": "a"}}]`,
			[]agent.ToolCall{{Name: "sh", Arguments: `{"cmd":"a"}`}}, ""},
		{"openai shape", `{"type": "function", "function": {"name": "sh", "arguments": "{\"cmd\": \"a\"}"}}`,
			[]agent.ToolCall{{Name: "sh", Arguments: `{"cmd": "a"}`}}, ""},
		{"tool_calls wrapper", `{"tool_calls": [{"function": {"name": "sh", "arguments": {"cmd": "a"}}}]}`,
			[]agent.ToolCall{{Name: "sh", Arguments: `{"cmd":"a"}`}}, ""},
		{"function tag (llama 3.1)", `<function=sh>{"cmd": "a"}</function>`,
			[]agent.ToolCall{{Name: "sh", Arguments: `{"cmd":"a"}`}}, ""},
		{"numbers kept exact", `{"name": "sh", "arguments": {"cmd": "x", "timeout": 12345678901234567890}}`,
			[]agent.ToolCall{{Name: "sh", Arguments: `{"cmd":"x","timeout":12345678901234567890}`}}, ""},
		{"no arguments", `{"name": "sh"}`, []agent.ToolCall{{Name: "sh", Arguments: `{}`}}, ""},
		{"html kept", `{"name": "sh", "arguments": {"cmd": "echo '<b>' && true"}}`,
			[]agent.ToolCall{{Name: "sh", Arguments: `{"cmd":"echo '<b>' && true"}`}}, ""},

		{"unknown tool left alone", `{"name": "rm", "arguments": {}}`, nil, `{"name": "rm", "arguments": {}}`},
		{"json for the user", `Here: {"name": "Ada", "age": 36}`, nil, `Here: {"name": "Ada", "age": 36}`},
		{"list with a non-call", `[{"name": "sh", "arguments": {}}, 3]`, nil, `[{"name": "sh", "arguments": {}}, 3]`},
		{"fence with code", "```go\nfunc main() {}\n```", nil, "```go\nfunc main() {}\n```"},
		{"broken json", `<tool_call>{"name": "sh", "arguments": {"cmd": </tool_call>`, nil, `<tool_call>{"name": "sh", "arguments": {"cmd": </tool_call>`},
		{"arguments not an object", `{"name": "sh", "arguments": 3}`, nil, `{"name": "sh", "arguments": 3}`},
		{"plain prose", "The command printed hello.", nil, "The command printed hello."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest := agent.ExtractToolCalls(tt.text, knownTools)
			if fmt.Sprint(got) != fmt.Sprint(tt.calls) {
				t.Errorf("calls = %+v\nwant %+v", got, tt.calls)
			}
			if rest != tt.rest {
				t.Errorf("rest = %q, want %q", rest, tt.rest)
			}
		})
	}
}

func TestNormalizeArguments(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{``, `{}`, ""},
		{`null`, `{}`, ""},
		{` {"a":1} `, `{"a":1}`, ""},
		{`"{\"a\":1}"`, `{"a":1}`, ""},
		{`{"a":`, ``, "not valid JSON"},
		{`"hello"`, ``, "a JSON object is needed, not a string"},
		{`true`, ``, "not a boolean"},
		{`42`, ``, "not a number"},
	}
	for _, tt := range tests {
		got, err := agent.NormalizeArguments(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeArguments(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("NormalizeArguments(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// FuzzExtractToolCalls feeds model output (untrusted) to the parser: it must
// not panic, every call it returns must name a known tool, what
// NormalizeArguments accepts of its arguments is a JSON object, and the text
// left over is never longer than the input.
func FuzzExtractToolCalls(f *testing.F) {
	for _, s := range []string{
		`{"name": "sh", "arguments": {"cmd": "echo hello"}}`,
		"```json\n[{\"name\":\"sh\",\"arguments\":{}}]\n```",
		"<tool_call>{\"name\":\"python_run\",\"parameters\":{\"code\":\"1\"}}</tool_call>",
		`<function=sh>{"cmd":"ls"}</function>`,
		`[TOOL_CALLS] [{"name":"sh","arguments":"{\"cmd\":\"x\"}"}]`,
		`{"tool_calls":[{"function":{"name":"sh","arguments":{}}}]}`,
		"<tool_call><tool_call>```\n{[",
		"plain text with { braces } and [brackets]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got, rest := agent.ExtractToolCalls(text, knownTools)
		if len(rest) > len(text) {
			t.Fatalf("rest longer than input: %q from %q", rest, text)
		}
		if len(got) == 0 && rest != text {
			t.Fatalf("no calls but text changed: %q -> %q", text, rest)
		}
		for _, c := range got {
			if !knownTools(c.Name) {
				t.Fatalf("unknown tool %q extracted from %q", c.Name, text)
			}
			// Arguments are passed on as text; judging them must not panic,
			// and what it accepts is an object.
			if raw, err := agent.NormalizeArguments(c.Arguments); err == nil {
				var m map[string]any
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatalf("NormalizeArguments(%q) accepted a non-object: %s", c.Arguments, raw)
				}
			}
		}
	})
}
