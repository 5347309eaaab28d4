package main

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"time"

	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/ollama"
)

// toolSetter is the part of ollama.Models the watcher needs.
type toolSetter interface {
	SetTools(specs []ollama.ToolSpec) error
}

// watcher reloads the config file's ollama tools when the file changes, by
// the rules of settings.FileWatcher: the new contents go through exactly
// the start-up path (load: the same flags, environment and checks), and a
// file that fails any check changes nothing.
type watcher struct {
	fw    *settings.FileWatcher
	load  func(data []byte) (*Config, error)
	tools toolSetter
	log   *slog.Logger
	specs []ollama.ToolSpec // the tools in use
}

func newWatcher(cfg *Config, load func([]byte) (*Config, error), m toolSetter, log *slog.Logger) *watcher {
	w := &watcher{load: load, tools: m, log: log, specs: cfg.Ollama.Tools}
	w.fw = settings.NewFileWatcher(cfg.File, cfg.FileData, w.use, log)
	return w
}

// run checks the file at each tick until ctx is done.
func (w *watcher) run(ctx context.Context, tick <-chan time.Time) { w.fw.Run(ctx, tick) }

// check reads the file once and acts on what it finds.
func (w *watcher) check() { w.fw.Check() }

// use applies the ollama tools of a changed file, or refuses it.
func (w *watcher) use(data []byte) error {
	cfg, err := w.load(data)
	if err != nil {
		return err
	}
	if reflect.DeepEqual(cfg.Ollama.Tools, w.specs) {
		w.log.Info("config file changed; only ollama.tools are reloaded, restart membrane for other settings", "file", w.fw.Path)
		return nil
	}
	if err := w.tools.SetTools(cfg.Ollama.Tools); err != nil {
		return errors.Join(errors.New("its tools cannot be used"), err)
	}
	w.specs = cfg.Ollama.Tools
	w.log.Info("config file reloaded", "file", w.fw.Path, "tools", len(w.specs))
	return nil
}
