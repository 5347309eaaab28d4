// Package store is the trace store: a calls.Observer that keeps sessions,
// calls and their progress events in an embedded SQLite database, through
// the pure-Go driver modernc.org/sqlite (no cgo, so membrane still
// cross-compiles), and answers queries over them for `membrane calls`.
//
// The database carries its schema version; Open migrates an older one
// forward, one step at a time, each in a transaction. Retention removes
// calls older than Options.MaxAge, and the oldest calls while the file is
// larger than Options.MaxBytes.
//
// Writes happen on the observer's goroutine, never on a call's path. A
// write that fails (a full disk, a read-only file) is logged and the event
// lost; the calls go on.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/calls/scrub"
)

// Defaults used where Options leaves a field zero.
const (
	DefaultMaxAge   = 30 * 24 * time.Hour
	DefaultMaxBytes = 256 << 20
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// MaxAge is how long calls are kept. Zero means DefaultMaxAge;
	// negative means forever.
	MaxAge time.Duration
	// MaxBytes bounds the database file; past it the oldest calls go.
	// Zero means DefaultMaxBytes; negative means no bound.
	MaxBytes int64
	// Scrubber hides secrets in the arguments and reasons stored. Nil
	// means scrub.New(nil).
	Scrubber *scrub.Scrubber
	// Logger receives the store's own trouble. Nil discards.
	Logger *slog.Logger
}

// Store is the trace store. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	opts Options
	scr  *scrub.Scrubber
	log  *slog.Logger
	run  string // this process's prefix of call IDs

	// The statements of every call, prepared once: parsing the SQL anew
	// was half the cost of a write.
	insCall, insEvent *sql.Stmt

	mu      sync.Mutex // guards everything below
	tx      *sql.Tx    // the open batch, or nil
	txStmts map[*sql.Stmt]*sql.Stmt
	txRows  int
	txStart time.Time
	writes  int
	failing bool
	lost    uint64
	closed  bool

	stop chan struct{}
	done sync.WaitGroup
}

// A batch is committed once it holds batchRows rows or is batchAge old:
// one transaction per call would cost a commit each.
const (
	batchRows = 256
	batchAge  = 200 * time.Millisecond
)

var _ calls.Observer = (*Store)(nil)

// DefaultPath is $XDG_STATE_HOME/membrane/membrane.db, or
// ~/.local/state/membrane/membrane.db when XDG_STATE_HOME is unset.
func DefaultPath(getenv func(string) string) (string, error) {
	dir := getenv("XDG_STATE_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("store: neither XDG_STATE_HOME nor HOME is set")
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "membrane", "membrane.db"), nil
}

// Open opens (creating if needed) the database at path and migrates it to
// the current schema.
func Open(path string, opts *Options) (*Store, error) {
	s := &Store{path: path}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.MaxAge == 0 {
		s.opts.MaxAge = DefaultMaxAge
	}
	if s.opts.MaxBytes == 0 {
		s.opts.MaxBytes = DefaultMaxBytes
	}
	s.scr = s.opts.Scrubber
	if s.scr == nil {
		s.scr = scrub.New(nil)
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.run = rand.Text()[:8]
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// SQLite says only "unable to open database file" of a file it may
	// not write; opening it first says why (a read-only file system, a
	// directory in the way, no permission).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f.Close()
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4) // one writer (the batch) and readers beside it
	s.db = db
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if s.insCall, err = db.Prepare(insertCallSQL); err == nil {
		s.insEvent, err = db.Prepare(insertEventSQL)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	s.retain(context.Background())
	s.stop = make(chan struct{})
	s.done.Go(s.flusher)
	return s, nil
}

// flusher commits a batch that has waited long enough.
func (s *Store) flusher() {
	t := time.NewTicker(batchAge)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if s.tx != nil && time.Since(s.txStart) >= batchAge {
				s.record(s.commit())
			}
			s.mu.Unlock()
		}
	}
}

// Flush commits what has been observed so far.
func (s *Store) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(s.commit())
}

// Close commits the last batch and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.record(s.commit())
	s.mu.Unlock()
	close(s.stop)
	s.done.Wait()
	return s.db.Close()
}

// exec runs one write in the open batch, starting one if needed, and
// commits the batch when it is full or old. Called with mu held.
func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	return s.execStmt(ctx, nil, q, args...)
}

// execStmt is exec with a prepared statement (st), when not nil, instead
// of q.
func (s *Store) execStmt(ctx context.Context, st *sql.Stmt, q string, args ...any) error {
	if s.closed {
		return errors.New("store is closed")
	}
	if s.tx == nil {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		s.tx, s.txRows, s.txStart = tx, 0, time.Now()
		clear(s.txStmts)
	}
	var err error
	if st != nil {
		// The batch's own handle on st, made once per batch: making
		// one per row cost as much as the row.
		ts := s.txStmts[st]
		if ts == nil {
			ts = s.tx.StmtContext(ctx, st)
			if s.txStmts == nil {
				s.txStmts = map[*sql.Stmt]*sql.Stmt{}
			}
			s.txStmts[st] = ts
		}
		_, err = ts.ExecContext(ctx, args...)
	} else {
		_, err = s.tx.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return err
	}
	s.txRows++
	if s.txRows >= batchRows || time.Since(s.txStart) >= batchAge {
		return s.commit()
	}
	return nil
}

// commit ends the open batch. A batch that cannot be committed is lost,
// and its rows counted. Called with mu held.
func (s *Store) commit() error {
	if s.tx == nil {
		return nil
	}
	tx, rows := s.tx, s.txRows
	s.tx, s.txRows = nil, 0
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		s.lost += uint64(max(rows-1, 0)) // record counts the last one
		return err
	}
	return nil
}

// ObserverName names the store in the router's observer statistics.
func (s *Store) ObserverName() string { return "store" }

// Wants says which events the store records: sessions, progress and
// finished calls.
func (s *Store) Wants(t calls.EventType) bool {
	switch t {
	case calls.EventSessionOpened, calls.EventSessionClosed, calls.EventCallProgress, calls.EventCallFinished:
		return true
	}
	return false
}

// Observe records one event.
func (s *Store) Observe(e calls.Event) {
	ctx := context.Background()
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	switch e.Type {
	case calls.EventSessionOpened:
		err = s.exec(ctx, `INSERT OR IGNORE INTO sessions(id, client, opened_at) VALUES(?, ?, ?)`,
			e.Session, e.Client, e.Time.UnixMicro())
	case calls.EventSessionClosed:
		err = s.exec(ctx, `UPDATE sessions SET closed_at = ? WHERE id = ?`, e.Time.UnixMicro(), e.Session)
	case calls.EventCallProgress:
		err = s.execStmt(ctx, s.insEvent, "", s.callID(e.ID), e.Time.UnixMicro(), e.Progress, e.Total, s.scr.String(e.Message))
	case calls.EventCallFinished:
		err = s.insertCall(ctx, &e)
	default:
		return
	}
	s.record(err)
}

const (
	insertCallSQL = `INSERT INTO calls(id, session, client, call, kind, call_group, started_at, dur_us, outcome, reason, args, args_bytes, args_sha256, result_bytes, run, model, trace_id)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertEventSQL = `INSERT INTO call_events(call_id, time, kind, progress, total, message) VALUES(?, ?, 'progress', ?, ?, ?)`
)

func (s *Store) callID(id uint64) string { return s.run + "-" + strconv.FormatUint(id, 10) }

func (s *Store) insertCall(ctx context.Context, e *calls.Event) error {
	var args []byte
	if len(e.Arguments) > 0 {
		args = ledger.Args(s.scr, e.Arguments, ledger.DefaultMaxValueBytes, ledger.DefaultMaxArgsBytes)
	}
	var run, model []byte
	if e.Info != nil && e.Info.Run != nil {
		run, _ = json.Marshal(ledger.RunOf(e.Info.Run))
	}
	if e.Info != nil && e.Info.Model != nil {
		model, _ = json.Marshal(ledger.ModelOf(e.Info.Model))
	}
	start := e.Time.Add(-e.Duration)
	return s.execStmt(ctx, s.insCall, "",
		s.callID(e.ID), e.Session, e.Client, e.Call, e.Kind.String(), e.Group, start.UnixMicro(), e.Duration.Microseconds(),
		e.Outcome.String(), s.scr.String(e.Reason), nullable(args), len(e.Arguments), e.ArgsDigest(), e.ResultBytes, nullable(run), nullable(model),
		calls.TraceID(e.TraceParent))
}

func nullable(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// record logs a failed write (loudly the first time, then every
// thousandth) and runs retention every thousand writes. Called with mu
// held.
func (s *Store) record(err error) {
	if err != nil {
		if s.tx != nil { // a failed row spoils its batch
			s.tx.Rollback()
			s.lost += uint64(s.txRows)
			s.tx, s.txRows = nil, 0
		}
		s.lost++
		if !s.failing || s.lost%1000 == 0 {
			s.log.Error("trace store: cannot write; calls go on but are not stored until this is fixed",
				"path", s.path, "err", err, "lost_events", s.lost)
		}
		s.failing = true
		return
	}
	if s.failing {
		s.failing = false
		s.log.Warn("trace store: writing again", "path", s.path, "lost_events", s.lost)
	}
	if s.writes++; s.writes%1000 == 0 {
		if err := s.commit(); err == nil {
			s.retain(context.Background())
		}
	}
}

// Lost returns how many events could not be written.
func (s *Store) Lost() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

// retain removes calls past MaxAge, then the oldest tenth of the calls while
// the file is past MaxBytes.
func (s *Store) retain(ctx context.Context) {
	if s.opts.MaxAge > 0 {
		cut := time.Now().Add(-s.opts.MaxAge).UnixMicro()
		if _, err := s.db.ExecContext(ctx, `DELETE FROM calls WHERE started_at < ?`, cut); err != nil {
			s.log.Warn("trace store: retention", "err", err)
		}
		_, _ = s.db.ExecContext(ctx, `DELETE FROM sessions WHERE opened_at < ? AND id NOT IN (SELECT session FROM calls)`, cut)
		_, _ = s.db.ExecContext(ctx, `DELETE FROM turns WHERE started_at < ?`, cut)
		_, _ = s.db.ExecContext(ctx, `DELETE FROM turn_steps WHERE turn_id NOT IN (SELECT id FROM turns)`)
	}
	if s.opts.MaxBytes <= 0 {
		return
	}
	for range 10 {
		var size int64
		if err := s.db.QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&size); err != nil || size <= s.opts.MaxBytes {
			return
		}
		res, err := s.db.ExecContext(ctx, `DELETE FROM calls WHERE rowid IN (SELECT rowid FROM calls ORDER BY started_at LIMIT max(1, (SELECT count(*) FROM calls) / 10))`)
		if err != nil {
			return
		}
		n, _ := res.RowsAffected()
		if res, err := s.db.ExecContext(ctx, `DELETE FROM turns WHERE rowid IN (SELECT rowid FROM turns ORDER BY started_at LIMIT max(1, (SELECT count(*) FROM turns) / 10))`); err == nil {
			m, _ := res.RowsAffected()
			n += m
			_, _ = s.db.ExecContext(ctx, `DELETE FROM turn_steps WHERE turn_id NOT IN (SELECT id FROM turns)`)
		}
		if n == 0 {
			return
		}
		_, _ = s.db.ExecContext(ctx, `VACUUM`)
	}
}
