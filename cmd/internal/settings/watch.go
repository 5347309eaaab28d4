package settings

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"time"
)

// FileWatcher reloads a config file when it changes, by the rules both
// programs keep. A reload is whole or nothing:
//   - the new contents go to Use, which must check them exactly as start-up
//     does and apply them only if they pass; contents it refuses change
//     nothing, and are logged once;
//   - contents are used only once two reads, one tick apart, agree: a
//     writer still writing (an editor that truncates, then writes in
//     pieces) is waited for;
//   - an empty file, or one that cannot be read for now (an editor
//     replacing it), never replaces the one in use.
type FileWatcher struct {
	// Path is the file; What names it in logs ("config file"), and Kept
	// what stays when a change is refused ("settings").
	Path, What, Kept string
	// Use checks and applies new contents; an error refuses them.
	Use func(data []byte) error
	// Log receives the refusals. Nil discards.
	Log *slog.Logger

	inUse   []byte // the contents in use
	pending []byte // what the last check read, when not inUse
	waiting bool   // pending holds a read to confirm
	refused []byte // the last contents refused, so as to log them once
}

// NewFileWatcher returns a watcher of path whose contents in use are data.
func NewFileWatcher(path string, data []byte, use func([]byte) error, log *slog.Logger) *FileWatcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FileWatcher{Path: path, What: "config file", Kept: "settings", Use: use, Log: log, inUse: data}
}

// Run checks the file at each tick until ctx is done.
func (w *FileWatcher) Run(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			w.Check()
		}
	}
}

// Check reads the file once and acts on what it finds. It reports whether
// Use took new contents.
func (w *FileWatcher) Check() bool {
	data, err := ReadBounded(w.Path)
	if err != nil {
		w.waiting = false
		return false
	}
	if bytes.Equal(data, w.inUse) {
		w.waiting = false
		return false
	}
	if !w.waiting || !bytes.Equal(data, w.pending) {
		w.pending, w.waiting = data, true // perhaps still being written
		return false
	}
	w.waiting = false
	if w.refused != nil && bytes.Equal(data, w.refused) {
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		w.refused = data
		w.Log.Error(w.What+" is now empty; keeping the "+w.Kept+" in use", "file", w.Path)
		return false
	}
	if err := w.Use(data); err != nil {
		w.refused = data
		w.Log.Error(w.What+" changed but cannot be used; keeping the "+w.Kept+" in use", "file", w.Path, "err", err)
		return false
	}
	w.inUse = data
	return true
}

// ReadBounded reads path, at most one byte more than a config file may
// hold (Load refuses that).
func ReadBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}
