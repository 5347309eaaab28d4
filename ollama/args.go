package ollama

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/calls"
)

// optionKind is the JSON type an Ollama option takes.
type optionKind int

const (
	optNumber optionKind = iota
	optInteger
	optStrings
)

// chatOptions are the Ollama options a chat tool accepts, with their types
// and what they do. Anything else is refused by name, so that a typo does
// not silently do nothing.
var chatOptions = map[string]struct {
	kind     optionKind
	min, max float64
}{
	"temperature":       {optNumber, 0, 100},
	"top_p":             {optNumber, 0, 1},
	"top_k":             {optInteger, 0, 1e6},
	"min_p":             {optNumber, 0, 1},
	"typical_p":         {optNumber, 0, 1},
	"seed":              {optInteger, math.MinInt32, math.MaxInt32},
	"num_predict":       {optInteger, -2, 1 << 30},
	"num_ctx":           {optInteger, 1, 1 << 30},
	"stop":              {optStrings, 0, 0},
	"repeat_penalty":    {optNumber, 0, 100},
	"repeat_last_n":     {optInteger, -1, 1 << 30},
	"presence_penalty":  {optNumber, -100, 100},
	"frequency_penalty": {optNumber, -100, 100},
}

// checkOptions validates caller or configured options. mod, when known,
// bounds num_ctx by the model's context length. It returns the options
// with integers as integers.
func checkOptions(opts map[string]any, mod *model) (map[string]any, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(opts))
	for k, v := range opts {
		spec, ok := chatOptions[k]
		if !ok {
			return nil, fmt.Errorf("unknown option %q; known options: %s", k, strings.Join(optionNames(), ", "))
		}
		switch spec.kind {
		case optStrings:
			list, ok := v.([]any)
			if !ok {
				if ss, ok2 := v.([]string); ok2 {
					out[k] = ss
					continue
				}
				return nil, fmt.Errorf("option %s must be an array of strings", k)
			}
			ss := make([]string, 0, len(list))
			for _, e := range list {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("option %s must be an array of strings", k)
				}
				ss = append(ss, s)
			}
			out[k] = ss
		default:
			f, ok := number(v)
			if !ok {
				return nil, fmt.Errorf("option %s must be a number", k)
			}
			if spec.kind == optInteger && f != math.Trunc(f) {
				return nil, fmt.Errorf("option %s must be a whole number, not %v", k, f)
			}
			if f < spec.min || f > spec.max {
				return nil, fmt.Errorf("option %s must be between %v and %v, not %v", k, spec.min, spec.max, f)
			}
			if k == "num_ctx" && mod != nil && mod.ContextLength > 0 && int(f) > mod.ContextLength {
				return nil, fmt.Errorf("option num_ctx %v is more than %s's context length of %d tokens", f, mod.Name, mod.ContextLength)
			}
			if spec.kind == optInteger {
				out[k] = int64(f)
			} else {
				out[k] = f
			}
		}
	}
	return out, nil
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0)
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func optionNames() []string {
	out := make([]string, 0, len(chatOptions))
	for k := range chatOptions {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// chatArgs are the arguments of every chat tool; each tool's schema shows
// only the fields its model takes, and checkChat refuses the others.
type chatArgs struct {
	Model    string          `json:"model,omitempty"`
	Prompt   string          `json:"prompt,omitempty"`
	Messages []chatMessage   `json:"messages,omitempty"`
	System   string          `json:"system,omitempty"`
	Images   []string        `json:"images,omitempty"`
	Format   json.RawMessage `json:"format,omitempty"`
	Think    json.RawMessage `json:"think,omitempty"`
	Options  map[string]any  `json:"options,omitempty"`
	Truncate *bool           `json:"truncate,omitempty"`
	// Workspace is a workspace handle whose files image paths name (see
	// calls.ResolveWorkspace); empty means the session's workspace.
	Workspace string `json:"workspace,omitempty"`
}

type chatMessage struct {
	Role    string   `json:"role"`
	Content string   `json:"content"`
	Images  []string `json:"images,omitempty"`
}

var roles = []string{"system", "user", "assistant", "tool"}

// decodeChat decodes and checks chat arguments against what mod accepts.
// generic says whether the tool is ollama_chat (which takes a model);
// fixedSystem whether a logical tool fixes the system prompt. The returned
// error is worded for the model that sent the arguments.
func decodeChat(raw json.RawMessage, generic, fixedSystem bool) (*chatArgs, error) {
	var a chatArgs
	if err := calls.DecodeArgs(raw, &a); err != nil {
		return nil, err
	}
	if !generic && a.Model != "" {
		return nil, errors.New("invalid arguments: this tool always runs the same model; drop \"model\", or use ollama_chat to choose one")
	}
	if generic && strings.TrimSpace(a.Model) == "" {
		return nil, errors.New("invalid arguments: \"model\" is required; call ollama_models for the names")
	}
	if fixedSystem && a.System != "" {
		return nil, errors.New("invalid arguments: this tool has a fixed system prompt; drop \"system\"")
	}
	if a.Prompt == "" && len(a.Messages) == 0 {
		return nil, errors.New("invalid arguments: give a \"prompt\", or \"messages\" for a conversation")
	}
	for i, msg := range a.Messages {
		if !slices.Contains(roles, msg.Role) {
			return nil, fmt.Errorf("invalid arguments: messages[%d].role is %q; use one of %s", i, msg.Role, strings.Join(roles, ", "))
		}
		if len(msg.Images) > 0 && msg.Role != "user" {
			return nil, fmt.Errorf("invalid arguments: messages[%d] has images, but only user messages may", i)
		}
	}
	if len(a.Format) > 0 {
		f := bytes.TrimSpace(a.Format)
		switch {
		case string(f) == `"json"`:
		case len(f) > 0 && f[0] == '{':
			var schema map[string]any
			if err := json.Unmarshal(f, &schema); err != nil {
				return nil, fmt.Errorf("invalid arguments: format is not a JSON schema object: %v", err)
			}
		case string(f) == `""` || string(f) == "null":
			a.Format = nil
		default:
			return nil, errors.New("invalid arguments: format must be \"json\" or a JSON schema object")
		}
	}
	if len(a.Think) > 0 {
		if _, err := parseThink(a.Think); err != nil {
			return nil, err
		}
	}
	return &a, nil
}

// parseThink decodes think: true, false, "low", "medium" or "high".
func parseThink(raw json.RawMessage) (*api.ThinkValue, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return &api.ThinkValue{Value: b}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && (s == "low" || s == "medium" || s == "high") {
		return &api.ThinkValue{Value: s}, nil
	}
	return nil, errors.New("invalid arguments: think must be true, false, \"low\", \"medium\" or \"high\"")
}

// checkThink checks a decoded think argument against what mod takes and
// returns the value to send (nil: send none). A model without the thinking
// capability takes no reasoning (think false is accepted and not sent:
// there is nothing to turn off); a level needs a model that takes levels,
// since Ollama refuses one for any other model.
func checkThink(raw json.RawMessage, mod *model) (*api.ThinkValue, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	tv, err := parseThink(raw)
	if err != nil || tv == nil {
		return nil, err
	}
	if !mod.has(capThinking) {
		if b, ok := tv.Value.(bool); ok && !b {
			return nil, nil
		}
		return nil, fmt.Errorf("%s is not a thinking model (capabilities: %s), so it cannot reason first; drop \"think\", or choose a model with the thinking capability (ollama_models lists them)",
			mod.Name, strings.Join(mod.Capabilities, ", "))
	}
	if level, ok := tv.Value.(string); ok && !mod.ThinkLevels {
		return nil, fmt.Errorf("%s reasons, but takes no effort levels: think %q is refused; pass think true or false", mod.Name, level)
	}
	return tv, nil
}

// embedArgs are the arguments of every embed tool.
type embedArgs struct {
	Model    string          `json:"model,omitempty"`
	Input    json.RawMessage `json:"input"`
	Summary  bool            `json:"summary,omitempty"`
	Truncate *bool           `json:"truncate,omitempty"`
}

// maxEmbedInputs caps how many texts one embed call takes.
const maxEmbedInputs = 1024

// decodeEmbed decodes embed arguments; it returns the inputs as a list.
func decodeEmbed(raw json.RawMessage, generic bool) (*embedArgs, []string, error) {
	var a embedArgs
	if err := calls.DecodeArgs(raw, &a); err != nil {
		return nil, nil, err
	}
	if !generic && a.Model != "" {
		return nil, nil, errors.New("invalid arguments: this tool always runs the same model; drop \"model\", or use ollama_embed to choose one")
	}
	if generic && strings.TrimSpace(a.Model) == "" {
		return nil, nil, errors.New("invalid arguments: \"model\" is required; call ollama_models for the names")
	}
	in := bytes.TrimSpace(a.Input)
	if len(in) == 0 || string(in) == "null" {
		return nil, nil, errors.New("invalid arguments: \"input\" is required: a string, or an array of strings")
	}
	var inputs []string
	if in[0] == '"' {
		var s string
		if err := json.Unmarshal(in, &s); err != nil {
			return nil, nil, fmt.Errorf("invalid arguments: input: %v", err)
		}
		inputs = []string{s}
	} else if err := json.Unmarshal(in, &inputs); err != nil {
		return nil, nil, errors.New("invalid arguments: input must be a string or an array of strings")
	}
	if len(inputs) == 0 {
		return nil, nil, errors.New("invalid arguments: input is an empty array; give at least one text")
	}
	if len(inputs) > maxEmbedInputs {
		return nil, nil, fmt.Errorf("invalid arguments: %d inputs is more than %d; split them over several calls", len(inputs), maxEmbedInputs)
	}
	for i, s := range inputs {
		if s == "" {
			return nil, nil, fmt.Errorf("invalid arguments: input[%d] is empty", i)
		}
	}
	return &a, inputs, nil
}
