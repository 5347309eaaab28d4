package store

import (
	"context"
	"fmt"
	"time"
)

// migrations take the schema from version i to i+1 (the database's
// user_version). Append to the list; never edit a step that has shipped.
var migrations = []string{
	// 1: sessions and calls.
	`CREATE TABLE sessions (
		id        TEXT PRIMARY KEY,
		opened_at INTEGER NOT NULL,
		closed_at INTEGER
	);
	CREATE TABLE calls (
		id         TEXT PRIMARY KEY,
		session    TEXT NOT NULL,
		call       TEXT NOT NULL,
		kind       TEXT NOT NULL,
		started_at INTEGER NOT NULL,
		dur_us     INTEGER NOT NULL,
		outcome    TEXT NOT NULL,
		reason     TEXT NOT NULL DEFAULT '',
		args       TEXT
	);
	CREATE INDEX calls_started ON calls(started_at);`,
	// 2: the client, sizes and digests, what sandbox and model calls
	// report, and the calls' progress events.
	`ALTER TABLE sessions ADD COLUMN client TEXT NOT NULL DEFAULT '';
	ALTER TABLE calls ADD COLUMN client TEXT NOT NULL DEFAULT '';
	ALTER TABLE calls ADD COLUMN call_group TEXT NOT NULL DEFAULT '';
	ALTER TABLE calls ADD COLUMN args_bytes INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE calls ADD COLUMN args_sha256 TEXT NOT NULL DEFAULT '';
	ALTER TABLE calls ADD COLUMN result_bytes INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE calls ADD COLUMN run TEXT;
	ALTER TABLE calls ADD COLUMN model TEXT;
	CREATE INDEX calls_call ON calls(call, started_at);
	CREATE INDEX calls_session ON calls(session, started_at);
	CREATE TABLE call_events (
		call_id  TEXT NOT NULL,
		time     INTEGER NOT NULL,
		kind     TEXT NOT NULL,
		progress REAL,
		total    REAL,
		message  TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX call_events_call ON call_events(call_id, time);`,
	// 3: the trace a call belongs to, and an orchestrator's turns: the
	// question, the answer, and each step of the turn (a model call with
	// its tokens and timings, or a tool call) in order.
	`ALTER TABLE calls ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
	CREATE TABLE turns (
		id           TEXT PRIMARY KEY,
		conversation TEXT NOT NULL DEFAULT '',
		started_at   INTEGER NOT NULL,
		dur_us       INTEGER NOT NULL,
		model        TEXT NOT NULL DEFAULT '',
		question     TEXT NOT NULL,
		answer       TEXT NOT NULL DEFAULT '',
		steps        INTEGER NOT NULL DEFAULT 0,
		tokens_in    INTEGER NOT NULL DEFAULT 0,
		tokens_out   INTEGER NOT NULL DEFAULT 0,
		outcome      TEXT NOT NULL,
		reason       TEXT NOT NULL DEFAULT '',
		trace_id     TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX turns_started ON turns(started_at);
	CREATE INDEX turns_conversation ON turns(conversation, started_at);
	CREATE TABLE turn_steps (
		turn_id        TEXT NOT NULL,
		seq            INTEGER NOT NULL,
		step           INTEGER NOT NULL,
		kind           TEXT NOT NULL,
		name           TEXT NOT NULL,
		started_at     INTEGER NOT NULL,
		dur_us         INTEGER NOT NULL,
		tokens_in      INTEGER NOT NULL DEFAULT 0,
		tokens_out     INTEGER NOT NULL DEFAULT 0,
		first_token_us INTEGER NOT NULL DEFAULT 0,
		outcome        TEXT NOT NULL DEFAULT '',
		reason         TEXT NOT NULL DEFAULT '',
		args           TEXT,
		result_bytes   INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (turn_id, seq)
	);`,
	// 4: the conversations orchestrator serve keeps for clients that name
	// one: the history as JSON, per owner (a token's identity) and agent,
	// until it expires.
	`CREATE TABLE conversations (
		owner      TEXT NOT NULL,
		agent      TEXT NOT NULL,
		id         TEXT NOT NULL,
		updated_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		history    TEXT NOT NULL,
		PRIMARY KEY (owner, agent, id)
	);
	CREATE INDEX conversations_expires ON conversations(expires_at);
	CREATE INDEX conversations_updated ON conversations(updated_at);`,
	// 5: calls are keyed by an integer, seq, instead of their text ID: the
	// text key's index was the dearest of a row's five b-tree writes. A
	// call's ID is its run's prefix, "-", and its number in the run, so seq
	// is the run's number (from runs, which maps prefixes to numbers)
	// shifted left by runBits, plus the call's number: a lookup by ID is
	// a lookup of the prefix and then of seq. Calls kept from before whose
	// IDs are not of that form (the store never wrote such IDs) keep their
	// rowid as seq, below 1<<runBits (run 0) in any table that had fewer
	// than 4 billion rows.
	`CREATE TABLE runs (
		n         INTEGER PRIMARY KEY AUTOINCREMENT,
		prefix    TEXT NOT NULL UNIQUE,
		opened_at INTEGER NOT NULL
	);
	CREATE TEMP VIEW v5_calls AS
		SELECT rowid AS rid, *, substr(id, 1, instr(id, '-') - 1) AS prefix, substr(id, instr(id, '-') + 1) AS num,
			instr(id, '-') > 1 AND (substr(id, instr(id, '-') + 1) GLOB '[1-9]*' OR substr(id, instr(id, '-') + 1) = '0') AND substr(id, instr(id, '-') + 1) NOT GLOB '*[^0-9]*'
				AND length(substr(id, instr(id, '-') + 1)) <= 10 AND CAST(substr(id, instr(id, '-') + 1) AS INTEGER) < 4294967296 AS ok
		FROM calls;
	INSERT INTO runs(prefix, opened_at) SELECT DISTINCT substr(id, 1, instr(id, '-') - 1), 0 FROM calls
		WHERE instr(id, '-') > 1 AND (substr(id, instr(id, '-') + 1) GLOB '[1-9]*' OR substr(id, instr(id, '-') + 1) = '0') AND substr(id, instr(id, '-') + 1) NOT GLOB '*[^0-9]*'
			AND length(substr(id, instr(id, '-') + 1)) <= 10 AND CAST(substr(id, instr(id, '-') + 1) AS INTEGER) < 4294967296;
	CREATE TABLE calls_v5 (
		seq          INTEGER PRIMARY KEY,
		id           TEXT NOT NULL,
		session      TEXT NOT NULL,
		client       TEXT NOT NULL DEFAULT '',
		call         TEXT NOT NULL,
		kind         TEXT NOT NULL,
		call_group   TEXT NOT NULL DEFAULT '',
		started_at   INTEGER NOT NULL,
		dur_us       INTEGER NOT NULL,
		outcome      TEXT NOT NULL,
		reason       TEXT NOT NULL DEFAULT '',
		args         TEXT,
		args_bytes   INTEGER NOT NULL DEFAULT 0,
		args_sha256  TEXT NOT NULL DEFAULT '',
		result_bytes INTEGER NOT NULL DEFAULT 0,
		run          TEXT,
		model        TEXT,
		trace_id     TEXT NOT NULL DEFAULT ''
	);
	INSERT INTO calls_v5
		SELECT CASE WHEN c.ok THEN (r.n << 32) + CAST(c.num AS INTEGER) ELSE c.rid END,
			c.id, c.session, c.client, c.call, c.kind, c.call_group, c.started_at, c.dur_us, c.outcome, c.reason, c.args,
			c.args_bytes, c.args_sha256, c.result_bytes, c.run, c.model, c.trace_id
		FROM v5_calls c LEFT JOIN runs r ON c.ok AND r.prefix = c.prefix;
	DROP VIEW v5_calls;
	DROP TABLE calls;
	ALTER TABLE calls_v5 RENAME TO calls;
	CREATE INDEX calls_started ON calls(started_at);
	CREATE INDEX calls_call ON calls(call, started_at);
	CREATE INDEX calls_session ON calls(session, started_at);`,
	// 6: who made the call: the name of the scoped token it came with
	// (never the token), to list one holder's calls.
	`ALTER TABLE calls ADD COLUMN token_name TEXT NOT NULL DEFAULT '';
	CREATE INDEX calls_token ON calls(token_name, started_at);`,
}

// runBits is how many low bits of a call's seq hold its number in its run.
const runBits = 32

// SchemaVersion is the version Open migrates a database to.
var SchemaVersion = len(migrations)

// ErrNewerSchema is wrapped by Open's error for a database written by a
// newer membrane.
var ErrNewerSchema = fmt.Errorf("the database was written by a newer membrane")

// migrate applies the steps the database has not had, each in a
// transaction of its own.
func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w (schema %d, this one knows up to %d)", ErrNewerSchema, v, len(migrations))
	}
	from, t0 := v, time.Now()
	if v > 0 && v < len(migrations) {
		// Schema 5 rewrites the calls table: seconds for a large history.
		s.log.Info("trace store: migrating the database to the current schema; a large history takes a while", "path", s.path, "from", v, "to", len(migrations))
	}
	for v < len(migrations) {
		err := s.step(ctx, v)
		if err == nil {
			v++
			continue
		}
		// Another process may have migrated the database first (its write
		// came between our read of the version and ours): go on from where
		// it left the schema.
		var now int
		if s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&now) != nil || now <= v {
			return err
		}
		v = now
	}
	if from > 0 && from < len(migrations) {
		s.log.Info("trace store: migrated", "path", s.path, "from", from, "to", len(migrations), "took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// step migrates the schema from version v to v+1, in one transaction.
func (s *Store) step(ctx context.Context, v int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
		return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
	}
	return nil
}
