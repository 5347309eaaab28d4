package ollama

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
)

// maxSSELine caps one server-sent event line from a backend. A longer line
// is an error, not a reason to hold more memory.
const maxSSELine = 4 << 20

// maxEmbedBody caps an embeddings reply from a backend.
const maxEmbedBody = 256 << 20

// backendOptions maps the Ollama options a backend call may carry to the
// OpenAI request fields they become. Other options (num_ctx, mirostat, ...)
// have no OpenAI form, and a call that sets one is refused rather than
// have it silently ignored.
var backendOptions = map[string]string{
	"temperature":       "temperature",
	"top_p":             "top_p",
	"top_k":             "top_k", // vLLM, llama-server, LM Studio, LiteLLM pass it on
	"min_p":             "min_p",
	"seed":              "seed",
	"stop":              "stop",
	"num_predict":       "max_tokens",
	"presence_penalty":  "presence_penalty",
	"frequency_penalty": "frequency_penalty",
	"repeat_penalty":    "repetition_penalty", // vLLM's name
}

// checkBackendOptions refuses options that an OpenAI-compatible request
// cannot carry, naming those it can.
func checkBackendOptions(opts map[string]any) error {
	for k := range opts {
		if _, ok := backendOptions[k]; !ok {
			names := make([]string, 0, len(backendOptions))
			for n := range backendOptions {
				names = append(names, n)
			}
			slices.Sort(names)
			return fmt.Errorf("option %q has no equivalent on an OpenAI-compatible server; the options it takes are: %s", k, strings.Join(names, ", "))
		}
	}
	return nil
}

// refuseBackendTruncate refuses truncate:true for a model of an
// OpenAI-compatible server: those servers answer an input longer than the
// context with an error and have no way to be told to cut it, so the
// argument would be dropped silently. truncate:false asks for what they do
// anyway.
func refuseBackendTruncate(t *bool) error {
	if t != nil && *t {
		return errors.New("invalid arguments: truncate true is not available for a model of an OpenAI-compatible server (it refuses an input longer than the model's context and cannot cut it); drop truncate and shorten the input")
	}
	return nil
}

// oaMessage is one chat message in the OpenAI wire form; Content is a
// string, or an array of parts when the message carries images.
type oaMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

type oaPart struct {
	Type     string      `json:"type"`
	Text     string      `json:"text,omitempty"`
	ImageURL *oaImageURL `json:"image_url,omitempty"`
}

type oaImageURL struct {
	URL string `json:"url"`
}

// chatBody is the OpenAI chat-completions request for creq.
func chatBody(creq *api.ChatRequest) ([]byte, error) {
	body := map[string]any{
		"model":          creq.Model,
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
	}
	msgs := make([]oaMessage, 0, len(creq.Messages))
	for _, m := range creq.Messages {
		if len(m.Images) == 0 {
			msgs = append(msgs, oaMessage{Role: m.Role, Content: m.Content})
			continue
		}
		parts := []oaPart{{Type: "text", Text: m.Content}}
		for _, img := range m.Images {
			mime := http.DetectContentType(img)
			if !strings.HasPrefix(mime, "image/") {
				mime = "image/png"
			}
			parts = append(parts, oaPart{Type: "image_url", ImageURL: &oaImageURL{URL: "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(img)}})
		}
		msgs = append(msgs, oaMessage{Role: m.Role, Content: parts})
	}
	body["messages"] = msgs
	for k, v := range creq.Options {
		body[backendOptions[k]] = v
	}
	if f := bytes.TrimSpace(creq.Format); len(f) > 0 {
		if string(f) == `"json"` {
			body["response_format"] = map[string]any{"type": "json_object"}
		} else {
			body["response_format"] = map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "answer", "schema": json.RawMessage(f)}}
		}
	}
	if creq.Think != nil {
		switch v := creq.Think.Value.(type) {
		case string:
			body["reasoning_effort"] = v
		case bool:
			// true sends nothing: a reasoning model thinks by default on
			// these servers, and a level is refused by models that take
			// none (Ollama v0.17.4's /v1 answers "medium" for qwen3 with
			// 400 `think value "medium" is not supported for this model`).
			if !v {
				body["reasoning_effort"] = "none"
			}
		}
	}
	return json.Marshal(body)
}

// chunk is one streamed chat-completions event.
type chunk struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content          string `json:"content"`
			Reasoning        string `json:"reasoning"`
			ReasoningContent string `json:"reasoning_content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// errMidStream is an error event in the middle of a backend's stream.
type errMidStream struct{ msg string }

func (e *errMidStream) Error() string { return "the server reported an error mid-stream: " + e.msg }

// chat streams creq from the backend, handing fn each piece as an Ollama
// chat response would come, so that the Ollama tools' handling of
// progress, limits, results and errors applies unchanged. The last call of
// fn has Done set, with the finish reason and the token counts; a stream
// that ends without finishing returns nil without it, as api.Client does.
func (o *openAI) chat(ctx context.Context, hc *http.Client, creq *api.ChatRequest, fn func(api.ChatResponse) error) error {
	body, err := chatBody(creq)
	if err != nil {
		return err
	}
	req, err := o.request(ctx, http.MethodPost, "chat/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		// A server that ignores stream:true answers in one piece.
		err = oneShot(resp.Body, fn)
	} else {
		err = readStream(resp.Body, fn)
	}
	if err == nil {
		drainRest(resp.Body)
	}
	return err
}

// Bounds on what drainRest reads and waits for.
const (
	maxDrain  = 4 << 10
	drainWait = 50 * time.Millisecond
)

// drainRest reads what is left of a body whose answer is complete: the
// end of the chunked encoding after [DONE], a newline after a one-piece
// reply. net/http puts a connection back in its pool only when the body
// was read to its end before Close; without this, most calls (three in
// five, measured against Ollama's /v1) paid for a new TCP connection.
// A server that sends more than maxDrain bytes, or does not end the body
// within drainWait, loses its connection instead, as before.
func drainRest(body io.ReadCloser) {
	t := time.AfterFunc(drainWait, func() { body.Close() })
	defer t.Stop()
	_, _ = io.CopyN(io.Discard, body, maxDrain)
}

// readStream decodes a chat-completions event stream; see chat.
func readStream(r io.Reader, fn func(api.ChatResponse) error) error {
	sc := bufio.NewScanner(r)
	// Events are short: start small (a 64 KiB buffer was a large,
	// zeroed allocation per call) and grow to maxSSELine when one is not.
	sc.Buffer(make([]byte, 0, 4<<10), maxSSELine)
	var (
		finish string
		final  api.ChatResponse
	)
	done := func() error {
		final.Done = true
		final.DoneReason = doneReason(finish)
		return fn(final)
	}
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue // event names, ids, comments, blank separators
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			return done()
		}
		var c chunk
		if err := json.Unmarshal(data, &c); err != nil {
			return fmt.Errorf("malformed stream event: %w", err)
		}
		if len(c.Error) > 0 && string(c.Error) != "null" {
			return &errMidStream{msg: errorMessage([]byte(`{"error":` + string(c.Error) + `}`))}
		}
		if c.Usage != nil {
			final.PromptEvalCount, final.EvalCount = c.Usage.PromptTokens, c.Usage.CompletionTokens
		}
		for _, ch := range c.Choices {
			if ch.Index != 0 {
				continue
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				finish = *ch.FinishReason
			}
			think := ch.Delta.Reasoning // vLLM since 0.11; reasoning_content before, and llama-server
			if think == "" {
				think = ch.Delta.ReasoningContent
			}
			if ch.Delta.Content == "" && think == "" {
				continue
			}
			if err := fn(api.ChatResponse{Message: api.Message{Role: "assistant", Content: ch.Delta.Content, Thinking: think}}); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("a stream event is longer than %d bytes", maxSSELine)
		}
		return err
	}
	if finish != "" {
		return done() // some servers end without [DONE]
	}
	return nil
}

// oneShot hands fn a non-streamed chat completion as one piece and the end.
func oneShot(r io.Reader, fn func(api.ChatResponse) error) error {
	var resp struct {
		Choices []struct {
			Message struct {
				Content          string `json:"content"`
				ReasoningContent string `json:"reasoning_content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(io.LimitReader(r, maxSSELine)).Decode(&resp); err != nil {
		return fmt.Errorf("malformed reply: %w", err)
	}
	if len(resp.Choices) == 0 {
		return errors.New("malformed reply: no choices")
	}
	c := resp.Choices[0]
	if err := fn(api.ChatResponse{Message: api.Message{Role: "assistant", Content: c.Message.Content, Thinking: c.Message.ReasoningContent}}); err != nil {
		return err
	}
	final := api.ChatResponse{Done: true, DoneReason: doneReason(c.FinishReason)}
	final.PromptEvalCount, final.EvalCount = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
	return fn(final)
}

// doneReason maps an OpenAI finish reason to Ollama's done_reason.
func doneReason(finish string) string {
	switch finish {
	case "", "stop", "eos":
		return "stop"
	}
	return finish // "length", "tool_calls", "content_filter"
}

// embed sends one POST /v1/embeddings for ereq's inputs.
func (o *openAI) embed(ctx context.Context, hc *http.Client, ereq *api.EmbedRequest) (*api.EmbedResponse, error) {
	body, err := json.Marshal(map[string]any{"model": ereq.Model, "input": ereq.Input, "encoding_format": "float"})
	if err != nil {
		return nil, err
	}
	req, err := o.request(ctx, http.MethodPost, "embeddings", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	var out struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxEmbedBody + 1}
	if err := json.NewDecoder(lr).Decode(&out); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("the embeddings reply is larger than %d bytes", maxEmbedBody)
		}
		return nil, fmt.Errorf("malformed embeddings reply: %w", err)
	}
	vecs := make([][]float32, len(out.Data))
	for _, d := range out.Data {
		if d.Index < 0 || d.Index >= len(vecs) || vecs[d.Index] != nil {
			return nil, errors.New("malformed embeddings reply: the indexes are not 0..n-1")
		}
		vecs[d.Index] = d.Embedding
	}
	return &api.EmbedResponse{Model: ereq.Model, Embeddings: vecs}, nil
}

// hostChat streams creq from h, whichever kind of server it is.
func (h *host) chat(ctx context.Context, creq *api.ChatRequest, fn func(api.ChatResponse) error) error {
	if h.oa != nil {
		return h.oa.chat(ctx, h.http, creq, fn)
	}
	return h.client.Chat(ctx, creq, fn)
}

// embed embeds ereq's inputs on h, whichever kind of server it is.
func (h *host) embed(ctx context.Context, ereq *api.EmbedRequest) (*api.EmbedResponse, error) {
	if h.oa != nil {
		return h.oa.embed(ctx, h.http, ereq)
	}
	return h.client.Embed(ctx, ereq)
}

// server is what h is, in error texts: "Ollama" or "the OpenAI-compatible
// server".
func (h *host) server() string {
	if h.oa != nil {
		return "the OpenAI-compatible server"
	}
	return "Ollama"
}
