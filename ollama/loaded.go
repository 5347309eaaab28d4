package ollama

import (
	"context"
	"maps"
	"slices"
	"time"
)

// defaultKeepAlive is how long Ollama keeps a model loaded after a call
// unless told otherwise: what membrane assumes until the next /api/ps says.
const defaultKeepAlive = 5 * time.Minute

// loadedModel is what /api/ps says of one model a host has in memory.
type loadedModel struct {
	Name     string    // as /api/ps lists it
	Expires  time.Time // zero: no expiry given
	SizeVRAM int64
	// ContextLength is the window the model was loaded with (v0.10 and
	// later report it; 0 before).
	ContextLength int
	// Asked is the num_ctx the last call membrane ran there sent (0: none,
	// Ollama's default), when AskedKnown. Ollama loads the model again
	// for a call whose num_ctx differs from the one it was loaded for,
	// even when the window it reports is the same (v0.17.4 caps a
	// default 4096 at a model's 2048 and reports 2048), so a call that
	// fits sends this again.
	Asked      int
	AskedKnown bool
}

// readLoaded reads the host's /api/ps and records which models it has
// loaded. A backend, or a host whose /api/ps fails, keeps what it had.
func (h *host) readLoaded(ctx context.Context) error {
	if h.oa != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	resp, err := h.client.ListRunning(ctx)
	if err != nil {
		return err
	}
	// A copy: a model call marks its model in h.loaded (markLoaded) while
	// this reads it.
	h.mu.Lock()
	old := maps.Clone(h.loaded)
	h.mu.Unlock()
	loaded := make(map[string]loadedModel, len(resp.Models))
	for _, p := range resp.Models {
		name := p.Name
		if name == "" {
			name = p.Model
		}
		if !validModelName(name) {
			continue
		}
		key := modelKey(name)
		ctxLen := p.ContextLength
		if ctxLen == 0 {
			// Before v0.10 /api/ps does not say; keep the num_ctx
			// membrane loaded it with, if it did.
			ctxLen = old[key].ContextLength
		}
		loaded[key] = loadedModel{Name: name, Expires: p.ExpiresAt, SizeVRAM: p.SizeVRAM, ContextLength: ctxLen, Asked: old[key].Asked, AskedKnown: old[key].AskedKnown}
	}
	// The scheduler reads its own copy, outside h.mu, while calls go on
	// marking the host's map.
	seen := maps.Clone(loaded)
	h.mu.Lock()
	h.loaded = loaded
	h.mu.Unlock()
	h.sched.observeLoaded(old, seen, time.Now())
	return nil
}

// isLoaded reports whether the host has the model (by key) in memory, as
// of its last /api/ps or the last call that ran there.
func (h *host) isLoaded(key string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.loaded[key]
	return ok && (l.Expires.IsZero() || l.Expires.After(now))
}

// markLoaded records that a call of the model just ran on the host, so it
// is loaded now (until the next /api/ps says otherwise), with num_ctx
// ctxLen when that is known (0 keeps what was known).
func (h *host) markLoaded(key, name string, ctxLen int) {
	if h.oa != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.loaded == nil {
		h.loaded = map[string]loadedModel{}
	}
	l := h.loaded[key]
	l.Name = name
	if ctxLen > 0 {
		l.ContextLength = ctxLen
	}
	l.Asked, l.AskedKnown = ctxLen, true
	l.Expires = time.Now().Add(defaultKeepAlive)
	h.loaded[key] = l
}

// loadedNames lists the models the host has loaded now, sorted; called
// with h.mu held.
func (h *host) loadedNames(now time.Time) []string {
	var out []string
	for _, l := range h.loaded {
		if l.Expires.IsZero() || l.Expires.After(now) {
			out = append(out, l.Name)
		}
	}
	slices.Sort(out)
	return out
}

// loadedOn lists the hosts that have mod loaded.
func (m *model) loadedOn(now time.Time) []string {
	var out []string
	for _, h := range m.hosts {
		if h.isLoaded(m.key(), now) {
			out = append(out, h.name)
		}
	}
	return out
}

// recordLoad keeps how long the model last took to load on any host, for
// the queue's and the heartbeat's estimates.
func (m *Models) recordLoad(key string, d time.Duration) {
	if d <= 0 {
		return
	}
	m.mu.Lock()
	if m.loadTimes == nil {
		m.loadTimes = map[string]time.Duration{}
	}
	m.loadTimes[key] = d
	m.mu.Unlock()
}

// loadTime is how long the model took to load the last time, or 0.
func (m *Models) loadTime(key string) time.Duration {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.loadTimes[key]
}
