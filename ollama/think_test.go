package ollama

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"
)

// TestThinkLevelsFromShow pins the rule Ollama v0.17.4 applies (a level
// only for the harmony parser), as /api/show lets membrane see it.
func TestThinkLevelsFromShow(t *testing.T) {
	harmonyTmpl := "<|start|>system<|message|>Reasoning: {{ .ThinkLevel }}<|end|>"
	for _, tc := range []struct {
		name string
		resp api.ShowResponse
		want bool
	}{
		{"a PARSER line (v0.17.4)", api.ShowResponse{Modelfile: "FROM x\nTEMPLATE \"\"\"…\"\"\"\nPARSER harmony\n"}, true},
		{"the parser field", api.ShowResponse{Parser: "harmony"}, true},
		{"gpt-oss with harmony tags", api.ShowResponse{Details: api.ModelDetails{Family: "gptoss"}, Template: harmonyTmpl}, true},
		{"gpt-oss spelled with a dash", api.ShowResponse{Details: api.ModelDetails{Family: "gpt-oss"}, Template: harmonyTmpl}, true},
		{"gpt-oss without the tags", api.ShowResponse{Details: api.ModelDetails{Family: "gptoss"}, Template: "{{ .Prompt }}"}, false},
		{"another parser", api.ShowResponse{Modelfile: "PARSER qwen3-thinking\n"}, false},
		{"a harmony template of another family", api.ShowResponse{Details: api.ModelDetails{Family: "llama"}, Template: harmonyTmpl}, false},
		{"a PARSER word in the template", api.ShowResponse{Modelfile: "TEMPLATE \"PARSER harmony is great\"\n"}, false},
		{"nothing", api.ShowResponse{}, false},
	} {
		if got := thinkLevelsFromShow(&tc.resp); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckThink(t *testing.T) {
	plain := &model{Name: "plain", Capabilities: []string{capCompletion}}
	thinker := &model{Name: "thinker", Capabilities: []string{capCompletion, capThinking}}
	levels := &model{Name: "oss", Capabilities: []string{capCompletion, capThinking}, ThinkLevels: true}
	for _, tc := range []struct {
		raw     string
		mod     *model
		want    any // the value sent; nil none
		wantErr string
	}{
		{"", thinker, nil, ""},
		{"null", thinker, nil, ""},
		{"true", thinker, true, ""},
		{"false", thinker, false, ""},
		{`"low"`, thinker, nil, "takes no effort levels"},
		{`"high"`, levels, "high", ""},
		{"true", levels, true, ""},
		{"true", plain, nil, "not a thinking model"},
		{`"medium"`, plain, nil, "not a thinking model"},
		{"false", plain, nil, ""}, // nothing to turn off: not sent
		{`"max"`, levels, nil, "think must be"},
		{"1", levels, nil, "think must be"},
	} {
		tv, err := checkThink(json.RawMessage(tc.raw), tc.mod)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s on %s: %v, want an error with %q", tc.raw, tc.mod.Name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s on %s: %v", tc.raw, tc.mod.Name, err)
			continue
		}
		var got any
		if tv != nil {
			got = tv.Value
		}
		if got != tc.want {
			t.Errorf("%s on %s: sends %v, want %v", tc.raw, tc.mod.Name, got, tc.want)
		}
	}
}

// TestThinkSchemaByModel: a model without levels is offered a boolean, one
// with levels the levels too, and a model without thinking nothing.
func TestThinkSchemaByModel(t *testing.T) {
	props := func(f schemaFlags) map[string]any {
		var s struct{ Properties map[string]any }
		if err := json.Unmarshal(chatSchema(f), &s); err != nil {
			t.Fatal(err)
		}
		return s.Properties
	}
	if p := props(schemaFlags{}); p["think"] != nil {
		t.Errorf("no thinking, yet think: %v", p["think"])
	}
	if p, _ := props(schemaFlags{think: true})["think"].(map[string]any); p["type"] != "boolean" || p["anyOf"] != nil {
		t.Errorf("thinking without levels: %v", p)
	}
	b, _ := json.Marshal(props(schemaFlags{think: true, levels: true})["think"])
	if !strings.Contains(string(b), `"enum":["low","medium","high"]`) || !strings.Contains(string(b), `"boolean"`) {
		t.Errorf("thinking with levels: %s", b)
	}
}
