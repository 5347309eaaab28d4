// Package ledger is the audit ledger: a calls.Observer that appends one JSON
// line per finished call to a file, so that an operator can answer "what
// ran, when, for whom, and what happened".
//
// Each line holds the time the call started, the session and client, the
// call and its kind, the arguments (scrubbed of secrets, long strings cut to
// their head with their size and SHA-256), the outcome, the reason and the
// duration, and, where the call's handler reported them, the sandbox's exit
// code, signal, isolation and output sizes or the model, host and tokens.
//
// The file is only appended to. The lines of one batch of the router's
// events (the calls of a few milliseconds) are written with one write,
// at the end of the batch: nothing waits longer in memory, so a crash
// loses at most the lines of the last few milliseconds (there is no
// fsync). When it passes Options.MaxFileBytes it is renamed to FILE.1
// (FILE.1 to FILE.2, and so on, keeping Options.Keep files) and a new FILE
// is started. A file that cannot be written (a full disk, a deleted or
// read-only file) is logged loudly and tried again at the next line; the
// calls themselves never notice.
package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/scrub"
)

// Defaults used where Options leaves a field zero.
const (
	DefaultMaxValueBytes = 1024
	DefaultMaxArgsBytes  = 64 << 10
	DefaultMaxFileBytes  = 64 << 20
	DefaultKeep          = 3
)

// Options configures a Ledger. The zero value is usable.
type Options struct {
	// Scrubber hides secrets in the arguments and reasons. Nil means
	// scrub.New(nil): the credential shapes, no exact values.
	Scrubber *scrub.Scrubber
	// MaxValueBytes is the longest string argument recorded whole; a
	// longer one is cut to its head, with its size and SHA-256. Zero means
	// DefaultMaxValueBytes.
	MaxValueBytes int
	// MaxArgsBytes bounds the recorded arguments as a whole; larger ones
	// are replaced by their size and SHA-256. Zero means
	// DefaultMaxArgsBytes.
	MaxArgsBytes int
	// MaxFileBytes is the size past which the file is rotated. Zero means
	// DefaultMaxFileBytes; negative means never.
	MaxFileBytes int64
	// Keep is how many rotated files (FILE.1 ... FILE.Keep) are kept. Zero
	// means DefaultKeep.
	Keep int
	// Logger receives the ledger's own trouble (a file it cannot write).
	// Nil discards.
	Logger *slog.Logger
}

// Ledger writes the audit lines. Create one with Open or New; it is safe
// for concurrent use, though the router calls it from one goroutine.
type Ledger struct {
	opts Options
	scr  *scrub.Scrubber
	key  any // the Event.Memo key of the recorded arguments and reason
	log  *slog.Logger
	path string // "" when writing to a plain io.Writer

	mu        sync.Mutex
	w         io.Writer
	f         *os.File
	size      int64
	failing   bool
	lost      uint64
	lastCheck time.Time
	closed    bool

	pending      []byte // lines observed, not yet written (EndBatch)
	pendingLines int
}

var _ calls.BatchObserver = (*Ledger)(nil)

// Open returns a Ledger appending to the file at path, creating it (mode
// 0600) if needed.
func Open(path string, opts *Options) (*Ledger, error) {
	l := newLedger(opts)
	l.path = path
	if err := l.open(); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return l, nil
}

// New returns a Ledger writing to w (standard error, say), which it never
// rotates or closes.
func New(w io.Writer, opts *Options) *Ledger {
	l := newLedger(opts)
	l.w = w
	return l
}

func newLedger(opts *Options) *Ledger {
	l := &Ledger{}
	if opts != nil {
		l.opts = *opts
	}
	if l.opts.MaxValueBytes <= 0 {
		l.opts.MaxValueBytes = DefaultMaxValueBytes
	}
	if l.opts.MaxArgsBytes <= 0 {
		l.opts.MaxArgsBytes = DefaultMaxArgsBytes
	}
	if l.opts.MaxFileBytes == 0 {
		l.opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.opts.Keep <= 0 {
		l.opts.Keep = DefaultKeep
	}
	l.scr = l.opts.Scrubber
	if l.scr == nil {
		l.scr = scrub.New(nil)
	}
	l.key = recordKey{l.scr}
	if l.opts.MaxValueBytes != DefaultMaxValueBytes || l.opts.MaxArgsBytes != DefaultMaxArgsBytes {
		l.key = &limitsKey{l.scr, l.opts.MaxValueBytes, l.opts.MaxArgsBytes}
	}
	l.log = l.opts.Logger
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l
}

// ObserverName names the ledger in the router's observer statistics.
func (l *Ledger) ObserverName() string { return "ledger" }

// Wants says the ledger records finished calls only.
func (l *Ledger) Wants(t calls.EventType) bool { return t == calls.EventCallFinished }

// open (re)opens the file. Called with mu held, or before l is shared.
func (l *Ledger) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.w, l.size = f, f, fi.Size()
	l.lastCheck = time.Now()
	return nil
}

// Entry is one line of the ledger.
type Entry struct {
	Time        time.Time       `json:"time"`
	ID          uint64          `json:"id"`
	Session     string          `json:"session"`
	Client      string          `json:"client,omitempty"`
	TokenName   string          `json:"token_name,omitempty"`
	Call        string          `json:"call"`
	Kind        string          `json:"kind"`
	Group       string          `json:"group,omitempty"`
	Args        json.RawMessage `json:"args,omitempty"`
	ArgsBytes   int             `json:"args_bytes"`
	ArgsSHA256  string          `json:"args_sha256,omitempty"`
	Outcome     string          `json:"outcome"`
	Reason      string          `json:"reason,omitempty"`
	DurMS       float64         `json:"dur_ms"`
	ResultBytes int             `json:"result_bytes"`
	TraceID     string          `json:"trace_id,omitempty"`
	Run         *Run            `json:"run,omitempty"`
	Model       *Model          `json:"model,omitempty"`
}

// Run is what the ledger (and the store, in the same form) records of a
// sandboxed process.
type Run struct {
	ExitCode    int      `json:"exit_code"`
	Signal      string   `json:"signal,omitempty"`
	Isolation   string   `json:"isolation,omitempty"`
	StdoutBytes int64    `json:"stdout_bytes"`
	StderrBytes int64    `json:"stderr_bytes"`
	Killed      string   `json:"killed,omitempty"`
	Limits      []string `json:"limits,omitempty"`
	StartMS     float64  `json:"start_ms,omitempty"`
	WallMS      float64  `json:"wall_ms,omitempty"`
}

// RunOf is the record of r; nil for nil.
func RunOf(r *calls.RunInfo) *Run {
	if r == nil {
		return nil
	}
	run := runOf(r)
	return &run
}

func runOf(r *calls.RunInfo) Run {
	return Run{ExitCode: r.ExitCode, Signal: r.Signal, Isolation: r.Isolation,
		StdoutBytes: r.StdoutBytes, StderrBytes: r.StderrBytes, Killed: r.Killed, Limits: r.Limits,
		StartMS: ms(r.Start), WallMS: ms(r.Wall)}
}

// Model is what the ledger (and the store, in the same form) records of a
// model call.
type Model struct {
	Model        string  `json:"model"`
	Host         string  `json:"host,omitempty"`
	TokensIn     int     `json:"tokens_in"`
	TokensOut    int     `json:"tokens_out"`
	FirstTokenMS float64 `json:"first_token_ms,omitempty"`
	GenerationMS float64 `json:"generation_ms,omitempty"`
	QueueWaitMS  float64 `json:"queue_wait_ms,omitempty"`
}

// ModelOf is the record of m; nil for nil.
func ModelOf(m *calls.ModelInfo) *Model {
	if m == nil {
		return nil
	}
	model := modelOf(m)
	return &model
}

func modelOf(m *calls.ModelInfo) Model {
	return Model{Model: m.Model, Host: m.Host, TokensIn: m.TokensIn, TokensOut: m.TokensOut,
		FirstTokenMS: ms(m.FirstToken), GenerationMS: ms(m.Generation), QueueWaitMS: ms(m.QueueWait)}
}

// Observe records a finished call; other events are ignored.
func (l *Ledger) Observe(e calls.Event) {
	if e.Type != calls.EventCallFinished {
		return
	}
	var (
		run   Run
		model Model
	)
	en := l.entry(&e, &run, &model)
	l.mu.Lock()
	defer l.mu.Unlock()
	var ok bool
	if l.pending, ok = appendLine(l.pending, &en); !ok {
		// What the encoder leaves to encoding/json, which says why.
		line, err := json.Marshal(l.Entry(&e))
		if err != nil {
			l.log.Error("audit ledger: cannot encode a line", "call", e.Call, "err", err)
			return
		}
		l.pending = append(append(l.pending, line...), '\n')
	}
	l.pendingLines++
	if len(l.pending) >= maxPending {
		l.flushPending()
	}
}

// maxPending bounds the lines held between two writes.
const maxPending = 256 << 10

// EndBatch writes the lines of the calls observed since the last one, with
// one write. The router calls it after each batch of events (within a few
// milliseconds of the calls); a caller that calls Observe itself calls
// EndBatch after it.
func (l *Ledger) EndBatch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushPending()
}

// flushPending writes the held lines. Called with mu held.
func (l *Ledger) flushPending() {
	if l.pendingLines == 0 {
		return
	}
	l.write(l.pending, l.pendingLines)
	l.pending, l.pendingLines = l.pending[:0], 0
	if cap(l.pending) > maxPending {
		l.pending = nil
	}
}

// Entry returns the line the ledger writes for a finished call.
func (l *Ledger) Entry(e *calls.Event) *Entry {
	en := l.entry(e, new(Run), new(Model))
	return &en
}

// entry is the line of e, with its run or model record in run or model
// (so that a caller can keep all three on its stack).
func (l *Ledger) entry(e *calls.Event, run *Run, model *Model) Entry {
	rec := record(e, l.key, l.scr, l.opts.MaxValueBytes, l.opts.MaxArgsBytes)
	en := Entry{
		Time: e.Time.Add(-e.Duration).UTC(), ID: e.ID,
		Session: e.Session, Client: e.Client, TokenName: e.TokenName,
		Call: e.Call, Kind: e.Kind.String(), Group: e.Group,
		Args: rec.Args, ArgsBytes: len(e.Arguments), ArgsSHA256: rec.ArgsSHA256,
		Outcome: e.Outcome.String(), Reason: rec.Reason,
		DurMS: ms(e.Duration), ResultBytes: e.ResultBytes, TraceID: e.Trace(),
	}
	if e.Info != nil && e.Info.Run != nil {
		*run = runOf(e.Info.Run)
		en.Run = run
	}
	if e.Info != nil && e.Info.Model != nil {
		*model = modelOf(e.Info.Model)
		en.Model = model
	}
	return en
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Cut describes a value too long to record whole.
type Cut struct {
	Head   string `json:"head"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Args returns raw (a call's JSON arguments) as they may be recorded:
// scrubbed by s, with every string longer than maxValue replaced by a Cut
// holding its head, and the whole replaced by a Cut when it is still longer
// than maxTotal. Size and SHA-256 are those of the scrubbed value.
func Args(s *scrub.Scrubber, raw json.RawMessage, maxValue, maxTotal int) json.RawMessage {
	if plain(s, raw, maxValue) {
		return raw // the common case, without decoding: nothing to hide or cut
	}
	doc := s.JSON(raw)
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return doc // s.JSON always gives valid JSON; keep it whole
	}
	out, err := json.Marshal(cutLong(v, maxValue))
	if err != nil || len(out) > maxTotal {
		b, _ := json.Marshal(map[string]Cut{"cut": cutOf(string(out), 256)})
		return b
	}
	return out
}

// plain reports whether raw can be recorded as it is: short, valid, with no
// escapes (which could spell a secret the text search would miss), no key
// that might name a secret, and no secret in its text.
func plain(s *scrub.Scrubber, raw []byte, maxValue int) bool {
	if len(raw) > maxValue || bytes.IndexByte(raw, '\\') >= 0 || scrub.HasKeyWord(raw) || !json.Valid(raw) {
		return false
	}
	return s.Clean(raw)
}

func cutLong(v any, max int) any {
	switch x := v.(type) {
	case string:
		if len(x) > max {
			return cutOf(x, max/4)
		}
	case []any:
		for i := range x {
			x[i] = cutLong(x[i], max)
		}
	case map[string]any:
		for k := range x {
			x[k] = cutLong(x[k], max)
		}
	}
	return v
}

func cutOf(s string, head int) Cut {
	sum := sha256.Sum256([]byte(s))
	h := s
	if len(h) > head {
		h = h[:head]
		for len(h) > 0 && !utf8.ValidString(h) {
			h = h[:len(h)-1]
		}
	}
	return Cut{Head: h, Bytes: len(s), SHA256: hex.EncodeToString(sum[:])}
}

// write appends whole lines (n of them), rotating or reopening the file
// as needed. It never fails: trouble is logged and the lines counted as
// lost. Called with mu held.
func (l *Ledger) write(line []byte, lines int) {
	if l.closed {
		return
	}
	if l.path != "" {
		l.check()
		if l.f == nil {
			if err := l.open(); err != nil {
				l.fail(err, lines)
				return
			}
		}
		if l.opts.MaxFileBytes > 0 && l.size > 0 && l.size+int64(len(line)) > l.opts.MaxFileBytes {
			l.rotate()
		}
	}
	if l.w == nil {
		l.fail(errors.New("no file open"), lines)
		return
	}
	n, err := l.w.Write(line)
	l.size += int64(n)
	if err != nil {
		l.fail(err, lines-bytes.Count(line[:n], []byte{'\n'}))
		if l.f != nil {
			l.f.Close()
			l.f, l.w = nil, nil // reopened at the next line
		}
		return
	}
	if l.failing {
		l.failing = false
		l.log.Warn("audit ledger: writing again", "path", l.path, "lost_lines", l.lost)
	}
}

// check reopens the file if it was deleted or moved away, at most once a
// second.
func (l *Ledger) check() {
	if l.f == nil || time.Since(l.lastCheck) < time.Second {
		return
	}
	l.lastCheck = time.Now()
	cur, err1 := l.f.Stat()
	onDisk, err2 := os.Stat(l.path)
	if err1 == nil && err2 == nil && os.SameFile(cur, onDisk) {
		return
	}
	if err1 == nil && !cur.Mode().IsRegular() && err2 == nil {
		return // a device or pipe
	}
	l.log.Error("audit ledger: the file was deleted or replaced; starting a new one", "path", l.path)
	if err := l.open(); err != nil {
		l.fail(err, 0)
		l.f.Close()
		l.f, l.w = nil, nil
	}
}

// rotate renames FILE to FILE.1, after shifting the older ones up, and
// opens a new FILE. Only regular files rotate.
func (l *Ledger) rotate() {
	if fi, err := l.f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return
	}
	l.f.Close()
	l.f, l.w = nil, nil
	for i := l.opts.Keep - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		l.log.Error("audit ledger: cannot rotate; going on in the same file", "path", l.path, "err", err)
	}
	if err := l.open(); err != nil {
		l.fail(err, 0)
	}
}

// fail counts lost lines and says so: at once the first time, then about
// every thousandth line.
func (l *Ledger) fail(err error, lines int) {
	before := l.lost
	l.lost += uint64(lines)
	if !l.failing || l.lost/1000 != before/1000 {
		l.log.Error("audit ledger: cannot write; calls go on but are not recorded until this is fixed",
			"path", l.path, "err", err, "lost_lines", l.lost)
	}
	l.failing = true
}

// Lost returns how many lines could not be written.
func (l *Ledger) Lost() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Close closes the file. Later lines are dropped. Remove the ledger from
// the router first (Router.Close or the Observe stop function), so that
// the lines queued for it are written.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushPending()
	l.closed = true
	if l.f != nil {
		err := l.f.Close()
		l.f, l.w = nil, nil
		return err
	}
	return nil
}
