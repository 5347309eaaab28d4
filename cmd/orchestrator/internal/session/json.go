package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
)

// CallJSON is one tool call in --json output.
type CallJSON struct {
	Step       int             `json:"step"`
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Arguments  json.RawMessage `json:"arguments"`
	Result     string          `json:"result"`
	IsError    bool            `json:"is_error"`
	Denied     bool            `json:"denied,omitempty"`
	FromText   bool            `json:"from_text,omitempty"`
	DurationMS float64         `json:"duration_ms"`
}

// TurnJSON is the object --json prints per turn.
type TurnJSON struct {
	Question        string     `json:"question"`
	Answer          string     `json:"answer"`
	Reasoning       string     `json:"reasoning,omitempty"`
	Model           string     `json:"model"`
	Steps           int        `json:"steps"`
	ToolCalls       []CallJSON `json:"tool_calls"`
	Usage           UsageJSON  `json:"usage"`
	DurationMS      float64    `json:"duration_ms"`
	Error           string     `json:"error,omitempty"`
	MaxStepsReached bool       `json:"max_steps_reached,omitempty"`
	TraceID         string     `json:"trace_id,omitempty"`
}

// UsageJSON is a turn's tokens in --json output.
type UsageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *Session) printJSON(q string, t *agent.Turn, err error) {
	out := TurnJSON{Question: q, Model: s.ag.Model(), ToolCalls: []CallJSON{}}
	if t != nil {
		out.Answer, out.Reasoning, out.Steps = t.Answer, t.Reasoning, t.Steps
		out.Usage = UsageJSON{t.Usage.PromptTokens, t.Usage.CompletionTokens}
		out.DurationMS, out.TraceID = ms(t.Duration), t.TraceID
		for _, c := range t.Calls {
			args := json.RawMessage(c.Arguments)
			if !json.Valid(args) {
				args, _ = json.Marshal(c.Arguments)
			}
			out.ToolCalls = append(out.ToolCalls, CallJSON{Step: c.Step, ID: c.ID, Name: c.Name, Arguments: args, Result: c.Result,
				IsError: c.IsError, Denied: c.Denied, FromText: c.FromText, DurationMS: ms(c.Duration)})
		}
	}
	if err != nil {
		out.Error = err.Error()
		out.MaxStepsReached = errors.Is(err, agent.ErrMaxSteps)
	}
	b, _ := json.Marshal(out)
	fmt.Fprintf(s.stdout, "%s\n", termsafe.JSON(b))
}
