package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"reflect"
	"time"

	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/ollama"
)

// toolSetter is the part of ollama.Models the watcher needs.
type toolSetter interface {
	SetTools(specs []ollama.ToolSpec) error
}

// watcher reloads the config file's ollama tools when the file changes.
// A reload is whole or nothing:
//   - the new contents go through exactly the start-up path (load: the same
//     flags, environment and checks); a file that fails any check changes
//     nothing, and is logged once;
//   - contents are used only once two reads, one tick apart, agree: a
//     writer still writing (an editor that truncates, then writes in
//     pieces) is waited for;
//   - an empty file never replaces the one in use.
type watcher struct {
	path  string
	load  func(data []byte) (*Config, error)
	tools toolSetter
	log   *slog.Logger

	inUse   []byte            // the contents the tools came from
	specs   []ollama.ToolSpec // the tools in use
	pending []byte            // what the last check read, when not inUse
	waiting bool              // pending holds a read to confirm
	refused []byte            // the last contents refused, so as to log them once
}

func newWatcher(cfg *Config, load func([]byte) (*Config, error), m toolSetter, log *slog.Logger) *watcher {
	return &watcher{path: cfg.File, load: load, tools: m, log: log, inUse: cfg.FileData, specs: cfg.Ollama.Tools}
}

// run checks the file at each tick until ctx is done.
func (w *watcher) run(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			w.check()
		}
	}
}

// check reads the file once and acts on what it finds.
func (w *watcher) check() {
	data, err := readBounded(w.path)
	if err != nil {
		// Gone or unreadable for now (an editor replacing it, say): the
		// tools in use stay, and the next read decides.
		w.waiting = false
		return
	}
	if bytes.Equal(data, w.inUse) {
		w.waiting = false
		return
	}
	if !w.waiting || !bytes.Equal(data, w.pending) {
		w.pending, w.waiting = data, true // perhaps still being written
		return
	}
	w.waiting = false
	if w.refused != nil && bytes.Equal(data, w.refused) {
		return
	}
	if len(bytes.TrimSpace(data)) == 0 {
		w.refused = data
		w.log.Error("config file is now empty; keeping the settings in use", "file", w.path)
		return
	}
	cfg, err := w.load(data)
	if err != nil {
		w.refused = data
		w.log.Error("config file changed but cannot be used; keeping the settings in use", "file", w.path, "err", err)
		return
	}
	if reflect.DeepEqual(cfg.Ollama.Tools, w.specs) {
		w.inUse = data
		w.log.Info("config file changed; only ollama.tools are reloaded, restart membrane for other settings", "file", w.path)
		return
	}
	if err := w.tools.SetTools(cfg.Ollama.Tools); err != nil {
		w.refused = data
		w.log.Error("config file changed but its tools cannot be used; keeping the tools in use", "file", w.path, "err", err)
		return
	}
	w.inUse, w.specs = data, cfg.Ollama.Tools
	w.log.Info("config file reloaded", "file", w.path, "tools", len(w.specs))
}

// readBounded reads path, at most one byte more than a config file may
// hold (Load refuses that).
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, settings.MaxFileBytes+1))
}
