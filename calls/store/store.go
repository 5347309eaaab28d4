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
	"strings"
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

	mu sync.Mutex // guards everything below
	// The open batch: the rows of calls and their events wait here, and
	// go in at once, with multi-row INSERTs, when the batch is written;
	// other statements (sessions, turns) run in tx as they come.
	calls, events rowBuf
	tx            *sql.Tx // the batch's transaction, once it has one
	txStmts       map[*sql.Stmt]*sql.Stmt
	rows          int              // events in the batch
	size          int              // and their bytes, roughly
	start         time.Time        // when the batch began
	runs          map[uint64]int64 // the number in runs of each prefix in use, by call number >> runBits
	writes        int
	failing       bool
	lost          uint64
	loggedLost    uint64 // lost when a failure was last logged
	closed        bool

	stop chan struct{}
	done sync.WaitGroup
}

// A batch is written once it holds batchRows events or batchBytes, or is
// batchAge old: one transaction per call would cost a commit each, and a
// row per statement a statement each.
const (
	batchRows  = 256
	batchBytes = 1 << 20
	batchAge   = 200 * time.Millisecond
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
	if err := s.openRun(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	// Text that is mostly empty goes as NULL, made '' by the statement:
	// binding NULL costs the driver a third of binding a text.
	s.calls = rowBuf{table: "calls(seq, id, session, client, call, kind, call_group, started_at, dur_us, outcome, reason, args, args_bytes, args_sha256, result_bytes, run, model, trace_id, token_name)",
		row: "(?, ?, coalesce(?, ''), coalesce(?, ''), ?, ?, coalesce(?, ''), ?, ?, ?, coalesce(?, ''), ?, ?, coalesce(?, ''), ?, ?, ?, coalesce(?, ''), coalesce(?, ''))", cols: 19}
	s.events = rowBuf{table: "call_events(call_id, time, kind, progress, total, message)", row: "(?, ?, 'progress', ?, ?, coalesce(?, ''))", cols: 5}
	s.retain(context.Background())
	s.stop = make(chan struct{})
	s.done.Go(s.flusher)
	return s, nil
}

// openRun gives this store a prefix for its call IDs that no other run in
// the database has, and registers it.
func (s *Store) openRun(ctx context.Context) error {
	var err error
	for range 10 { // 40 random bits: a second try is already rare
		s.run = rand.Text()[:8]
		var n int64
		err = s.db.QueryRowContext(ctx, `INSERT INTO runs(prefix, opened_at) VALUES(?, ?) RETURNING n`, s.run, time.Now().UnixMicro()).Scan(&n)
		if err == nil {
			if n >= 1<<(63-runBits) {
				return fmt.Errorf("the runs table is full (%d runs)", n)
			}
			s.runs = map[uint64]int64{0: n}
			return nil
		}
	}
	return fmt.Errorf("register this run: %w", err)
}

// flusher writes a batch that has waited long enough.
func (s *Store) flusher() {
	t := time.NewTicker(batchAge)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if s.rows > 0 && time.Since(s.start) >= batchAge {
				s.record(s.commit())
			}
			s.mu.Unlock()
		}
	}
}

// Flush writes what has been observed so far.
func (s *Store) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(s.commit())
}

// Close writes the last batch and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.record(s.commit())
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.done.Wait()
	for _, b := range []*rowBuf{&s.calls, &s.events} {
		for _, st := range b.stmts {
			if st != nil {
				st.Close()
			}
		}
	}
	return s.db.Close()
}

// begin opens the batch's transaction if it has none. Called with mu held.
func (s *Store) begin(ctx context.Context) error {
	if s.tx != nil {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	s.tx = tx
	clear(s.txStmts)
	return nil
}

// count counts one event (of about size bytes) into the batch: from then
// on it is lost if the batch is. Called with mu held.
func (s *Store) count(size int) {
	if s.rows == 0 {
		s.start = time.Now()
	}
	s.rows++
	s.size += size
}

// full writes the batch when it is full or old. Called with mu held.
func (s *Store) full() error {
	if s.rows >= batchRows || s.size >= batchBytes || time.Since(s.start) >= batchAge {
		return s.commit()
	}
	return nil
}

// exec runs one write in the batch's transaction. Called with mu held.
func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	if s.closed {
		return errors.New("store is closed")
	}
	s.count(0)
	if err := s.begin(ctx); err != nil {
		return err
	}
	if _, err := s.tx.ExecContext(ctx, q, args...); err != nil {
		return err
	}
	return s.full()
}

// commit writes the open batch: the rows waiting, then the commit. On an
// error the batch is left for record to drop and count. Called with mu
// held.
func (s *Store) commit() error {
	if s.rows == 0 && s.tx == nil {
		return nil
	}
	ctx := context.Background()
	if s.tx == nil {
		if err := s.calls.prepare(ctx, s.db); err != nil {
			return err
		}
		if err := s.events.prepare(ctx, s.db); err != nil {
			return err
		}
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	if s.calls.n() > 0 {
		// Again each time: a run that retention removed, while this
		// process made no call, comes back with its number.
		for k, n := range s.runs {
			if _, err := s.tx.ExecContext(ctx, `INSERT OR IGNORE INTO runs(n, prefix, opened_at) VALUES(?, ?, ?)`, n, s.prefix(k), time.Now().UnixMicro()); err != nil {
				return err
			}
		}
	}
	if err := s.calls.write(ctx, s); err != nil {
		return err
	}
	if err := s.events.write(ctx, s); err != nil {
		return err
	}
	tx := s.tx
	s.tx = nil
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		return err
	}
	s.rows, s.size = 0, 0
	return nil
}

// drop discards the open batch after a failed write, counting its events
// as lost. Called with mu held.
func (s *Store) drop() {
	if s.tx != nil {
		s.tx.Rollback()
		s.tx = nil
	}
	s.calls.reset()
	s.events.reset()
	s.lost += uint64(s.rows)
	s.rows, s.size = 0, 0
}

// txStmt is the batch transaction's handle on st, made once per batch:
// making one per statement cost as much as the statement.
func (s *Store) txStmt(ctx context.Context, st *sql.Stmt) *sql.Stmt {
	ts := s.txStmts[st]
	if ts == nil {
		ts = s.tx.StmtContext(ctx, st)
		if s.txStmts == nil {
			s.txStmts = map[*sql.Stmt]*sql.Stmt{}
		}
		s.txStmts[st] = ts
	}
	return ts
}

// 1<<maxChunkLog (64) is the most rows one INSERT writes: beyond that a
// row costs hardly less, and the statement's parameters grow.
const maxChunkLog = 6

// rowBuf holds the rows of one table waiting for the batch to be written,
// and the INSERTs that write them: one for each power of two up to
// 1<<maxChunkLog rows, prepared when first used, so that any number of rows goes
// in with a few statements.
type rowBuf struct {
	table string // "name(columns)"
	row   string // one row's values: "(?, ...)"
	cols  int    // the parameters of one row
	args  []any  // the rows' values, cols a row
	stmts [maxChunkLog + 1]*sql.Stmt
}

func (b *rowBuf) n() int { return len(b.args) / b.cols }

func (b *rowBuf) reset() {
	clear(b.args) // let the values go
	b.args = b.args[:0]
}

// insert is the statement that inserts k rows (a power of two).
func (b *rowBuf) insert(k int) string {
	return "INSERT INTO " + b.table + " VALUES" + b.row + strings.Repeat(", "+b.row, k-1)
}

// prepare prepares, on the database, the statements that writing the
// waiting rows needs. It runs before the batch's transaction takes a
// connection: a pool of one would wait for itself.
func (b *rowBuf) prepare(ctx context.Context, db *sql.DB) error {
	n := b.n()
	for i := range b.stmts {
		need := n%(1<<maxChunkLog)>>i&1 == 1 // the rest's bits
		if i == maxChunkLog {
			need = n >= 1<<maxChunkLog // the full chunks
		}
		if need && b.stmts[i] == nil {
			st, err := db.PrepareContext(ctx, b.insert(1<<i))
			if err != nil {
				return err
			}
			b.stmts[i] = st
		}
	}
	return nil
}

// write inserts the waiting rows in the batch's transaction: as many
// statements of 1<<maxChunkLog rows as fit, then one for each bit of the
// rest.
func (b *rowBuf) write(ctx context.Context, s *Store) error {
	defer b.reset()
	rows := b.args
	for i := len(b.stmts) - 1; i >= 0; i-- {
		k := 1 << i
		for len(rows) >= k*b.cols {
			var st *sql.Stmt
			if b.stmts[i] != nil {
				st = s.txStmt(ctx, b.stmts[i])
			} else {
				// The transaction was open before the rows came (for
				// a session's row, say): prepare on its connection.
				var err error
				if st, err = s.tx.PrepareContext(ctx, b.insert(k)); err != nil {
					return err
				}
			}
			if _, err := st.ExecContext(ctx, rows[:k*b.cols]...); err != nil {
				return err
			}
			rows = rows[k*b.cols:]
		}
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
	if s.closed {
		return
	}
	var err error
	switch e.Type {
	case calls.EventSessionOpened:
		err = s.exec(ctx, `INSERT OR IGNORE INTO sessions(id, client, opened_at) VALUES(?, ?, ?)`,
			e.Session, e.Client, e.Time.UnixMicro())
	case calls.EventCallProgress:
		msg := s.scr.String(e.Message)
		s.events.args = append(s.events.args, s.callID(e.ID), e.Time.UnixMicro(), e.Progress, e.Total, orNull(msg))
		s.count(len(msg))
		err = s.full()
	case calls.EventSessionClosed:
		err = s.exec(ctx, `UPDATE sessions SET closed_at = ? WHERE id = ?`, e.Time.UnixMicro(), e.Session)
	case calls.EventCallFinished:
		err = s.addCall(&e)
	default:
		return
	}
	s.record(err)
}

// callID is the ID of the call the router numbers id: the prefix of its
// run (a run holds 1<<runBits calls), "-", and its number in the run.
func (s *Store) callID(id uint64) string {
	return s.prefix(id>>runBits) + "-" + strconv.FormatUint(id&(1<<runBits-1), 10)
}

// prefix is the prefix of this store's k-th run: a process that makes
// more than 1<<runBits calls moves on to "<prefix>.1", "<prefix>.2", ...
// (no other run's prefix has a dot).
func (s *Store) prefix(k uint64) string {
	if k == 0 {
		return s.run
	}
	return s.run + "." + strconv.FormatUint(k, 10)
}

// seq is the key of the call the router numbers id.
func (s *Store) seq(ctx context.Context, id uint64) (int64, error) {
	k := id >> runBits
	n, ok := s.runs[k]
	if !ok {
		if err := s.db.QueryRowContext(ctx, `INSERT INTO runs(prefix, opened_at) VALUES(?, ?) ON CONFLICT(prefix) DO UPDATE SET opened_at = opened_at RETURNING n`,
			s.prefix(k), time.Now().UnixMicro()).Scan(&n); err != nil {
			return 0, err
		}
		if n >= 1<<(63-runBits) {
			return 0, fmt.Errorf("the runs table is full (%d runs)", n)
		}
		s.runs[k] = n
	}
	return n<<runBits | int64(id&(1<<runBits-1)), nil
}

// addCall adds a finished call's row to the batch.
func (s *Store) addCall(e *calls.Event) error {
	seq, err := s.seq(context.Background(), e.ID)
	if err != nil {
		s.count(0)
		return err
	}
	// Scrubbed, cut and hashed once for the store and the audit ledger.
	rec := ledger.Record(e, s.scr)
	var run, model []byte
	if e.Info != nil && e.Info.Run != nil {
		run, _ = json.Marshal(ledger.RunOf(e.Info.Run))
	}
	if e.Info != nil && e.Info.Model != nil {
		model, _ = json.Marshal(ledger.ModelOf(e.Info.Model))
	}
	// int64, not int: database/sql converts any other integer type by
	// reflection.
	s.calls.args = append(s.calls.args,
		seq, s.callID(e.ID), orNull(e.Session), orNull(e.Client), e.Call, e.Kind.String(), orNull(e.Group), e.Time.Add(-e.Duration).UnixMicro(), e.Duration.Microseconds(),
		e.Outcome.String(), orNull(rec.Reason), nullable(rec.Args), int64(len(e.Arguments)), orNull(rec.ArgsSHA256), int64(e.ResultBytes), nullable(run), nullable(model),
		orNull(e.Trace()), orNull(e.TokenName))
	s.count(len(rec.Args) + len(rec.Reason) + len(run) + len(model) + 128)
	return s.full()
}

// orNull is nil for "", for the columns the INSERT makes ” of NULL.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullable(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// record drops the batch after a failed write and logs it (loudly the
// first time, then once per thousand events lost), and runs retention
// every thousand writes. Called with mu held.
func (s *Store) record(err error) {
	if err != nil {
		s.drop()
		if !s.failing || s.lost-s.loggedLost >= 1000 {
			s.log.Error("trace store: cannot write; calls go on but are not stored until this is fixed",
				"path", s.path, "err", err, "lost_events", s.lost)
			s.loggedLost = s.lost
		}
		s.failing = true
		return
	}
	if s.failing {
		s.failing = false
		s.log.Warn("trace store: writing again", "path", s.path, "lost_events", s.lost)
	}
	if s.writes++; s.writes%1000 == 0 {
		if err := s.commit(); err != nil {
			s.record(err)
			return
		}
		s.retain(context.Background())
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
		_, _ = s.db.ExecContext(ctx, `DELETE FROM call_events WHERE time < ?`, cut)
		_, _ = s.db.ExecContext(ctx, `DELETE FROM sessions WHERE opened_at < ? AND id NOT IN (SELECT session FROM calls)`, cut)
		_, _ = s.db.ExecContext(ctx, `DELETE FROM turns WHERE started_at < ?`, cut)
		_, _ = s.db.ExecContext(ctx, `DELETE FROM turn_steps WHERE turn_id NOT IN (SELECT id FROM turns)`)
		// A run's number is never given again (AUTOINCREMENT); a live
		// store whose run is removed puts it back with its next calls.
		_, _ = s.db.ExecContext(ctx, `DELETE FROM runs WHERE opened_at < ? AND NOT EXISTS (SELECT 1 FROM calls WHERE seq >= runs.n * ? AND seq < (runs.n + 1) * ?)`,
			cut, int64(1)<<runBits, int64(1)<<runBits)
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
		_, _ = s.db.ExecContext(ctx, `DELETE FROM call_events WHERE time < (SELECT min(started_at) FROM calls)`)
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
