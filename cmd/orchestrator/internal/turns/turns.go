// Package turns keeps the orchestrator's turns in the trace store (calls/store)
// and prints them back, for --history and the REPL's /history.
package turns

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
)

// Recorder keeps one run's turns in the trace store, as one
// conversation. A nil *Recorder keeps nothing.
type Recorder struct {
	st   *store.Store
	conv string // this run's conversation
	seq  int
	log  *slog.Logger
}

// Open opens the store the --store setting names (flag; empty: the
// default path), or returns nil (with the reason logged) when it is off
// or cannot be opened: the orchestrator works without it.
func Open(flag string, getenv func(string) string, log *slog.Logger) *Recorder {
	if flag == "off" {
		return nil
	}
	path, err := Path(flag, getenv)
	var st *store.Store
	if err == nil {
		st, err = store.Open(path, &store.Options{Logger: log.With("component", "store")})
	}
	if err != nil {
		log.Warn("turns are not kept: the trace store cannot be opened; fix the path or set --store off", "err", err)
		return nil
	}
	return &Recorder{st: st, conv: strings.ToLower(rand.Text()[:10]), log: log}
}

// Path is the store's path: flag, else store.DefaultPath.
func Path(flag string, getenv func(string) string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return store.DefaultPath(getenv)
}

// Store is the store the turns go to.
func (ts *Recorder) Store() *store.Store { return ts.st }

// Conversation is the id this run's turns are kept under.
func (ts *Recorder) Conversation() string { return ts.conv }

// Close closes the store; a nil Recorder does nothing.
func (ts *Recorder) Close() {
	if ts != nil {
		ts.st.Close()
	}
}

// Record stores one turn, its model calls and tool calls in the order they
// started.
func (ts *Recorder) Record(ctx context.Context, started time.Time, q, model string, t *agent.Turn, err error) {
	if ts == nil || t == nil {
		return
	}
	ts.seq++
	rec := &store.Turn{
		ID: fmt.Sprintf("%s-%d", ts.conv, ts.seq), Conversation: ts.conv, Started: started, DurMS: ms(t.Duration),
		Model: model, Question: q, Answer: t.Answer, Steps: t.Steps,
		TokensIn: int(t.Usage.PromptTokens), TokensOut: int(t.Usage.CompletionTokens),
		Outcome: "ok", TraceID: t.TraceID,
	}
	switch {
	case err == nil:
	case errors.Is(err, agent.ErrMaxSteps):
		rec.Outcome, rec.Reason = "max_steps", err.Error()
	case errors.Is(err, context.Canceled):
		rec.Outcome, rec.Reason = "cancelled", err.Error()
	default:
		rec.Outcome, rec.Reason = "error", err.Error()
	}
	for _, m := range t.Models {
		p := store.TurnStep{Step: m.Step, Kind: "model", Name: m.Model, Started: m.Started, DurMS: ms(m.Duration),
			TokensIn: int(m.Usage.PromptTokens), TokensOut: int(m.Usage.CompletionTokens), FirstTokenMS: ms(m.FirstToken), Outcome: "ok"}
		if m.Err != nil {
			p.Outcome, p.Reason = "error", display.FirstLine(m.Err.Error(), 400)
		}
		rec.Parts = append(rec.Parts, p)
	}
	for _, c := range t.Calls {
		p := store.TurnStep{Step: c.Step, Kind: "tool", Name: c.Name, Started: c.Started, DurMS: ms(c.Duration), Outcome: "ok", ResultBytes: len(c.Result)}
		if json.Valid([]byte(c.Arguments)) {
			p.Args = json.RawMessage(c.Arguments)
		}
		switch {
		case c.Denied:
			p.Outcome = "denied"
		case c.IsError:
			p.Outcome, p.Reason = "tool_error", display.FirstLine(c.Result, 400)
		}
		rec.Parts = append(rec.Parts, p)
	}
	slices.SortStableFunc(rec.Parts, func(a, b store.TurnStep) int {
		if a.Step != b.Step {
			return a.Step - b.Step
		}
		if a.Kind != b.Kind { // a step's model call comes before its tools
			return strings.Compare(a.Kind, b.Kind)
		}
		return a.Started.Compare(b.Started)
	})
	if err := ts.st.RecordTurn(ctx, rec); err == nil {
		ts.st.Flush()
	}
}

// Print writes the latest limit turns of st, oldest first, with their
// steps: as text, or as one JSON object per turn.
func Print(ctx context.Context, w io.Writer, st *store.Store, f store.TurnFilter, asJSON bool) error {
	turns, err := st.Turns(ctx, f)
	if err != nil {
		return err
	}
	if len(turns) == 0 && !asJSON {
		fmt.Fprintln(w, "no turns stored yet")
		return nil
	}
	slices.Reverse(turns)
	for _, sum := range turns {
		t, err := st.GetTurn(ctx, sum.ID)
		if err != nil {
			return err
		}
		if asJSON {
			b, _ := json.Marshal(t)
			fmt.Fprintf(w, "%s\n", termsafe.JSON(b))
			continue
		}
		fmt.Fprintf(w, "%s  %s  %s  %s · %d steps · %d→%d tokens · %s\n", t.Started.Local().Format("2006-01-02 15:04:05"), t.ID,
			t.Outcome, termsafe.Line(t.Model), t.Steps, t.TokensIn, t.TokensOut, time.Duration(t.DurMS*float64(time.Millisecond)).Round(time.Millisecond))
		fmt.Fprintf(w, "  Q: %s\n", termsafe.Line(display.FirstLine(t.Question, 200)))
		for _, p := range t.Parts {
			d := time.Duration(p.DurMS * float64(time.Millisecond)).Round(time.Millisecond)
			switch p.Kind {
			case "model":
				ftt := ""
				if p.FirstTokenMS > 0 {
					ftt = fmt.Sprintf(", first token %s", time.Duration(p.FirstTokenMS*float64(time.Millisecond)).Round(time.Millisecond))
				}
				fmt.Fprintf(w, "    %d model %s  %s  %d→%d tokens%s\n", p.Step, termsafe.Line(p.Name), d, p.TokensIn, p.TokensOut, ftt)
			default:
				line := fmt.Sprintf("    %d tool  %s  %s  %s", p.Step, termsafe.Line(p.Name), d, p.Outcome)
				if p.Reason != "" {
					line += ": " + termsafe.Line(display.FirstLine(p.Reason, 120))
				}
				fmt.Fprintln(w, line)
			}
		}
		if t.Reason != "" {
			fmt.Fprintf(w, "  error: %s\n", termsafe.Line(display.FirstLine(t.Reason, 200)))
		}
		if t.Answer != "" {
			fmt.Fprintf(w, "  A: %s\n", termsafe.Line(display.FirstLine(t.Answer, 200)))
		}
		if t.TraceID != "" {
			fmt.Fprintf(w, "  trace %s\n", t.TraceID)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
