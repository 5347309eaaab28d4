package agent

import (
	"context"
	"encoding/json"
)

// Role says who wrote a Message.
type Role string

// The roles of a conversation.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Message is one entry of a conversation.
type Message struct {
	Role Role
	// Content is the text of the message. For a tool message it is the
	// tool's result as the model sees it.
	Content string
	// Reasoning is the thinking text of an assistant message. It is kept for
	// display; adapters need not send it back.
	Reasoning string
	// ToolCalls are the calls an assistant message asks for.
	ToolCalls []ToolCall
	// ToolCallID and ToolName say which call a tool message answers.
	ToolCallID string
	ToolName   string
}

// ToolCall is one tool call a model asked for.
type ToolCall struct {
	// ID pairs the call with its result. The agent makes one up when the
	// model sends none.
	ID string
	// Name is the tool's name as the model was told it.
	Name string
	// Arguments is the JSON text the model wrote. It may be invalid: the
	// agent answers invalid arguments with a tool error.
	Arguments string
}

// Tool is a tool as a model is told about it.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments (an object schema).
	Parameters json.RawMessage
}

// Request is what the agent sends a model for one step.
type Request struct {
	// Model names the model to use; empty means the adapter's default.
	Model    string
	Messages []Message
	Tools    []Tool
}

// Delta is a piece of a reply as it streams in.
type Delta struct {
	// Content is answer text; Reasoning is thinking text. Usually one of the
	// two is set.
	Content, Reasoning string
}

// Usage counts the tokens of one or more model calls.
type Usage struct {
	PromptTokens, CompletionTokens int64
}

// Add returns u plus v.
func (u Usage) Add(v Usage) Usage {
	return Usage{u.PromptTokens + v.PromptTokens, u.CompletionTokens + v.CompletionTokens}
}

// Reply is a model's complete answer to one Request.
type Reply struct {
	// Message is the assistant message: its content (without reasoning),
	// reasoning and structured tool calls.
	Message Message
	// FinishReason is the model's reason for stopping ("stop",
	// "tool_calls", "length"), when it gave one.
	FinishReason string
	Usage        Usage
}

// Model is what the agent needs from a chat model: one streamed completion
// of a conversation with tools. Implementations call onDelta, from the
// calling goroutine, as text arrives, and return the whole reply at the
// end. An error means no usable reply (the endpoint is down, the model is
// unknown, ctx was cancelled).
type Model interface {
	Complete(ctx context.Context, req *Request, onDelta func(Delta)) (*Reply, error)
}

// ModelFunc adapts a function to the Model interface.
type ModelFunc func(ctx context.Context, req *Request, onDelta func(Delta)) (*Reply, error)

// Complete calls f.
func (f ModelFunc) Complete(ctx context.Context, req *Request, onDelta func(Delta)) (*Reply, error) {
	return f(ctx, req, onDelta)
}
