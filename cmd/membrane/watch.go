package main

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"time"

	"github.com/membrane-mcp/membrane/ollama"
)

// toolSetter is the part of ollama.Models the watcher needs.
type toolSetter interface {
	SetTools(specs []ollama.ToolSpec)
}

// watchConfig polls path every interval and, when its modification time or
// size changes, reads it again and hands the ollama tools to m. A change is
// read only once the file has held still for one interval: an editor that
// truncates and then writes would otherwise be caught half way, and an
// empty file would drop every logical tool until the next poll. A file that
// no longer reads or checks is logged and ignored: the tools in use stay.
// It returns when ctx is done.
func watchConfig(ctx context.Context, path string, current []ollama.ToolSpec, m toolSetter, log *slog.Logger, interval time.Duration) {
	stamp := func() (time.Time, int64, bool) {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}, 0, false
		}
		return fi.ModTime(), fi.Size(), true
	}
	// The first look always reads the file: it may have changed between
	// the start-up read and now.
	var (
		lastMod  time.Time
		lastSize int64 = -1
		first          = true
		// The stamp seen at the previous tick, when it differed from the
		// last one read: the file is read when a tick sees it again.
		pendMod  time.Time
		pendSize int64 = -1
	)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mod, size, ok := stamp()
		if !ok || (mod.Equal(lastMod) && size == lastSize) {
			continue
		}
		if !first && (!mod.Equal(pendMod) || size != pendSize) {
			pendMod, pendSize = mod, size // still changing, perhaps
			continue
		}
		lastMod, lastSize = mod, size
		cfg := defaults()
		if err := readConfigFile(path, &cfg); err != nil {
			log.Error("config file changed but cannot be used; keeping the tools in use", "file", path, "err", err)
			continue
		}
		if err := checkToolSpecs(cfg.Ollama.Tools); err != nil {
			log.Error("config file changed but its ollama.tools are wrong; keeping the tools in use", "file", path, "err", err)
			continue
		}
		if reflect.DeepEqual(cfg.Ollama.Tools, current) {
			if first {
				first = false
				continue
			}
			log.Info("config file changed; only ollama.tools are reloaded, restart membrane for other settings", "file", path)
			continue
		}
		first = false
		current = cfg.Ollama.Tools
		m.SetTools(current)
		log.Info("config file reloaded", "file", path, "tools", len(current))
	}
}
