package ollamatest

import (
	"slices"
	"strings"
	"testing"
)

func TestScriptValidate(t *testing.T) {
	tests := []struct {
		name   string
		script Script
		want   string // "" = valid
	}{
		{"zero is the default", Script{}, ""},
		{"answer only", Script{Answer: "hi"}, ""},
		{"empty args", Script{Calls: []ToolCall{{Name: "ping"}}}, ""},
		{"no name", Script{Calls: []ToolCall{{Args: `{}`}}}, "no tool name"},
		{"array args", Script{Calls: []ToolCall{{Name: "sh", Args: `[1]`}}}, "JSON object"},
		{"bad json", Script{Calls: []ToolCall{{Name: "sh", Args: `{cmd}`}}}, "JSON object"},
		{"null args", Script{Calls: []ToolCall{{Name: "sh", Args: `null`}}}, "JSON object"},
		{"loop without calls", Script{Loop: true}, "Loop needs"},
		{"reserved answer", Script{Calls: []ToolCall{{Name: "a"}}, Answer: "</s>"}, "reserved"},
		{"steps", Script{Calls: []ToolCall{{Name: "a"}}, Then: [][]ToolCall{{{Name: "a"}}, {{Name: "b"}, {Name: "a"}}}}, ""},
		{"then without calls", Script{Then: [][]ToolCall{{{Name: "a"}}}}, "Then needs Calls"},
		{"empty turn", Script{Calls: []ToolCall{{Name: "a"}}, Then: [][]ToolCall{{}}}, "turn 1 has no calls"},
		{"bad call in a later turn", Script{Calls: []ToolCall{{Name: "a"}}, Then: [][]ToolCall{{{Name: "b", Args: "1"}}}}, "turn 1 call 0 (b)"},
		{"loop with then", Script{Calls: []ToolCall{{Name: "a"}}, Then: [][]ToolCall{{{Name: "a"}}}, Loop: true}, "Loop cannot"},
		{"reasoning only", Script{Reasoning: "hmm"}, ""},
		{"reasoning with steps", Script{Calls: []ToolCall{{Name: "a"}}, Then: [][]ToolCall{{{Name: "b"}}}, Answer: "a a", Reasoning: "a a"}, ""},
		{"reasoning in a loop", Script{Calls: []ToolCall{{Name: "a"}}, Loop: true, Reasoning: "again"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.script.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				ScriptedModel(tt.script) // must not panic
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
			defer func() {
				if recover() == nil {
					t.Error("ScriptedModel did not panic on an invalid script")
				}
			}()
			ScriptedModel(tt.script)
		})
	}
}

func TestAnswerPieces(t *testing.T) {
	tests := []struct {
		answer string
		want   []string
	}{
		{" The command printed hello.", []string{" The", " command", " printed", " hello."}},
		{"one", []string{"one"}},
		{"", nil},
		{"a a a b", []string{"a", " a", " a b"}},
		{"x\ny  z", []string{"x", "\ny", "  z"}},
		{"é é", []string{"é", " é"}},
		{"go go", []string{"go", " go"}},
		{"a b a b", []string{"a", " b", " a b"}},
		{"<s>", []string{"<s>"}}, // merged into nothing: reported as reserved
	}
	for _, tt := range tests {
		used := map[string]bool{"<s>": true}
		got, err := answerPieces(tt.answer, used)
		if tt.answer == "<s>" {
			if err == nil {
				t.Errorf("answerPieces(%q) accepted a reserved token", tt.answer)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("answerPieces(%q) = %q, %v; want %q", tt.answer, got, err, tt.want)
		}
		if strings.Join(got, "") != tt.answer {
			t.Errorf("pieces of %q join to %q", tt.answer, strings.Join(got, ""))
		}
	}
}

// TestScriptedWeights checks the bigram construction on the file itself:
// from each marker, following the argmax of output·embedding reproduces the
// chain and ends at </s>.
func TestScriptedWeights(t *testing.T) {
	s := Script{Calls: []ToolCall{{Name: "sh", Args: `{"cmd":"ls"}`}, {Name: "sh", Args: `{"cmd":"ls"}`}}, Answer: "done done."}
	m := ScriptedModel(s)
	v, _ := m.File.Get("tokenizer.ggml.tokens")
	tokens := v.([]string)
	n := len(tokens)
	if n%8 != 0 {
		t.Errorf("vocabulary of %d tokens is not padded to a multiple of 8", n)
	}
	var out []float32
	for _, tn := range m.File.Tensors {
		if tn.Name == "output.weight" {
			out = tn.Data
		}
	}
	follow := func(from string) string {
		cur := slices.Index(tokens, from)
		var b strings.Builder
		for range n {
			best, bestV := -1, float32(0)
			for j := range n {
				if out[j*n+cur] > bestV {
					best, bestV = j, out[j*n+cur]
				}
			}
			if best < 0 {
				t.Fatalf("no next token after %q", tokens[cur])
			}
			if best == tokEOS {
				return b.String()
			}
			b.WriteString(tokens[best])
			cur = best
		}
		t.Fatalf("no </s> after %q", from)
		return ""
	}
	if got, want := follow(markCall), `<tool_call>{"name": "sh", "arguments": {"cmd":"ls"}} {"name": "sh", "arguments": {"cmd":"ls"}}</tool_call>`; got != want {
		t.Errorf("call chain = %q, want %q", got, want)
	}
	if got := follow(markAnswer); got != "done done." {
		t.Errorf("answer chain = %q", got)
	}
}

// TestThinkingPlan: each reply of a script with Reasoning has a thinking
// twin that is the reasoning in <think> tags followed by the reply, and
// every token of every chain is distinct.
func TestThinkingPlan(t *testing.T) {
	s := Script{Calls: []ToolCall{{Name: "sh", Args: `{"cmd":"ls"}`}}, Then: [][]ToolCall{{{Name: "sh", Args: `{"cmd":"ls"}`}}}, Answer: " Done done.", Reasoning: "Think think."}
	p, err := s.plan()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.thinkTurns) != len(p.turns) || p.thinkAnswer == nil {
		t.Fatalf("plan %+v", p)
	}
	seen := map[string]bool{}
	all := append(append(append([][]string{}, p.turns...), p.thinkTurns...), p.answer, p.thinkAnswer)
	for _, chain := range all {
		for _, tok := range chain {
			if seen[tok] {
				t.Errorf("token %q repeats", tok)
			}
			seen[tok] = true
		}
	}
	for i, tt := range p.thinkTurns {
		if want := "<think>Think think.</think>" + strings.Join(p.turns[i], ""); strings.Join(tt, "") != want {
			t.Errorf("thinking turn %d = %q, want %q", i, strings.Join(tt, ""), want)
		}
	}
	if want := "<think>Think think.</think> Done done."; strings.Join(p.thinkAnswer, "") != want {
		t.Errorf("thinking answer %q, want %q", strings.Join(p.thinkAnswer, ""), want)
	}
	if tmpl := ScriptedModel(s).Template; !strings.Contains(tmpl, "{{ .Thinking }}") || !strings.Contains(tmpl, "$.Think") {
		t.Errorf("the template does not use .Thinking and .Think:\n%s", tmpl)
	}
}
