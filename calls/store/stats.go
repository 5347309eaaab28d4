package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// CallID returns the ID under which the store keeps the call that a
// router's events number id, so that a live view can link an event to the
// stored call.
func (s *Store) CallID(id uint64) string { return s.callID(id) }

// Count returns how many calls f selects, ignoring its Limit.
func (s *Store) Count(ctx context.Context, f Filter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM calls`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count: %w", err)
	}
	return n, nil
}

// Sample is one call's duration, for latency plots.
type Sample struct {
	Started time.Time
	Dur     time.Duration
	Failed  bool
}

// MaxSamples bounds what Samples returns.
const MaxSamples = 20000

// Samples returns the durations of the latest calls f selects (at most
// f.Limit, or MaxSamples when Limit is zero), oldest first.
func (s *Store) Samples(ctx context.Context, f Filter) ([]Sample, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxSamples {
		limit = MaxSamples
	}
	where, args := f.where()
	rows, err := s.db.QueryContext(ctx, `SELECT started_at, dur_us, outcome FROM calls`+where+` ORDER BY started_at DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: samples: %w", err)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var started, dur int64
		var outcome string
		if err := rows.Scan(&started, &dur, &outcome); err != nil {
			return nil, err
		}
		out = append(out, Sample{Started: time.UnixMicro(started).UTC(), Dur: time.Duration(dur) * time.Microsecond, Failed: outcome != "ok"})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, rows.Err()
}

// Bucket counts the calls started in one interval.
type Bucket struct {
	Start  time.Time `json:"start"`
	OK     int       `json:"ok"`
	Failed int       `json:"failed"`
}

// Buckets counts the calls f selects per interval of width, from f.Since
// (which must be set) on; intervals without calls are left out.
func (s *Store) Buckets(ctx context.Context, f Filter, width time.Duration) ([]Bucket, error) {
	if f.Since.IsZero() || width < time.Millisecond {
		return nil, fmt.Errorf("store: buckets need a start and a width of at least 1ms")
	}
	where, args := f.where()
	w := width.Microseconds()
	rows, err := s.db.QueryContext(ctx, `SELECT (started_at - ?) / ? AS b, sum(outcome = 'ok'), sum(outcome != 'ok') FROM calls`+where+` GROUP BY b ORDER BY b`,
		append([]any{f.Since.UnixMicro(), w}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("store: buckets: %w", err)
	}
	defer rows.Close()
	var out []Bucket
	for rows.Next() {
		var b int64
		var bk Bucket
		if err := rows.Scan(&b, &bk.OK, &bk.Failed); err != nil {
			return nil, err
		}
		bk.Start = f.Since.Add(time.Duration(b) * width).UTC()
		out = append(out, bk)
	}
	return out, rows.Err()
}

// ModelRate sums what one model generated.
type ModelRate struct {
	Model      string        `json:"model"`
	Calls      int           `json:"calls"`
	TokensOut  int           `json:"tokens_out"`
	Generation time.Duration `json:"generation_ns"`
}

// ModelRates sums, per model, the tokens generated and the time spent
// generating them by the model calls f selects.
func (s *Store) ModelRates(ctx context.Context, f Filter) ([]ModelRate, error) {
	where, args := f.where()
	cond := " WHERE model IS NOT NULL"
	if where != "" {
		cond = where + " AND model IS NOT NULL"
	}
	// Records in the ledger's form (model, tokens_out, generation_ms), or
	// in the Go structs' own form of rows from before it (Model,
	// TokensOut, Generation in nanoseconds).
	rows, err := s.db.QueryContext(ctx, `SELECT coalesce(json_extract(model, '$.model'), json_extract(model, '$.Model')) AS m, count(*),
			coalesce(sum(coalesce(json_extract(model, '$.tokens_out'), json_extract(model, '$.TokensOut'))), 0),
			CAST(coalesce(sum(coalesce(json_extract(model, '$.generation_ms') * 1e6, json_extract(model, '$.Generation'))), 0) AS INTEGER)
		FROM calls`+cond+` GROUP BY m ORDER BY m`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: model rates: %w", err)
	}
	defer rows.Close()
	var out []ModelRate
	for rows.Next() {
		var r ModelRate
		var name sql.NullString
		var gen int64
		if err := rows.Scan(&name, &r.Calls, &r.TokensOut, &gen); err != nil {
			return nil, err
		}
		r.Model, r.Generation = name.String, time.Duration(gen)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Kills counts, per reason, the sandboxed runs that f selects and that the
// sandbox killed (timeout, memory, processes, output, cancel).
func (s *Store) Kills(ctx context.Context, f Filter) (map[string]int, error) {
	where, args := f.where()
	cond := " WHERE run IS NOT NULL"
	if where != "" {
		cond = where + " AND run IS NOT NULL"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT coalesce(json_extract(run, '$.killed'), json_extract(run, '$.Killed')) AS k, count(*) FROM calls`+cond+` GROUP BY k`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: kills: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k sql.NullString
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		if k.String != "" {
			out[k.String] = n
		}
	}
	return out, rows.Err()
}

// Outcomes counts the calls f selects by outcome.
func (s *Store) Outcomes(ctx context.Context, f Filter) (map[string]int, error) {
	where, args := f.where()
	rows, err := s.db.QueryContext(ctx, `SELECT outcome, count(*) FROM calls`+where+` GROUP BY outcome`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: outcomes: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			return nil, err
		}
		out[o] = n
	}
	return out, rows.Err()
}
