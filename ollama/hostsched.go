package ollama

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// DefaultSwitchWait is how long a call for a model that is not running on
// a host waits, at most, while calls for the models that are running there
// keep being let in (Config.SwitchWait).
const DefaultSwitchWait = 10 * time.Second

// hostSched orders the calls of different models on one Ollama host, so
// that a host that can keep only a few models in memory (the
// OLLAMA_MAX_LOADED_MODELS of the server, or its memory) does not load and
// unload them in turn when calls for models A, B, A, B arrive together.
//
// The host may run calls of at most capacity models at once. A call for a
// model that is running there joins it (a batch: no load), up to per calls
// of that model. A call for another model waits until a model's calls have
// all ended; the freed place goes to a waiting model that the host has
// loaded already (from /api/ps), else to the model that has waited
// longest. No model starves: once a call has waited switchWait, the
// running models take no more calls, so they drain and the call's model
// goes next.
//
// capacity is the configured number of models, or else learned: unknown
// (no limit) until a call's load pushes another model out of the host's
// /api/ps, then the number of models /api/ps lists (raised again when it
// lists more).
type hostSched struct {
	mu      sync.Mutex
	running map[string]int // calls running, by model key; no zero entries
	queue   []*hostWaiter  // in arrival order
	learned int            // capacity seen in /api/ps; 0: unknown
	// lastEnded is the model whose calls last all ended: still loaded,
	// until /api/ps says otherwise, so its next call goes first.
	lastEnded string
	evicted   bool // a model left /api/ps before its expiry; not yet learned from
}

// hostWaiter is one call waiting for its model's turn on the host.
type hostWaiter struct {
	key     string
	since   time.Time
	turn    chan struct{} // closed when the call may run
	moved   chan struct{} // poked when the queue changes (capacity 1)
	granted bool
}

// schedRules are the scheduler's parameters for one decision: from Config,
// with the clock and the host's loaded state injected so the ordering can
// be tested without a server.
type schedRules struct {
	now        time.Time
	capacity   int // models that may run at once; 0: no limit
	per        int // calls of one model at once; 0: no limit
	switchWait time.Duration
	loaded     func(key string) bool // the host has the model in memory
}

// capacityFor is the number of models the host may run at once: the
// configured max, else the learned one (0: no limit).
func (s *hostSched) capacityFor(configured int) int {
	if configured > 0 {
		return configured
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.learned
}

// admit lets a call for key run now, or queues it. It returns the waiter
// (nil when the call may run at once). Callers hold no lock.
func (s *hostSched) admit(key string, r schedRules) *hostWaiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]int{}
	}
	w := &hostWaiter{key: key, since: r.now, turn: make(chan struct{}), moved: make(chan struct{}, 1)}
	s.queue = append(s.queue, w)
	s.dispatch(r)
	if w.granted {
		return nil
	}
	return w
}

// tryAdmit lets a call for key run now if the order allows it at once,
// and queues nothing otherwise.
func (s *hostSched) tryAdmit(key string, r schedRules) bool {
	w := s.admit(key, r)
	if w == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		return true
	}
	if i := slices.Index(s.queue, w); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
	}
	return false
}

// done ends one running call of key and lets the next ones in.
func (s *hostSched) done(key string, r schedRules) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[key]--; s.running[key] <= 0 {
		delete(s.running, key)
		s.lastEnded = key
	}
	s.dispatch(r)
}

// leave takes w out of the queue (its call ended while waiting). It
// reports true when w had been let in already; the caller then runs done.
func (s *hostSched) leave(w *hostWaiter, r schedRules) (granted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		return true
	}
	if i := slices.Index(s.queue, w); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
	}
	s.dispatch(r) // a starving call that leaves may reopen the batch
	return false
}

// dispatch lets in every waiter that may run now, in order. It runs with
// mu held.
func (s *hostSched) dispatch(r schedRules) {
	moved := false
	for {
		i := s.next(r)
		if i < 0 {
			break
		}
		w := s.queue[i]
		s.queue = slices.Delete(s.queue, i, i+1)
		s.running[w.key]++
		w.granted = true
		close(w.turn)
		moved = true
	}
	if moved {
		for _, w := range s.queue {
			select {
			case w.moved <- struct{}{}:
			default:
			}
		}
	}
}

// next is the index of the waiter to let in now, or -1. It runs with mu
// held.
func (s *hostSched) next(r schedRules) int {
	room := r.capacity <= 0 || len(s.running) < r.capacity
	below := func(key string) bool { return r.per <= 0 || s.running[key] < r.per }
	// A call that has waited switchWait for its model to get a place
	// closes the batches: only its model may go in next.
	for i, w := range s.queue {
		if s.running[w.key] == 0 && r.now.Sub(w.since) >= r.switchWait {
			if room {
				return i
			}
			return -1
		}
	}
	// Join a model that is running: no load.
	for i, w := range s.queue {
		if s.running[w.key] > 0 && below(w.key) {
			return i
		}
	}
	if !room {
		return -1
	}
	// A new model: one the host has loaded, else the longest waiting.
	warm := func(key string) bool { return key == s.lastEnded || r.loaded != nil && r.loaded(key) }
	best := -1
	for i, w := range s.queue {
		if s.running[w.key] > 0 {
			continue // waits for its own model's slot
		}
		if warm(w.key) {
			return i
		}
		if best < 0 {
			best = i
		}
	}
	return best
}

// position is w's place in line, from 1: the order of next replayed on a
// copy of the queue, where a model's calls that cannot go in end the
// running calls (a new batch). It runs with mu held.
func (s *hostSched) position(w *hostWaiter, r schedRules) int {
	if !slices.Contains(s.queue, w) {
		return 0
	}
	cp := &hostSched{running: map[string]int{}, queue: slices.Clone(s.queue), lastEnded: s.lastEnded}
	for k, n := range s.running {
		cp.running[k] = n
	}
	for pos := 1; len(cp.queue) > 0; pos++ {
		i := cp.next(r)
		if i < 0 {
			for k := range cp.running {
				cp.lastEnded = k
			}
			clear(cp.running)
			if i = cp.next(r); i < 0 {
				i = 0
			}
		}
		if cp.queue[i] == w {
			return pos
		}
		cp.running[cp.queue[i].key]++
		cp.queue = slices.Delete(cp.queue, i, i+1)
	}
	return 0
}

// observeLoaded learns the host's capacity from an /api/ps reading: once a
// model that was expected to stay loaded is gone, the host keeps as many
// models as the next reading that lists any shows; when it lists more than
// was learned, the capacity grows to that.
func (s *hostSched) observeLoaded(old, cur map[string]loadedModel, now time.Time) {
	evicted := false
	for k, l := range old {
		if _, ok := cur[k]; !ok && (l.Expires.IsZero() || l.Expires.After(now)) {
			evicted = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A model is pushed out before the next one is listed (it loads in
	// between), so the eviction is kept until a reading lists models.
	s.evicted = s.evicted || evicted
	n := len(cur)
	switch {
	case s.evicted && n > 0:
		if s.learned == 0 || n < s.learned {
			s.learned = n
		}
		s.evicted = false
	case s.learned > 0 && n > s.learned:
		s.learned = n
	}
}

// runningModels lists the models running on the host, for progress.
func (s *hostSched) runningModels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.running))
	for k := range s.running {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// waiting is how many calls wait on the host, by model key.
func (s *hostSched) waiting() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, w := range s.queue {
		out[w.key]++
	}
	return out
}

// ordering reports whether calls on h go through its scheduler: Ollama
// hosts only (a backend has no /api/ps), unless Config.MaxLoadedModels
// turns it off.
func (m *Models) ordering(h *host) bool {
	return h.oa == nil && m.cfg.MaxLoadedModels >= 0
}

// orderingFor reports whether every host of mod orders its calls, so the
// model's own gate can let more calls through to the hosts' queues.
func (m *Models) orderingFor(mod *model) bool {
	if m.cfg.MaxLoadedModels < 0 || len(mod.hosts) == 0 {
		return false
	}
	for _, h := range mod.hosts {
		if h.oa != nil {
			return false
		}
	}
	return true
}

func (m *Models) rules(h *host) schedRules {
	now := time.Now()
	per := m.cfg.ModelConcurrency
	if per < 0 {
		per = 0
	}
	wait := m.cfg.SwitchWait
	if wait <= 0 {
		wait = DefaultSwitchWait
	}
	return schedRules{
		now:        now,
		capacity:   h.sched.capacityFor(m.cfg.MaxLoadedModels),
		per:        per,
		switchWait: wait,
		loaded:     func(key string) bool { return h.isLoaded(key, now) },
	}
}

// hostTurn waits until mod's call may run on a host, and returns it: h
// (pick's choice), or another host of the model, not in tried, that can
// run the call at once while h cannot. While the call waits, the client is
// told its place in line and how long the model took to load before.
// release ends the call's turn; after a call that had to load the model
// it reads the host's /api/ps first, to learn how many models the host
// keeps.
func (m *Models) hostTurn(ctx context.Context, req *calls.Request, h *host, mod *model, tried []*host) (_ *host, release func(), err error) {
	if !m.ordering(h) {
		return h, func() {}, nil
	}
	key := mod.key()
	order := []*host{h}
	for {
		o := mod.pick(append(slices.Clone(tried), order...), m.cfg.ModelConcurrency)
		if o == nil {
			break
		}
		order = append(order, o)
	}
	for _, o := range order {
		if m.ordering(o) && o.sched.tryAdmit(key, m.rules(o)) {
			return o, m.turnRelease(ctx, o, key), nil
		}
	}
	release, err = m.waitTurn(ctx, req, h, mod)
	return h, release, err
}

// turnRelease is the release of a call's turn on h.
func (m *Models) turnRelease(ctx context.Context, h *host, key string) func() {
	cold := !h.isLoaded(key, time.Now())
	return func() {
		if cold && m.cfg.MaxLoadedModels == 0 {
			// Learn before the next call is let in. The call's own
			// context may have ended; the reading is bounded by
			// listTimeout.
			if err := h.readLoaded(context.WithoutCancel(ctx)); err != nil {
				m.log.Debug("reading /api/ps after a load", "host", h.name, "err", err)
			}
		}
		h.sched.done(key, m.rules(h))
	}
}

// waitTurn queues mod's call on h and waits for its turn; see hostTurn.
func (m *Models) waitTurn(ctx context.Context, req *calls.Request, h *host, mod *model) (release func(), err error) {
	key := mod.key()
	release = m.turnRelease(ctx, h, key)
	w := h.sched.admit(key, m.rules(h))
	if w == nil {
		return release, nil
	}
	start := time.Now()
	tick := time.NewTicker(progressHeartbeat)
	defer tick.Stop()
	lastPos := -1
	report := func() {
		r := m.rules(h)
		h.sched.mu.Lock()
		pos := h.sched.position(w, r)
		h.sched.mu.Unlock()
		if pos == lastPos {
			return
		}
		lastPos = pos
		req.Progress.Report(ctx, 0, 0, m.turnMessage(h, mod, pos, r.capacity))
	}
	report()
	for {
		select {
		case <-w.turn:
			return release, nil
		case <-w.moved:
			report()
		case <-tick.C:
			// Re-evaluate: a waiter may have passed switchWait with no
			// other event.
			r := m.rules(h) // before mu: it reads the capacity under it
			h.sched.mu.Lock()
			h.sched.dispatch(r)
			h.sched.mu.Unlock()
			req.Progress.Report(ctx, 0, 0, fmt.Sprintf("waiting for %s on %s for %s", mod.Name, h.name, time.Since(start).Round(time.Second)))
		case <-ctx.Done():
			if h.sched.leave(w, m.rules(h)) {
				release()
			}
			return nil, fmt.Errorf("ollama: waiting for %s on %s: %w", mod.Name, h.name, ctx.Err())
		}
	}
}

// turnMessage is the progress text of a call waiting on a host: its place
// in line, what the host is running, and the expected load time.
func (m *Models) turnMessage(h *host, mod *model, pos, capacity int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "queued on %s: number %d in line", h.name, pos)
	run := h.sched.runningModels()
	if len(run) > 0 {
		fmt.Fprintf(&b, "; it is running %s", strings.Join(run, ", "))
		if capacity > 0 {
			fmt.Fprintf(&b, " and keeps %d model(s) loaded at once", capacity)
		}
	}
	if !h.isLoaded(mod.key(), time.Now()) {
		d := m.loadTime(mod.key())
		switch {
		case slices.Contains(run, mod.key()) && d > 0:
			// A call before this one is loading it now.
			fmt.Fprintf(&b, "; %s is being loaded there by the call before, which took %s the last time", mod.Name, d.Round(100*time.Millisecond))
		case slices.Contains(run, mod.key()):
			fmt.Fprintf(&b, "; %s is being loaded there by the call before", mod.Name)
		case d > 0:
			fmt.Fprintf(&b, "; %s is not loaded there, expected load time %s (its last load)", mod.Name, d.Round(100*time.Millisecond))
		default:
			fmt.Fprintf(&b, "; %s is not loaded there and has not been loaded before", mod.Name)
		}
	}
	return b.String()
}
