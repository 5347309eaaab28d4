package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
)

// DefaultLimit and MaxLimit bound how many calls one query returns.
const (
	DefaultLimit = 50
	MaxLimit     = 10000
)

// Filter selects calls. The zero value selects the latest DefaultLimit.
type Filter struct {
	// Tool, Outcome and Session, when set, must match exactly.
	Tool, Outcome, Session string
	// Client (the name the client gave) and Token (the name of the scoped
	// token the call came with), when set, must match exactly.
	Client, Token string
	// Since, when set, keeps calls started at or after it.
	Since time.Time
	// Until, when set, keeps calls started before it: the end of a time
	// range, or the cursor of the next page (the start of the oldest call
	// of the page before).
	Until time.Time
	// Limit caps the number of calls, newest first. Zero means
	// DefaultLimit.
	Limit int
}

// ErrBadFilter is wrapped by ParseFilter's errors.
var ErrBadFilter = errors.New("bad filter")

// ParseFilter reads a filter written as space-separated key=value terms:
// tool=NAME, outcome=ok|tool_error|error|busy|cancelled|timeout,
// session=ID, client=NAME, token=NAME, since=DURATION (such as 1h, meaning that long before now) or
// since=RFC3339 time, until= the same, limit=N. now is the time a duration counts back from.
func ParseFilter(s string, now time.Time) (Filter, error) {
	var f Filter
	for _, term := range strings.Fields(s) {
		k, v, ok := strings.Cut(term, "=")
		if !ok || v == "" {
			return Filter{}, fmt.Errorf("%w: %q is not key=value", ErrBadFilter, term)
		}
		if err := f.Set(k, v, now); err != nil {
			return Filter{}, err
		}
	}
	return f, nil
}

// Set sets one term of the filter, as ParseFilter reads it.
func (f *Filter) Set(key, value string, now time.Time) error {
	switch key {
	case "tool":
		if !calls.NamePattern.MatchString(value) {
			return fmt.Errorf("%w: tool %q is not a call name", ErrBadFilter, value)
		}
		f.Tool = value
	case "outcome":
		for _, o := range calls.Outcomes() {
			if o.String() == value {
				f.Outcome = value
				return nil
			}
		}
		return fmt.Errorf("%w: outcome %q is not ok, tool_error, error, busy, cancelled or timeout", ErrBadFilter, value)
	case "session":
		if len(value) > 256 || strings.ContainsFunc(value, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return fmt.Errorf("%w: session %q is not a session ID", ErrBadFilter, value)
		}
		f.Session = value
	case "client", "token":
		if len(value) > 256 || !utf8.ValidString(value) || strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f || unicode.IsSpace(r) }) {
			return fmt.Errorf("%w: %s %q is not a %s name", ErrBadFilter, key, value, key)
		}
		if key == "client" {
			f.Client = value
		} else {
			f.Token = value
		}
	case "since", "until":
		t, err := parseTime(value, now)
		if err != nil {
			return fmt.Errorf("%w: %s %q is neither a duration (1h) nor a time (2026-12-01T10:00:00Z)", ErrBadFilter, key, value)
		}
		if key == "since" {
			f.Since = t
		} else {
			f.Until = t
		}
	case "limit":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > MaxLimit {
			return fmt.Errorf("%w: limit %q is not a number from 1 to %d", ErrBadFilter, value, MaxLimit)
		}
		f.Limit = n
	default:
		return fmt.Errorf("%w: unknown key %q (tool, outcome, session, client, token, since, until, limit)", ErrBadFilter, key)
	}
	return nil
}

// parseTime reads a duration before now or an RFC 3339 time.
func parseTime(value string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(value); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339Nano, value)
}

// String writes f as ParseFilter reads it, with since and until as RFC 3339
// times.
func (f Filter) String() string {
	var parts []string
	if f.Tool != "" {
		parts = append(parts, "tool="+f.Tool)
	}
	if f.Outcome != "" {
		parts = append(parts, "outcome="+f.Outcome)
	}
	if f.Session != "" {
		parts = append(parts, "session="+f.Session)
	}
	if f.Client != "" {
		parts = append(parts, "client="+f.Client)
	}
	if f.Token != "" {
		parts = append(parts, "token="+f.Token)
	}
	if !f.Since.IsZero() {
		parts = append(parts, "since="+f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		parts = append(parts, "until="+f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit != 0 {
		parts = append(parts, "limit="+strconv.Itoa(f.Limit))
	}
	return strings.Join(parts, " ")
}

// where is f as SQL conditions with their arguments; values only ever
// travel as arguments.
func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.Tool != "" {
		conds, args = append(conds, "call = ?"), append(args, f.Tool)
	}
	if f.Outcome != "" {
		conds, args = append(conds, "outcome = ?"), append(args, f.Outcome)
	}
	if f.Session != "" {
		conds, args = append(conds, "session = ?"), append(args, f.Session)
	}
	if f.Client != "" {
		conds, args = append(conds, "client = ?"), append(args, f.Client)
	}
	if f.Token != "" {
		conds, args = append(conds, "token_name = ?"), append(args, f.Token)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "started_at >= ?"), append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "started_at < ?"), append(args, f.Until.UnixMicro())
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Call is one stored call.
type Call struct {
	ID          string          `json:"id"`
	Session     string          `json:"session"`
	Client      string          `json:"client,omitempty"`
	TokenName   string          `json:"token_name,omitempty"`
	Call        string          `json:"call"`
	Kind        string          `json:"kind"`
	Group       string          `json:"group,omitempty"`
	Started     time.Time       `json:"started"`
	DurMS       float64         `json:"dur_ms"`
	Outcome     string          `json:"outcome"`
	Reason      string          `json:"reason,omitempty"`
	Args        json.RawMessage `json:"args,omitempty"`
	ArgsBytes   int             `json:"args_bytes"`
	ArgsSHA256  string          `json:"args_sha256,omitempty"`
	ResultBytes int             `json:"result_bytes"`
	Run         json.RawMessage `json:"run,omitempty"`
	Model       json.RawMessage `json:"model,omitempty"`
	TraceID     string          `json:"trace_id,omitempty"`
	Events      []Event         `json:"events,omitempty"`
}

// Event is one stored progress event of a call.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Progress float64   `json:"progress"`
	Total    float64   `json:"total,omitempty"`
	Message  string    `json:"message,omitempty"`
}

const callColumns = `id, session, client, call, kind, call_group, started_at, dur_us, outcome, reason, args, args_bytes, args_sha256, result_bytes, run, model, trace_id, token_name`

// Calls returns the calls f selects, newest first.
func (s *Store) Calls(ctx context.Context, f Filter) ([]Call, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	where, args := f.where()
	rows, err := s.db.QueryContext(ctx, `SELECT `+callColumns+` FROM calls`+where+` ORDER BY started_at DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: query: %w", err)
	}
	defer rows.Close()
	var out []Call
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ErrNotFound is returned by Get for an unknown call ID.
var ErrNotFound = errors.New("no such call")

// Get returns one call with its events.
func (s *Store) Get(ctx context.Context, id string) (*Call, error) {
	var row *sql.Row
	if prefix, n, ok := splitID(id); ok {
		row = s.db.QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls WHERE seq = (SELECT n FROM runs WHERE prefix = ?) * ? + ? AND id = ?`, prefix, int64(1)<<runBits, n, id)
	} else { // kept from before schema 5, in run 0
		row = s.db.QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls WHERE seq < ? AND id = ?`, int64(1)<<runBits, id)
	}
	c, err := scanCall(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: %w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT time, kind, coalesce(progress, 0), coalesce(total, 0), message FROM call_events WHERE call_id = ? ORDER BY time`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var t int64
		if err := rows.Scan(&t, &e.Kind, &e.Progress, &e.Total, &e.Message); err != nil {
			return nil, err
		}
		e.Time = time.UnixMicro(t).UTC()
		c.Events = append(c.Events, e)
	}
	return &c, rows.Err()
}

// splitID splits a call ID of the form the store gives (a prefix, "-",
// and a number below 1<<runBits, written without leading zeros).
func splitID(id string) (prefix string, n int64, ok bool) {
	prefix, num, ok := strings.Cut(id, "-")
	if !ok || prefix == "" || num == "" || len(num) > 10 || num[0] == '0' && num != "0" {
		return "", 0, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n >= 1<<runBits || strings.ContainsAny(num, "+-") {
		return "", 0, false
	}
	return prefix, n, true
}

func scanCall(row interface{ Scan(...any) error }) (Call, error) {
	var (
		c                Call
		started, dur     int64
		args, run, model sql.NullString
	)
	err := row.Scan(&c.ID, &c.Session, &c.Client, &c.Call, &c.Kind, &c.Group, &started, &dur, &c.Outcome, &c.Reason,
		&args, &c.ArgsBytes, &c.ArgsSHA256, &c.ResultBytes, &run, &model, &c.TraceID, &c.TokenName)
	if err != nil {
		return c, err
	}
	c.Started = time.UnixMicro(started).UTC()
	c.DurMS = float64(dur) / 1000
	if args.Valid {
		c.Args = json.RawMessage(args.String)
	}
	if run.Valid {
		c.Run = legacyRecord(run.String, "ExitCode", func(r *calls.RunInfo) any { return ledger.RunOf(r) })
	}
	if model.Valid {
		c.Model = legacyRecord(model.String, "TokensIn", func(m *calls.ModelInfo) any { return ledger.ModelOf(m) })
	}
	return c, nil
}

// legacyRecord returns a stored run or model record in the ledger's form.
// Rows written before that form was shared held the Go structs' own
// encoding (Go field names such as ExitCode, durations in nanoseconds);
// those are converted, every other record is passed on as stored.
func legacyRecord[T any](stored, key string, form func(*T) any) json.RawMessage {
	if !strings.Contains(stored, `"`+key+`"`) {
		return json.RawMessage(stored)
	}
	var v T
	if err := json.Unmarshal([]byte(stored), &v); err != nil {
		return json.RawMessage(stored)
	}
	b, err := json.Marshal(form(&v))
	if err != nil {
		return json.RawMessage(stored)
	}
	return b
}
