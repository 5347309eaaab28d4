// Package openaicompat drives a chat model behind any OpenAI-compatible
// chat-completions endpoint (Ollama's /v1 by default, OpenAI, vLLM, llama.cpp
// server, LM Studio) through openai-go v3, as an [agent.Model].
//
// It streams the reply, passes thinking text on as reasoning (the
// non-standard delta fields "reasoning" and "reasoning_content", and
// <think>…</think> blocks in the content that older Ollama versions and
// llama.cpp leave there), and assembles tool calls whether they arrive whole
// (Ollama) or in pieces (OpenAI).
package openaicompat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/membrane-mcp/membrane/calls/agent"
)

// LocalBaseURL is the endpoint of a zero Options: Ollama's /v1 on this
// machine's default port. The package reads no environment; a program
// that honours OLLAMA_HOST passes the URL it makes of it.
const LocalBaseURL = "http://127.0.0.1:11434/v1"

// RedactURL returns s with the password of a user:password@ hidden, for
// errors and help text; a URL that does not parse is not shown at all.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}

// Options configures a Client. The zero value talks to a local Ollama at
// LocalBaseURL.
type Options struct {
	// BaseURL is the endpoint, up to and including /v1. Empty means
	// LocalBaseURL.
	BaseURL string
	// APIKey is sent as a bearer token. Empty sends a placeholder (Ollama
	// ignores it). The environment is not read: the caller decides.
	APIKey string
	// Model is used when a request names none.
	Model string
	// Temperature, when set, is sent with each request.
	Temperature *float64
	// MaxTokens, when positive, bounds each reply.
	MaxTokens int64
	// ReasoningEffort ("low", "medium", "high", "none"), when set, is sent
	// as reasoning_effort; Ollama maps it to its think option.
	ReasoningEffort string
	// ThinkTags, when true, moves <think>…</think> text out of the content
	// into the reasoning.
	ThinkTags bool
	// MaxRetries is how often a failed request is retried. Zero means none.
	MaxRetries int
	// HTTPClient is used for requests. Nil means http.DefaultClient.
	HTTPClient *http.Client
	// Headers are added to every request.
	Headers map[string]string
	// Logger receives debug records. Nil discards.
	Logger *slog.Logger
}

// Client is an agent.Model backed by an OpenAI-compatible endpoint.
type Client struct {
	oc   openai.Client
	opts Options
	log  *slog.Logger
}

var _ agent.Model = (*Client)(nil)

// New returns a client; it does not contact the endpoint. A nil opts means
// the defaults.
func New(opts *Options) *Client {
	c := &Client{}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.BaseURL == "" {
		c.opts.BaseURL = LocalBaseURL
	}
	key := c.opts.APIKey
	if key == "" {
		key = "unused"
	}
	ro := []option.RequestOption{
		option.WithBaseURL(c.opts.BaseURL),
		option.WithAPIKey(key),
		option.WithMaxRetries(c.opts.MaxRetries),
		option.WithMiddleware(errorBodies),
	}
	if c.opts.HTTPClient != nil {
		ro = append(ro, option.WithHTTPClient(c.opts.HTTPClient))
	}
	for k, v := range c.opts.Headers {
		ro = append(ro, option.WithHeader(k, v))
	}
	c.oc = openai.NewClient(ro...)
	c.log = c.opts.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// BaseURL returns the endpoint the client talks to.
func (c *Client) BaseURL() string { return c.opts.BaseURL }

// Models lists the model names the endpoint serves, sorted.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	page, err := c.oc.Models.List(ctx)
	if err != nil {
		return nil, c.explain(err, "")
	}
	var out []string
	for _, m := range page.Data {
		out = append(out, m.ID)
	}
	slices.Sort(out)
	return out, nil
}

// Complete streams one chat completion; see agent.Model.
func (c *Client) Complete(ctx context.Context, req *agent.Request, onDelta func(agent.Delta)) (*agent.Reply, error) {
	model := req.Model
	if model == "" {
		model = c.opts.Model
	}
	if model == "" {
		return nil, &Error{Code: CodeNoModel, msg: "openaicompat: no model named"}
	}
	params := openai.ChatCompletionNewParams{
		Model:         shared.ChatModel(model),
		Messages:      toMessages(req.Messages),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	for _, t := range req.Tools {
		params.Tools = append(params.Tools, toTool(t))
	}
	if c.opts.Temperature != nil {
		params.Temperature = openai.Float(*c.opts.Temperature)
	}
	if c.opts.MaxTokens > 0 {
		params.MaxTokens = openai.Int(c.opts.MaxTokens)
	}
	if c.opts.ReasoningEffort != "" {
		params.ReasoningEffort = shared.ReasoningEffort(c.opts.ReasoningEffort)
	}

	stream := c.oc.Chat.Completions.NewStreaming(ctx, params)
	defer stream.Close()

	var (
		reply    = &agent.Reply{Message: agent.Message{Role: agent.RoleAssistant}}
		content  strings.Builder
		thinking strings.Builder
		tcs      toolCalls
		split    = thinkSplitter{on: c.opts.ThinkTags}
	)
	out := func(text string, reasoning bool) {
		// Whitespace before the first visible character of either stream
		// is dropped (a template's leading space, the gap after </think>).
		if reasoning && thinking.Len() == 0 || !reasoning && content.Len() == 0 {
			text = strings.TrimLeft(text, " \t\r\n")
		}
		if text == "" {
			return
		}
		if reasoning {
			thinking.WriteString(text)
			onDelta(agent.Delta{Reasoning: text})
			return
		}
		content.WriteString(text)
		onDelta(agent.Delta{Content: text})
	}
	for stream.Next() {
		if len(tcs.calls) > MaxToolCalls {
			return nil, fmt.Errorf("model endpoint %s: the reply has more than %d tool calls; it was stopped", RedactURL(c.opts.BaseURL), MaxToolCalls)
		}
		ch := stream.Current()
		if ch.JSON.Usage.Valid() && (ch.Usage.PromptTokens > 0 || ch.Usage.CompletionTokens > 0) {
			reply.Usage = agent.Usage{PromptTokens: ch.Usage.PromptTokens, CompletionTokens: ch.Usage.CompletionTokens}
		}
		for _, choice := range ch.Choices {
			if choice.Index != 0 {
				continue
			}
			d := choice.Delta
			for _, k := range []string{"reasoning", "reasoning_content", "thinking"} {
				if f, ok := d.JSON.ExtraFields[k]; ok && f.Raw() != "" && f.Raw() != "null" {
					var s string
					if json.Unmarshal([]byte(f.Raw()), &s) == nil {
						out(s, true)
					}
				}
			}
			split.feed(d.Content, out)
			tcs.add(d.ToolCalls)
			if choice.FinishReason != "" {
				reply.FinishReason = choice.FinishReason
			}
		}
	}
	split.flush(out)
	if err := stream.Err(); err != nil {
		return nil, c.explain(err, model)
	}
	reply.Message.Content = strings.TrimSpace(content.String())
	reply.Message.Reasoning = strings.TrimSpace(thinking.String())
	reply.Message.ToolCalls = tcs.done()
	c.log.Debug("completion", "model", model, "finish", reply.FinishReason, "tool_calls", len(reply.Message.ToolCalls),
		"prompt_tokens", reply.Usage.PromptTokens, "completion_tokens", reply.Usage.CompletionTokens)
	return reply, nil
}

// explain wraps an endpoint error with what to do about it.
func (c *Client) explain(err error, model string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		msg := apiErr.Message
		if msg == "" {
			msg = strings.TrimSpace(apiErr.RawJSON())
		}
		switch apiErr.StatusCode {
		case http.StatusNotFound:
			if model != "" {
				// Ollama's message says "try pulling it first": ours
				// says how, once.
				return &Error{Code: CodeModelNotServed, msg: fmt.Sprintf("model %q is not served at %s (pull it with `ollama pull %s`, or pick another model)", model, c.opts.BaseURL, model)}
			}
			return &Error{Code: CodeNotFound, msg: fmt.Sprintf("%s: not found: %s (is the base URL right? it should end in /v1)", c.opts.BaseURL, msg)}
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s refused the API key (HTTP %d): %s (set OPENAI_API_KEY)", c.opts.BaseURL, apiErr.StatusCode, msg)
		case http.StatusBadRequest:
			if strings.Contains(msg, "does not support tools") {
				return fmt.Errorf("model %q cannot call tools: %s (pick a model with tool support, such as qwen3 or llama3.1)", model, msg)
			}
			// Ollama v0.17.4's texts, from its ChatHandler: a level for a
			// model outside its harmony parser, and thinking asked of a
			// model without the capability.
			if strings.Contains(msg, "is not supported for this model") && strings.Contains(msg, "think value") {
				return &Error{Code: CodeThinkLevelUnsupported, err: err, msg: fmt.Sprintf("model %q reasons, but takes no reasoning effort level (%s): Ollama takes low, medium and high only for gpt-oss models; send none to turn its reasoning off, or no level to keep its default", model, msg)}
			}
			if strings.Contains(msg, "does not support thinking") {
				return &Error{Code: CodeNoThinking, err: err, msg: fmt.Sprintf("model %q does not reason (%s): send no reasoning effort, or pick a thinking model", model, msg)}
			}
		}
		if strings.HasSuffix(msg, "not an OpenAI-compatible API reply") {
			msg += " (is the base URL right? it should end in /v1)"
		}
		return fmt.Errorf("%s: HTTP %d: %s", RedactURL(c.opts.BaseURL), apiErr.StatusCode, msg)
	}
	var opErr *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &opErr) {
		return &Error{Code: CodeUnreachable, err: err, msg: fmt.Sprintf("cannot reach the model endpoint %s: %v (is Ollama running? set OLLAMA_HOST or the base URL)", RedactURL(c.opts.BaseURL), err)}
	}
	return fmt.Errorf("model endpoint %s: %w", RedactURL(c.opts.BaseURL), err)
}

func toMessages(ms []agent.Message) []openai.ChatCompletionMessageParamUnion {
	out := make([]openai.ChatCompletionMessageParamUnion, 0, len(ms))
	for _, m := range ms {
		switch m.Role {
		case agent.RoleSystem:
			out = append(out, openai.SystemMessage(m.Content))
		case agent.RoleUser:
			out = append(out, openai.UserMessage(m.Content))
		case agent.RoleTool:
			out = append(out, openai.ToolMessage(m.Content, m.ToolCallID))
		case agent.RoleAssistant:
			p := openai.ChatCompletionAssistantMessageParam{}
			if m.Content != "" || len(m.ToolCalls) == 0 {
				p.Content.OfString = openai.String(m.Content)
			}
			for _, tc := range m.ToolCalls {
				args := tc.Arguments
				if raw, err := agent.NormalizeArguments(args); err == nil {
					args = string(raw)
				} else {
					// Endpoints re-parse the history; invalid JSON here
					// would fail the next request, so send an empty object
					// (the tool result says what was wrong).
					args = "{}"
				}
				p.ToolCalls = append(p.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
						ID:       tc.ID,
						Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: tc.Name, Arguments: args},
					},
				})
			}
			out = append(out, openai.ChatCompletionMessageParamUnion{OfAssistant: &p})
		}
	}
	return out
}

func toTool(t agent.Tool) openai.ChatCompletionToolUnionParam {
	var params shared.FunctionParameters
	if err := json.Unmarshal(t.Parameters, &params); err != nil || params == nil {
		params = shared.FunctionParameters{"type": "object"}
	}
	fd := shared.FunctionDefinitionParam{Name: t.Name, Parameters: params}
	if t.Description != "" {
		fd.Description = openai.String(t.Description)
	}
	return openai.ChatCompletionFunctionTool(fd)
}

// toolCalls assembles streamed tool-call deltas. A delta continues the call
// at its index unless it starts a new one: it carries a new ID, or, with no
// ID, a name while the call there already has its name and whole JSON
// arguments, and arguments that open an object. Ollama sends each call whole
// (with an ID and its own index since v0.8), OpenAI sends the ID and name
// first and then pieces of the arguments, calls may interleave by index,
// and some servers reuse index 0 for every call.
type toolCalls struct {
	calls   []*agent.ToolCall
	byIndex map[int64]*agent.ToolCall
}

func (t *toolCalls) add(ds []openai.ChatCompletionChunkChoiceDeltaToolCall) {
	if t.byIndex == nil {
		t.byIndex = map[int64]*agent.ToolCall{}
	}
	for _, d := range ds {
		cur := t.byIndex[d.Index]
		if cur == nil || (d.ID != "" && cur.ID != "" && d.ID != cur.ID) ||
			(d.ID == "" && d.Function.Name != "" && cur.Name != "" && strings.HasPrefix(strings.TrimSpace(d.Function.Arguments), "{") && json.Valid([]byte(cur.Arguments))) {
			cur = &agent.ToolCall{}
			t.calls = append(t.calls, cur)
			t.byIndex[d.Index] = cur
		}
		if cur.ID == "" {
			cur.ID = d.ID
		}
		if d.Function.Name != "" && d.Function.Name != cur.Name {
			cur.Name += d.Function.Name
		}
		cur.Arguments += d.Function.Arguments
	}
}

func (t *toolCalls) done() []agent.ToolCall {
	var out []agent.ToolCall
	for _, c := range t.calls {
		if c.Name == "" {
			continue
		}
		out = append(out, *c)
	}
	return out
}

// thinkSplitter moves text between <think> and </think> out of the
// content, across chunk boundaries.
type thinkSplitter struct {
	on      bool
	in      bool   // inside a think block
	trim    bool   // drop whitespace right after </think>
	pending string // a tail that may be the start of a tag
}

func (s *thinkSplitter) feed(text string, out func(string, bool)) {
	if !s.on {
		out(text, false)
		return
	}
	s.pending += text
	for {
		tag := "<think>"
		if s.in {
			tag = "</think>"
		}
		if i := strings.Index(s.pending, tag); i >= 0 {
			s.emit(s.pending[:i], out)
			s.pending = s.pending[i+len(tag):]
			s.in = !s.in
			s.trim = !s.in
			continue
		}
		keep := 0
		for n := min(len(tag)-1, len(s.pending)); n > 0; n-- {
			if strings.HasSuffix(s.pending, tag[:n]) {
				keep = n
				break
			}
		}
		s.emit(s.pending[:len(s.pending)-keep], out)
		s.pending = s.pending[len(s.pending)-keep:]
		return
	}
}

func (s *thinkSplitter) emit(text string, out func(string, bool)) {
	if s.trim && !s.in {
		text = strings.TrimLeft(text, " \t\r\n")
		if text == "" {
			return
		}
		s.trim = false
	}
	out(text, s.in)
}

func (s *thinkSplitter) flush(out func(string, bool)) {
	if s.pending != "" {
		s.emit(s.pending, out)
		s.pending = ""
	}
}

// Code says what went wrong with a model endpoint, so that a program can
// add advice in its own terms (which flag picks the model or the URL).
type Code int

const (
	CodeNoModel        Code = iota + 1 // no model was named
	CodeModelNotServed                 // the endpoint does not serve the model
	CodeNotFound                       // the URL answers 404: likely a wrong path
	CodeUnreachable                    // nothing answers at the URL
	// CodeThinkLevelUnsupported: the model reasons but refuses the
	// reasoning effort level sent (Ollama takes levels for gpt-oss only).
	CodeThinkLevelUnsupported
	// CodeNoThinking: a reasoning effort was sent to a model that does not
	// reason.
	CodeNoThinking
)

// Error is an endpoint failure with a Code; its text names no flags.
type Error struct {
	Code Code
	msg  string
	err  error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }
