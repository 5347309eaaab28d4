package agents

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Catalog is the set of agents in use, safe for concurrent use. Readers get
// copies; Replace swaps the whole set at once, so a reader sees the old set
// or the new one, never a mix.
type Catalog struct {
	mu     sync.RWMutex
	specs  []Spec
	byName map[string]int
	subs   []func([]Spec)
}

// NewCatalog returns a catalog of specs, which must have passed Validate.
func NewCatalog(specs []Spec) *Catalog {
	c := &Catalog{}
	c.set(specs)
	return c
}

func (c *Catalog) set(specs []Spec) {
	c.specs = slices.Clone(specs)
	c.byName = make(map[string]int, len(specs))
	for i, s := range c.specs {
		c.byName[strings.ToLower(s.Name)] = i
	}
}

// Get returns the agent named name, ignoring case.
func (c *Catalog) Get(name string) (Spec, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.byName[strings.ToLower(name)]
	if !ok {
		return Spec{}, false
	}
	return c.specs[i], true
}

// List returns the agents, in the file's order.
func (c *Catalog) List() []Spec {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.specs)
}

// Names returns the agents' names, in the file's order.
func (c *Catalog) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, len(c.specs))
	for i, s := range c.specs {
		out[i] = s.Name
	}
	return out
}

// Replace makes specs the agents in use (they must have passed Validate)
// and tells the subscribers.
func (c *Catalog) Replace(specs []Spec) {
	c.mu.Lock()
	c.set(specs)
	subs := slices.Clone(c.subs)
	c.mu.Unlock()
	for _, f := range subs {
		f(slices.Clone(specs))
	}
}

// Subscribe calls f with the new agents after each Replace, from the
// goroutine that called Replace.
func (c *Catalog) Subscribe(f func([]Spec)) {
	c.mu.Lock()
	c.subs = append(c.subs, f)
	c.mu.Unlock()
}

// WatcherOptions configures a Watcher. Only Path is needed.
type WatcherOptions struct {
	// Path is the file to watch.
	Path string
	// Load turns the file's contents into agents; it must check them as
	// start-up does. Nil means Parse.
	Load func(data []byte) ([]Spec, error)
	// Logger receives what the watcher did. Nil discards.
	Logger *slog.Logger
}

// Watcher reloads a file of agents into a Catalog when it changes, by the
// rules of membrane's config reload. A reload is whole or nothing:
//   - the new contents go through Load, as at start-up; contents that fail
//     change nothing, and are logged once;
//   - contents are used only once two reads, one tick apart, agree, so a
//     writer still writing is waited for;
//   - an empty file, or one that cannot be read for now, never replaces the
//     agents in use.
type Watcher struct {
	opts    WatcherOptions
	cat     *Catalog
	log     *slog.Logger
	inUse   []byte
	pending []byte
	waiting bool
	refused []byte
}

// NewWatcher returns a watcher of opts.Path that updates cat; data is the
// contents cat's agents came from.
func NewWatcher(cat *Catalog, data []byte, opts WatcherOptions) *Watcher {
	w := &Watcher{opts: opts, cat: cat, inUse: data, log: opts.Logger}
	if w.opts.Load == nil {
		w.opts.Load = Parse
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w
}

// Run checks the file at each tick until ctx is done.
func (w *Watcher) Run(ctx context.Context, tick <-chan time.Time) {
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
// the catalog was replaced.
func (w *Watcher) Check() bool {
	data, err := readBounded(w.opts.Path)
	if err != nil {
		w.waiting = false
		return false
	}
	if bytes.Equal(data, w.inUse) {
		w.waiting = false
		return false
	}
	if !w.waiting || !bytes.Equal(data, w.pending) {
		w.pending, w.waiting = data, true
		return false
	}
	w.waiting = false
	if w.refused != nil && bytes.Equal(data, w.refused) {
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		w.refused = data
		w.log.Error("agents file is now empty; keeping the agents in use", "file", w.opts.Path)
		return false
	}
	specs, err := w.opts.Load(data)
	if err != nil {
		w.refused = data
		w.log.Error("agents file changed but cannot be used; keeping the agents in use", "file", w.opts.Path, "err", err)
		return false
	}
	w.inUse = data
	if reflect.DeepEqual(specs, w.cat.List()) {
		return false
	}
	w.cat.Replace(specs)
	w.log.Info("agents reloaded", "file", w.opts.Path, "agents", len(specs))
	return true
}

// readBounded reads path, at most one byte more than a file of agents may
// hold (Parse refuses that).
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}
