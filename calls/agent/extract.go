package agent

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/membrane-mcp/membrane/calls"
)

// Bounds on the work ExtractToolCalls does on untrusted model output.
const (
	maxExtractBytes = 1 << 20 // longer text is not searched
	maxBareFailures = 16      // failed JSON decodes at a bare '{' or '[' before giving up
)

// ExtractToolCalls finds tool calls that a model wrote as text instead of
// making structured calls, and returns them with the text that is left once
// they are taken out (trimmed). It recognises the forms local models use:
//
//   - a bare JSON object {"name": "sh", "arguments": {...}} (also with
//     "parameters", "args" or "input" for the arguments, or wrapped as
//     {"type": "function", "function": {...}});
//   - a JSON list of such objects, or {"tool_calls": [...]};
//   - any of these inside a ``` or ```json fence;
//   - any of these inside <tool_call>…</tool_call> or <tool_calls>…</tool_calls>
//     (an unclosed tag runs to the end of the text);
//   - <function=NAME>{...}</function>.
//
// A call counts only when known reports its name as a tool the model was
// given (a nil known accepts any valid call name), so that JSON the model
// writes for the user is left alone. Arguments given as an object are
// returned as compact JSON; arguments given as a string are returned as that
// string, for NormalizeArguments to judge.
func ExtractToolCalls(text string, known func(name string) bool) ([]ToolCall, string) {
	found, spans := findToolCalls(text, known)
	if len(found) == 0 {
		return nil, text
	}
	return found, strings.TrimSpace(removeSpans(text, spans))
}

type span struct{ start, end int }

func findToolCalls(text string, known func(string) bool) ([]ToolCall, []span) {
	if len(text) > maxExtractBytes || strings.TrimSpace(text) == "" {
		return nil, nil
	}
	if known == nil {
		known = calls.NamePattern.MatchString
	}
	type hit struct {
		sp    span
		calls []ToolCall
	}
	var hits []hit
	covered := func(i int) bool {
		for _, h := range hits {
			if i >= h.sp.start && i < h.sp.end {
				return true
			}
		}
		return false
	}
	add := func(sp span, cs []ToolCall) {
		hits = append(hits, hit{sp, cs})
	}

	// Tagged regions: <tool_call>…</tool_call> and <tool_calls>…</tool_calls>.
	for _, tag := range []string{"tool_call", "tool_calls"} {
		open, closing := "<"+tag+">", "</"+tag+">"
		for from := 0; ; {
			i := strings.Index(text[from:], open)
			if i < 0 {
				break
			}
			i += from
			if covered(i) {
				from = i + len(open)
				continue
			}
			body := i + len(open)
			end, next := len(text), len(text)
			if j := strings.Index(text[body:], closing); j >= 0 {
				end, next = body+j, body+j+len(closing)
			}
			if cs := parseCallsText(text[body:end], known); len(cs) > 0 {
				add(span{i, next}, cs)
			}
			from = next
			if from >= len(text) {
				break
			}
		}
	}

	// <function=NAME>{...}</function>
	for from := 0; ; {
		i := strings.Index(text[from:], "<function=")
		if i < 0 {
			break
		}
		i += from
		from = i + len("<function=")
		gt := strings.IndexByte(text[from:], '>')
		if gt < 0 || covered(i) {
			continue
		}
		name := text[from : from+gt]
		body := from + gt + 1
		end, next := len(text), len(text)
		if j := strings.Index(text[body:], "</function>"); j >= 0 {
			end, next = body+j, body+j+len("</function>")
		}
		if !known(name) {
			continue
		}
		args := strings.TrimSpace(text[body:end])
		if a, ok := argsFrom(args); ok {
			add(span{i, next}, []ToolCall{{Name: name, Arguments: a}})
			from = next
		}
	}

	// Fenced blocks: ``` or ```json (any info string) up to the closing fence.
	for from := 0; ; {
		i := strings.Index(text[from:], "```")
		if i < 0 {
			break
		}
		i += from
		nl := strings.IndexByte(text[i+3:], '\n')
		if nl < 0 {
			break
		}
		body := i + 3 + nl + 1
		j := strings.Index(text[body:], "```")
		end, next := len(text), len(text)
		if j >= 0 {
			end, next = body+j, body+j+3
		}
		if !covered(i) {
			if cs := parseCallsText(text[body:end], known); len(cs) > 0 {
				add(span{i, next}, cs)
			}
		}
		from = next
		if from >= len(text) {
			break
		}
	}

	// Bare JSON values anywhere else.
	failures := 0
	for i := 0; i < len(text) && failures < maxBareFailures; i++ {
		c := text[i]
		if c != '{' && c != '[' || covered(i) {
			continue
		}
		if !startsLikeCall(text[i+1:]) {
			continue
		}
		v, n, ok := decodeOne(text[i:])
		if !ok {
			failures++
			continue
		}
		if cs := callsFrom(v, known); len(cs) > 0 {
			start := i
			if p := strings.TrimRight(text[:i], " \t"); strings.HasSuffix(p, "[TOOL_CALLS]") {
				start = len(p) - len("[TOOL_CALLS]")
			}
			add(span{start, i + n}, cs)
		}
		i += n - 1 // a JSON value that is not a call hides none inside
	}

	slices.SortFunc(hits, func(a, b hit) int { return a.sp.start - b.sp.start })
	var out []ToolCall
	var spans []span
	for _, h := range hits {
		out = append(out, h.calls...)
		spans = append(spans, h.sp)
	}
	return out, spans
}

// startsLikeCall reports whether the text after a '{' or '[' begins like an
// object key or a list of objects, to skip braces in prose and code cheaply.
func startsLikeCall(s string) bool {
	s = strings.TrimLeft(s, " \t\r\n")
	return s != "" && (s[0] == '"' || s[0] == '{')
}

// decodeOne decodes the JSON value at the start of s and returns it with
// the number of bytes it took.
func decodeOne(s string) (any, int, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, 0, false
	}
	return v, int(dec.InputOffset()), true
}

// parseCallsText parses a whole region (a tag's or a fence's body) as one
// JSON value, or as several values one after another.
func parseCallsText(s string, known func(string) bool) []ToolCall {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var out []ToolCall
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			break
		}
		cs := callsFrom(v, known)
		if len(cs) == 0 {
			return nil
		}
		out = append(out, cs...)
	}
	if strings.TrimSpace(s[dec.InputOffset():]) != "" {
		return nil // trailing text that is not a call: not a call block
	}
	return out
}

// callsFrom turns a decoded JSON value into tool calls, or none when any
// part of it is not a call to a known tool.
func callsFrom(v any, known func(string) bool) []ToolCall {
	switch x := v.(type) {
	case []any:
		var out []ToolCall
		for _, e := range x {
			cs := callsFrom(e, known)
			if len(cs) == 0 {
				return nil
			}
			out = append(out, cs...)
		}
		return out
	case map[string]any:
		if list, ok := x["tool_calls"].([]any); ok {
			return callsFrom(list, known)
		}
		if f, ok := x["function"].(map[string]any); ok {
			return callsFrom(f, known)
		}
		name, ok := x["name"].(string)
		if !ok || !calls.NamePattern.MatchString(name) || !known(name) {
			return nil
		}
		for _, k := range []string{"arguments", "parameters", "args", "input"} {
			a, ok := x[k]
			if !ok {
				continue
			}
			switch a := a.(type) {
			case map[string]any:
				b, err := marshalCompact(a)
				if err != nil {
					return nil
				}
				return []ToolCall{{Name: name, Arguments: b}}
			case string:
				return []ToolCall{{Name: name, Arguments: a}}
			case nil:
				return []ToolCall{{Name: name, Arguments: "{}"}}
			}
			return nil
		}
		// {"name": "tool"} alone (or with "type") is a call without arguments.
		for k := range x {
			if k != "name" && k != "type" {
				return nil
			}
		}
		return []ToolCall{{Name: name, Arguments: "{}"}}
	}
	return nil
}

// argsFrom accepts the body of a <function=…> tag: a JSON object, or
// nothing.
func argsFrom(s string) (string, bool) {
	if s == "" {
		return "{}", true
	}
	v, n, ok := decodeOne(s)
	if !ok || strings.TrimSpace(s[n:]) != "" {
		return "", false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	b, err := marshalCompact(m)
	return b, err == nil
}

func marshalCompact(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// removeSpans returns text without the given spans, which are sorted by
// start and do not overlap.
func removeSpans(text string, spans []span) string {
	var b strings.Builder
	at := 0
	for _, sp := range spans {
		if sp.start < at {
			continue
		}
		b.WriteString(text[at:sp.start])
		at = sp.end
	}
	b.WriteString(text[at:])
	return b.String()
}
