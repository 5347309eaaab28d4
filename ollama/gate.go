package ollama

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// maxQueuePerSlot bounds how many calls may wait per running slot of a
// model before a new one is turned away as busy.
const maxQueuePerSlot = 16

// gate limits how many calls run against one model at once, over all of
// its tools, so that parallel agents do not make Ollama load and unload it
// over and over. The limit is ModelConcurrency per up host that has the
// model, so a model on three hosts runs three times as many calls. Calls
// beyond it wait in turn, first come first served.
type gate struct {
	mu      sync.Mutex
	running int
	waiters []chan struct{} // closed when the waiter is handed a slot
}

// gateFor returns the model's gate, or nil when concurrency is unlimited.
func (m *Models) gateFor(key string) *gate {
	if m.cfg.ModelConcurrency < 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.gates[key]
	if !ok {
		g = &gate{}
		m.gates[key] = g
	}
	return g
}

// limit is how many calls may run against mod now.
func (m *Models) limit(mod *model) int {
	up := 0
	for _, h := range mod.hosts {
		if h.isUp() {
			up++
		}
	}
	return m.cfg.ModelConcurrency * max(up, 1)
}

// acquire takes a slot for mod, waiting (and telling the client so through
// progress) while the model is busy. It returns a result instead when the
// queue is full, and an error when ctx ends first.
func (m *Models) acquire(ctx context.Context, req *calls.Request, mod *model) (release func(), busy *calls.Result, err error) {
	g := m.gateFor(mod.key())
	if g == nil {
		return func() {}, nil, nil
	}
	limit := m.limit(mod)
	release = func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.waiters) > 0 && g.running <= m.limit(mod) {
			// Hand the slot straight to the next in line.
			close(g.waiters[0])
			g.waiters = g.waiters[1:]
			return
		}
		g.running--
	}
	g.mu.Lock()
	if m.orderingFor(mod) {
		// The hosts' schedulers queue the calls, in an order that keeps
		// each host's loaded model busy (hostsched.go), and hold each
		// model to ModelConcurrency calls per host; here the model's
		// calls, running and waiting, are only bounded.
		if most := limit * (maxQueuePerSlot + 1); g.running >= most {
			g.mu.Unlock()
			res := calls.Errorf("busy: %d calls of %s are already running or waiting; try again later", most, mod.Name)
			res.Reason = calls.ReasonBusy
			return nil, res, nil
		}
		g.running++
		g.mu.Unlock()
		return release, nil, nil
	}
	if g.running < limit && len(g.waiters) == 0 {
		g.running++
		g.mu.Unlock()
		return release, nil, nil
	}
	if len(g.waiters) >= limit*maxQueuePerSlot {
		g.mu.Unlock()
		res := calls.Errorf("busy: %d calls are already waiting for %s; try again later", len(g.waiters), mod.Name)
		res.Reason = calls.ReasonBusy
		return nil, res, nil
	}
	turn := make(chan struct{})
	g.waiters = append(g.waiters, turn)
	ahead := len(g.waiters) - 1
	running := g.running
	g.mu.Unlock()

	start := time.Now()
	tick := time.NewTicker(progressHeartbeat)
	defer tick.Stop()
	msg := fmt.Sprintf("waiting for %s: %d calls running, %d ahead in line", mod.Name, running, ahead)
	if d := m.loadTime(mod.key()); d > 0 && len(mod.loadedOn(time.Now())) == 0 {
		msg += fmt.Sprintf("; it is not loaded, and took %s to load last time", d.Round(100*time.Millisecond))
	}
	req.Progress.Report(ctx, 0, 0, msg)
	for {
		select {
		case <-turn:
			return release, nil, nil
		case <-ctx.Done():
			g.mu.Lock()
			if i := slices.Index(g.waiters, turn); i >= 0 {
				g.waiters = slices.Delete(g.waiters, i, i+1)
				g.mu.Unlock()
			} else {
				// Handed a slot as ctx ended: pass it on.
				g.mu.Unlock()
				release()
			}
			return nil, nil, fmt.Errorf("ollama: waiting for %s: %w", mod.Name, ctx.Err())
		case <-tick.C:
			req.Progress.Report(ctx, 0, 0, fmt.Sprintf("waiting for %s for %s", mod.Name, time.Since(start).Round(time.Second)))
		}
	}
}

// monotonic wraps a request's Progress so that every report carries a
// larger progress value than the one before, as MCP requires: a heartbeat
// at the same token count goes out as a hair more. Messages carry the real
// counts.
func monotonic(req *calls.Request) *calls.Request {
	var (
		mu   sync.Mutex
		last = -1.0
	)
	inner := req.Progress
	cp := *req
	cp.Progress = calls.ProgressFunc(func(ctx context.Context, progress, total float64, message string) {
		mu.Lock()
		if progress <= last {
			progress = last + 0.001
		}
		if total > 0 && progress > total {
			total = 0 // the estimate was wrong; report no total rather than a lie
		}
		last = progress
		inner.Report(ctx, progress, total, message) // under mu, so reports stay in order
		mu.Unlock()
	})
	return &cp
}

// QueueDepths returns, for each model membrane serves, how many of its
// calls are waiting: for the model's own slots, and for its turn on a host
// (hostsched.go). A model none of whose calls wait is there with 0, so a
// graph of it shows an idle model rather than a gap.
func (m *Models) QueueDepths() map[string]int {
	m.mu.Lock()
	gates := make(map[string]*gate, len(m.gates))
	for k, g := range m.gates {
		gates[k] = g
	}
	out := make(map[string]int, len(m.models))
	for k := range m.models {
		out[k] = 0
	}
	m.mu.Unlock()
	for k, g := range gates {
		g.mu.Lock()
		if n := len(g.waiters); n > 0 {
			out[k] = n
		}
		g.mu.Unlock()
	}
	for _, h := range m.hosts {
		for k, n := range h.sched.waiting() {
			out[k] += n
		}
	}
	return out
}
