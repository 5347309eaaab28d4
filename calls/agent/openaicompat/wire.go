package openaicompat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls/agent"
)

// Bounds on one chat request, beside the body size.
const (
	MaxMessages      = 1000
	MaxToolCalls     = 128 // of one assistant message
	MaxConversation  = 256
	maxIDBytes       = 256
	maxModelNameSize = 256
)

// ChatRequest is a decoded and checked chat-completions request: the part
// of the OpenAI request the server acts on. Fields it does not act on
// (sampling settings, tools of the client's own) are ignored, as the
// server's agents bring their own.
type ChatRequest struct {
	// Model names the agent.
	Model string
	// Messages is the conversation; the last one is the user's.
	Messages []agent.Message
	// Stream asks for server-sent events; IncludeUsage for the final
	// usage chunk.
	Stream, IncludeUsage bool
	// ConversationID, when set, names a conversation the server keeps:
	// Messages are appended to its history.
	ConversationID string
	// Trace asks for the step trace in the answer (/v1/agents/{name}/chat).
	Trace bool
}

// RequestError is a request the server refuses, as an OpenAI error object
// says it: Status is the HTTP status, Type and Code the error's kind,
// Param the field at fault.
type RequestError struct {
	Status int
	Type   string
	Code   string
	Param  string
	Msg    string
	// NoRetry asks clients not to retry (x-should-retry: false): the turn
	// may have run tools already.
	NoRetry bool
}

func (e *RequestError) Error() string { return e.Msg }

// The error types of OpenAI error objects.
const (
	typeInvalid   = "invalid_request_error"
	typeNotFound  = "not_found_error"
	typeRateLimit = "rate_limit_error"
	typeServer    = "server_error"
	typeTimeout   = "timeout_error"
	typeAuth      = "authentication_error"
)

func badRequest(param, format string, args ...any) *RequestError {
	return &RequestError{Status: 400, Type: typeInvalid, Code: "invalid_value", Param: param, Msg: fmt.Sprintf(format, args...)}
}

type wireRequest struct {
	Model         *string           `json:"model"`
	Messages      []json.RawMessage `json:"messages"`
	Stream        *bool             `json:"stream"`
	StreamOptions *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
	N              *int    `json:"n"`
	ConversationID *string `json:"conversation_id"`
	Trace          *bool   `json:"trace"`
}

type wireMessage struct {
	Role       *string           `json:"role"`
	Content    json.RawMessage   `json:"content"`
	Name       *string           `json:"name"`
	ToolCalls  []json.RawMessage `json:"tool_calls"`
	ToolCallID *string           `json:"tool_call_id"`
}

type wireToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type wirePart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

// DecodeChatRequest decodes and checks a chat-completions request body.
// needModel says whether "model" is required (it is not on
// /v1/agents/{name}/chat, whose path names the agent). Every refusal is a
// *RequestError naming the field at fault.
func DecodeChatRequest(body []byte, needModel bool) (*ChatRequest, *RequestError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, badRequest("", "the request body is empty: send a JSON object with model and messages")
	}
	if body[0] != '{' {
		return nil, badRequest("", "the request body must be a JSON object with model and messages")
	}
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, badRequest(jsonParam(err), "the request body is not valid: %s", jsonErr(err))
	}
	req := &ChatRequest{}
	if w.Model != nil {
		req.Model = *w.Model
	}
	if needModel && strings.TrimSpace(req.Model) == "" {
		return nil, badRequest("model", "model is missing: name one of the agents (GET /v1/models lists them)")
	}
	if len(req.Model) > maxModelNameSize || !utf8.ValidString(req.Model) {
		return nil, badRequest("model", "model is not an agent name")
	}
	if w.Stream != nil {
		req.Stream = *w.Stream
	}
	if w.StreamOptions != nil && w.StreamOptions.IncludeUsage != nil {
		req.IncludeUsage = *w.StreamOptions.IncludeUsage
	}
	if w.N != nil && *w.N != 1 {
		return nil, badRequest("n", "n must be 1: an agent gives one answer per turn")
	}
	if w.Trace != nil {
		req.Trace = *w.Trace
	}
	if w.ConversationID != nil {
		id := *w.ConversationID
		if id == "" || len(id) > maxIDBytes || !printableASCII(id) {
			return nil, badRequest("conversation_id", "conversation_id must be 1 to %d printable ASCII characters", maxIDBytes)
		}
		req.ConversationID = id
	}
	if len(w.Messages) == 0 {
		return nil, badRequest("messages", "messages is missing or empty: send at least one user message")
	}
	if len(w.Messages) > MaxMessages {
		return nil, badRequest("messages", "%d messages; at most %d", len(w.Messages), MaxMessages)
	}
	open := map[string]bool{} // tool calls not yet answered
	for i, raw := range w.Messages {
		m, err := decodeMessage(raw, i, open)
		if err != nil {
			return nil, err
		}
		req.Messages = append(req.Messages, m)
	}
	if last := req.Messages[len(req.Messages)-1]; last.Role != agent.RoleUser {
		return nil, badRequest(fmt.Sprintf("messages[%d]", len(req.Messages)-1),
			"the last message is from %s; it must be the user's (the agent runs its tools itself, so it is never sent tool results)", last.Role)
	}
	return req, nil
}

func decodeMessage(raw json.RawMessage, i int, open map[string]bool) (agent.Message, *RequestError) {
	param := fmt.Sprintf("messages[%d]", i)
	var w wireMessage
	if err := json.Unmarshal(raw, &w); err != nil {
		return agent.Message{}, badRequest(param, "%s must be an object with role and content: %s", param, jsonErr(err))
	}
	if w.Role == nil {
		return agent.Message{}, badRequest(param+".role", "%s has no role: give system, user, assistant or tool", param)
	}
	var m agent.Message
	switch *w.Role {
	case "system", "developer":
		m.Role = agent.RoleSystem
	case "user":
		m.Role = agent.RoleUser
	case "assistant":
		m.Role = agent.RoleAssistant
	case "tool":
		m.Role = agent.RoleTool
	default:
		return agent.Message{}, badRequest(param+".role", "%s has role %q; give system, user, assistant or tool", param, *w.Role)
	}
	text, err := decodeContent(w.Content, param)
	if err != nil {
		return agent.Message{}, err
	}
	if m.Role != agent.RoleAssistant && text == nil {
		return agent.Message{}, badRequest(param+".content", "%s has no content", param)
	}
	if text != nil {
		m.Content = *text
	}
	if len(w.ToolCalls) > 0 && m.Role != agent.RoleAssistant {
		return agent.Message{}, badRequest(param+".tool_calls", "%s: only an assistant message has tool_calls", param)
	}
	if len(w.ToolCalls) > MaxToolCalls {
		return agent.Message{}, badRequest(param+".tool_calls", "%s has %d tool calls; at most %d", param, len(w.ToolCalls), MaxToolCalls)
	}
	if m.Role == agent.RoleAssistant && text == nil && len(w.ToolCalls) == 0 {
		return agent.Message{}, badRequest(param+".content", "%s: an assistant message needs content or tool_calls", param)
	}
	for j, rawCall := range w.ToolCalls {
		cp := fmt.Sprintf("%s.tool_calls[%d]", param, j)
		var c wireToolCall
		if err := json.Unmarshal(rawCall, &c); err != nil {
			return agent.Message{}, badRequest(cp, "%s is not a tool call: %s", cp, jsonErr(err))
		}
		switch {
		case c.Type != "" && c.Type != "function":
			return agent.Message{}, badRequest(cp+".type", "%s has type %q; only function calls are known", cp, c.Type)
		case c.ID == "" || len(c.ID) > maxIDBytes || !printableASCII(c.ID):
			return agent.Message{}, badRequest(cp+".id", "%s needs an id of 1 to %d printable ASCII characters", cp, maxIDBytes)
		case c.Function.Name == "" || len(c.Function.Name) > 128 || !utf8.ValidString(c.Function.Name):
			return agent.Message{}, badRequest(cp+".function.name", "%s needs a function name", cp)
		case open[c.ID]:
			return agent.Message{}, badRequest(cp+".id", "%s: id %q is used twice", cp, c.ID)
		}
		if !utf8.ValidString(c.Function.Arguments) {
			return agent.Message{}, badRequest(cp+".function.arguments", "%s: arguments are not valid UTF-8", cp)
		}
		open[c.ID] = true
		m.ToolCalls = append(m.ToolCalls, agent.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
	}
	if m.Role == agent.RoleTool {
		if w.ToolCallID == nil || *w.ToolCallID == "" {
			return agent.Message{}, badRequest(param+".tool_call_id", "%s is a tool message without tool_call_id: it must answer a tool call of an earlier assistant message", param)
		}
		id := *w.ToolCallID
		if !open[id] {
			return agent.Message{}, badRequest(param+".tool_call_id", "%s answers tool call %q, which no earlier assistant message made (or which is answered already)", param, clip(id, 64))
		}
		delete(open, id)
		m.ToolCallID = id
		if w.Name != nil {
			m.ToolName = *w.Name
		}
	}
	return m, nil
}

// decodeContent reads content given as text, as a list of text parts, or
// as null (nil).
func decodeContent(raw json.RawMessage, param string) (*string, *RequestError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badRequest(param+".content", "%s.content is not valid text: %s", param, jsonErr(err))
		}
		return &s, nil
	}
	if raw[0] != '[' {
		return nil, badRequest(param+".content", "%s.content must be text or a list of text parts", param)
	}
	var parts []wirePart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, badRequest(param+".content", "%s.content must be text or a list of text parts: %s", param, jsonErr(err))
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return nil, badRequest(fmt.Sprintf("%s.content[%d].type", param, j), "%s.content[%d] is a %q part; only text parts are supported", param, j, clip(p.Type, 32))
		}
		if p.Text == nil {
			return nil, badRequest(fmt.Sprintf("%s.content[%d].text", param, j), "%s.content[%d] has no text", param, j)
		}
		b.WriteString(*p.Text)
	}
	s = b.String()
	return &s, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s must be %s, not %s", te.Field, jsonWant(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("want %s, not %s", jsonWant(te.Type.Kind().String()), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonParam(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}

func jsonWant(kind string) string {
	switch kind {
	case "string":
		return "text"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	case "int", "int64":
		return "a whole number"
	}
	return kind
}

// EncodeMessages writes messages as the wire's "messages" list, the form
// DecodeChatRequest reads.
func EncodeMessages(msgs []agent.Message) []map[string]any {
	out := make([]map[string]any, 0, len(msgs))
	for _, m := range msgs {
		w := map[string]any{"role": string(m.Role)}
		if m.Role != agent.RoleAssistant || m.Content != "" || len(m.ToolCalls) == 0 {
			w["content"] = m.Content
		}
		if len(m.ToolCalls) > 0 {
			var tcs []map[string]any
			for _, tc := range m.ToolCalls {
				tcs = append(tcs, map[string]any{"id": tc.ID, "type": "function",
					"function": map[string]any{"name": tc.Name, "arguments": tc.Arguments}})
			}
			w["tool_calls"] = tcs
		}
		if m.Role == agent.RoleTool {
			w["tool_call_id"] = m.ToolCallID
			if m.ToolName != "" {
				w["name"] = m.ToolName
			}
		}
		out = append(out, w)
	}
	return out
}
