package openaicompat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
)

// turnWriter writes one turn's answer. In a stream, events arrive from the
// agent (serialised) and keep-alives from a ticker, so writes hold mu.
type turnWriter struct {
	s          *Server
	w          http.ResponseWriter
	rc         *http.ResponseController
	spec       agents.Spec
	req        *ChatRequest
	agentShape bool
	id         string
	created    int64
	cancel     func()

	mu      sync.Mutex
	started bool // the stream's headers are out
	broken  bool // a write failed: the client is gone or stalled
	last    time.Time
}

type chunkDelta struct {
	Role      string `json:"role,omitempty"`
	Content   string `json:"content,omitempty"`
	Reasoning string `json:"reasoning_content,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	FinishReason *string    `json:"finish_reason"`
}

type wireUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

func usageOf(u agent.Usage) wireUsage {
	return wireUsage{u.PromptTokens, u.CompletionTokens, u.PromptTokens + u.CompletionTokens}
}

type chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *wireUsage    `json:"usage,omitempty"`
}

func (t *turnWriter) startStream() {
	h := t.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.WriteHeader(http.StatusOK)
	t.started = true
	t.send(chunkDelta{Role: "assistant"}, nil, nil)
}

// send writes one chunk; mu is held.
func (t *turnWriter) send(d chunkDelta, finish *string, usage *wireUsage) {
	c := chunk{ID: t.id, Object: "chat.completion.chunk", Created: t.created, Model: t.spec.Name, Choices: []chunkChoice{{Delta: d, FinishReason: finish}}, Usage: usage}
	if usage != nil && finish == nil {
		c.Choices = []chunkChoice{}
	}
	b, _ := json.Marshal(c)
	t.write("data: " + string(b) + "\n\n")
}

// write sends raw SSE text within the write-stall bound; mu is held. A
// failed write cancels the turn: nobody reads its answer.
func (t *turnWriter) write(s string) {
	if t.broken {
		return
	}
	_ = t.rc.SetWriteDeadline(time.Now().Add(t.s.opts.WriteStall))
	if _, err := t.w.Write([]byte(s)); err != nil {
		t.broken = true
		t.cancel()
		return
	}
	if err := t.rc.Flush(); err != nil {
		t.broken = true
		t.cancel()
		return
	}
	t.last = time.Now()
}

// keepAlive sends an SSE comment whenever the stream has been quiet for
// every, until the returned stop is called.
func (t *turnWriter) keepAlive(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				t.mu.Lock()
				if time.Since(t.last) >= every/2 {
					t.write(": working\n\n")
				}
				t.mu.Unlock()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// event turns what the agent does into chunks: answer text as content,
// thinking and tool progress as reasoning_content.
func (t *turnWriter) event(e agent.Event) {
	var d chunkDelta
	switch e.Kind {
	case agent.EventContent:
		d.Content = e.Text
	case agent.EventReasoning:
		d.Reasoning = e.Text
	case agent.EventToolStart:
		d.Reasoning = fmt.Sprintf("\n[tool %s %s]\n", e.Call.Name, clip(oneLine(e.Call.Arguments), 400))
	case agent.EventToolProgress:
		if e.Text == "" {
			return
		}
		d.Reasoning = fmt.Sprintf("[%s] %s\n", e.Call.Name, clip(oneLine(e.Text), 400))
	case agent.EventToolDone:
		r := e.Record
		state := "done"
		switch {
		case r.Denied:
			state = "denied"
		case r.IsError:
			state = "failed"
		}
		d.Reasoning = fmt.Sprintf("[tool %s %s in %.2fs]\n", r.Name, state, r.Duration.Seconds())
	default:
		return
	}
	if d.Content == "" && d.Reasoning == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.send(d, nil, nil)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// TraceStep is one tool call of a turn, as the step trace shows it.
type TraceStep struct {
	Step       int             `json:"step"`
	Tool       string          `json:"tool"`
	Arguments  json.RawMessage `json:"arguments"`
	Result     string          `json:"result"`
	IsError    bool            `json:"is_error"`
	Denied     bool            `json:"denied,omitempty"`
	FromText   bool            `json:"from_text,omitempty"`
	DurationMS float64         `json:"duration_ms"`
}

func traceOf(t *agent.Turn) []TraceStep {
	out := []TraceStep{}
	for _, c := range t.Calls {
		args := json.RawMessage(c.Arguments)
		if !json.Valid(args) {
			args, _ = json.Marshal(c.Arguments)
		}
		out = append(out, TraceStep{Step: c.Step, Tool: c.Name, Arguments: args, Result: c.Result, IsError: c.IsError,
			Denied: c.Denied, FromText: c.FromText, DurationMS: float64(c.Duration.Microseconds()) / 1000})
	}
	return out
}

// finish writes the end of the turn: the answer, or the error.
func (t *turnWriter) finish(turn *agent.Turn, e *RequestError) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		if e != nil {
			b, _ := json.Marshal(errorBody(e))
			t.write("data: " + string(b) + "\n\n")
		} else {
			stop := "stop"
			t.send(chunkDelta{}, &stop, nil)
			if t.req.IncludeUsage {
				u := usageOf(turn.Usage)
				t.send(chunkDelta{}, nil, &u)
			}
		}
		t.write("data: [DONE]\n\n")
		return
	}
	if e != nil {
		writeError(t.w, e)
		return
	}
	u := usageOf(turn.Usage)
	if t.agentShape {
		out := map[string]any{
			"agent":   t.spec.Name,
			"model":   t.spec.Model,
			"message": map[string]any{"role": "assistant", "content": turn.Answer},
			"usage":   u,
			"steps":   turn.Steps,
		}
		if t.req.ConversationID != "" {
			out["conversation_id"] = t.req.ConversationID
		}
		if turn.Reasoning != "" {
			out["reasoning"] = turn.Reasoning
		}
		if t.req.Trace {
			out["trace"] = traceOf(turn)
		}
		writeJSON(t.w, out)
		return
	}
	msg := map[string]any{"role": "assistant", "content": turn.Answer}
	if turn.Reasoning != "" {
		msg["reasoning_content"] = turn.Reasoning
	}
	writeJSON(t.w, map[string]any{
		"id":      t.id,
		"object":  "chat.completion",
		"created": t.created,
		"model":   t.spec.Name,
		"choices": []map[string]any{{"index": 0, "message": msg, "finish_reason": "stop"}},
		"usage":   u,
	})
}
