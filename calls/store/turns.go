package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls/ledger"
)

// Turn is one turn of an orchestrator's conversation: a question, the
// steps taken to answer it, and the answer.
type Turn struct {
	ID string `json:"id"`
	// Conversation groups the turns of one conversation (one REPL, one
	// run of the orchestrator).
	Conversation string    `json:"conversation,omitempty"`
	Started      time.Time `json:"started"`
	DurMS        float64   `json:"dur_ms"`
	Model        string    `json:"model,omitempty"`
	Question     string    `json:"question"`
	Answer       string    `json:"answer,omitempty"`
	// Steps counts the model calls of the turn.
	Steps     int `json:"steps"`
	TokensIn  int `json:"tokens_in"`
	TokensOut int `json:"tokens_out"`
	// Outcome is "ok", "error", "cancelled" or "max_steps"; Reason says
	// why for all but "ok".
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// TraceID is the OpenTelemetry trace of the turn, when it was traced.
	TraceID string     `json:"trace_id,omitempty"`
	Parts   []TurnStep `json:"parts,omitempty"`
}

// TurnStep is one model call or tool call of a turn.
type TurnStep struct {
	// Step is the model step the part belongs to (1 for the first model
	// call and the tool calls it asked for).
	Step int `json:"step"`
	// Kind is "model" or "tool"; Name is the model's or the tool's name.
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	DurMS   float64   `json:"dur_ms"`
	// TokensIn, TokensOut and FirstTokenMS are set for model calls.
	TokensIn     int     `json:"tokens_in,omitempty"`
	TokensOut    int     `json:"tokens_out,omitempty"`
	FirstTokenMS float64 `json:"first_token_ms,omitempty"`
	// Outcome is "ok", "tool_error", "denied" or "error".
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Args are a tool call's arguments, scrubbed and cut as the ledger
	// cuts them.
	Args        json.RawMessage `json:"args,omitempty"`
	ResultBytes int             `json:"result_bytes,omitempty"`
}

// TurnFilter selects turns. The zero value selects the latest DefaultLimit.
type TurnFilter struct {
	Conversation string
	Since        time.Time
	// Until, when set, keeps turns started before it: the cursor of the
	// next page, newest first.
	Until time.Time
	Limit int
}

// maxTurnText bounds the question and the answer kept of one turn.
const maxTurnText = 64 << 10

// RecordTurn stores one turn with its steps, scrubbing the question, the
// answer, the reasons and the arguments. It joins the open batch like an
// observed call: a failure is logged and counted as Observe's are, and also
// returned.
func (s *Store) RecordTurn(ctx context.Context, t *Turn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.exec(ctx, `INSERT OR REPLACE INTO turns(id, conversation, started_at, dur_us, model, question, answer, steps, tokens_in, tokens_out, outcome, reason, trace_id)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Conversation, t.Started.UnixMicro(), int64(t.DurMS*1000), t.Model,
		s.scr.String(cut(t.Question)), s.scr.String(cut(t.Answer)), t.Steps, t.TokensIn, t.TokensOut,
		t.Outcome, s.scr.String(t.Reason), t.TraceID)
	if err == nil {
		_ = s.exec(ctx, `DELETE FROM turn_steps WHERE turn_id = ?`, t.ID)
	}
	for i := 0; err == nil && i < len(t.Parts); i++ {
		p := &t.Parts[i]
		var args []byte
		if len(p.Args) > 0 {
			args = ledger.Args(s.scr, p.Args, ledger.DefaultMaxValueBytes, ledger.DefaultMaxArgsBytes)
		}
		err = s.exec(ctx, `INSERT INTO turn_steps(turn_id, seq, step, kind, name, started_at, dur_us, tokens_in, tokens_out, first_token_us, outcome, reason, args, result_bytes)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, i, p.Step, p.Kind, p.Name, p.Started.UnixMicro(), int64(p.DurMS*1000), p.TokensIn, p.TokensOut,
			int64(p.FirstTokenMS*1000), p.Outcome, s.scr.String(p.Reason), nullable(args), p.ResultBytes)
	}
	s.record(err)
	return err
}

func cut(s string) string {
	if len(s) <= maxTurnText {
		return s
	}
	return strings.ToValidUTF8(s[:maxTurnText], "") + "…"
}

const turnColumns = `id, conversation, started_at, dur_us, model, question, answer, steps, tokens_in, tokens_out, outcome, reason, trace_id`

// Turns returns the turns f selects, newest first, without their steps.
func (s *Store) Turns(ctx context.Context, f TurnFilter) ([]Turn, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	var conds []string
	var args []any
	if f.Conversation != "" {
		conds, args = append(conds, "conversation = ?"), append(args, f.Conversation)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "started_at >= ?"), append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "started_at < ?"), append(args, f.Until.UnixMicro())
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+turnColumns+` FROM turns`+where+` ORDER BY started_at DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: query turns: %w", err)
	}
	defer rows.Close()
	var out []Turn
	for rows.Next() {
		t, err := scanTurn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// GetTurn returns one turn with its steps in order.
func (s *Store) GetTurn(ctx context.Context, id string) (*Turn, error) {
	t, err := scanTurn(s.db.QueryRowContext(ctx, `SELECT `+turnColumns+` FROM turns WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: %w: turn %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT step, kind, name, started_at, dur_us, tokens_in, tokens_out, first_token_us, outcome, reason, args, result_bytes
		FROM turn_steps WHERE turn_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p                 TurnStep
			started, dur, ftt int64
			args              sql.NullString
		)
		if err := rows.Scan(&p.Step, &p.Kind, &p.Name, &started, &dur, &p.TokensIn, &p.TokensOut, &ftt, &p.Outcome, &p.Reason, &args, &p.ResultBytes); err != nil {
			return nil, err
		}
		p.Started = time.UnixMicro(started).UTC()
		p.DurMS, p.FirstTokenMS = float64(dur)/1000, float64(ftt)/1000
		if args.Valid {
			p.Args = json.RawMessage(args.String)
		}
		t.Parts = append(t.Parts, p)
	}
	return &t, rows.Err()
}

func scanTurn(row interface{ Scan(...any) error }) (Turn, error) {
	var (
		t            Turn
		started, dur int64
	)
	err := row.Scan(&t.ID, &t.Conversation, &started, &dur, &t.Model, &t.Question, &t.Answer, &t.Steps, &t.TokensIn, &t.TokensOut, &t.Outcome, &t.Reason, &t.TraceID)
	t.Started = time.UnixMicro(started).UTC()
	t.DurMS = float64(dur) / 1000
	return t, err
}
