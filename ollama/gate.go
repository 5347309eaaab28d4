package ollama

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// maxQueuePerSlot bounds how many calls may wait per running slot of a
// model before a new one is turned away as busy.
const maxQueuePerSlot = 16

// gate limits how many calls run against one model at once, over all of
// its tools and hosts, so that parallel agents do not make Ollama load and
// unload it over and over. Calls beyond the limit wait in turn.
type gate struct {
	slots   chan struct{}
	waiting chan struct{} // a token per waiting call, to bound the queue
}

func newGate(n int) *gate {
	return &gate{slots: make(chan struct{}, n), waiting: make(chan struct{}, n*maxQueuePerSlot)}
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
		g = newGate(m.cfg.ModelConcurrency)
		m.gates[key] = g
	}
	return g
}

// acquire takes a slot for mod, waiting (and telling the client so through
// progress) while the model is busy. A nil result with a nil error means
// proceed; a result means the call is turned away.
func (m *Models) acquire(ctx context.Context, req *calls.Request, mod *model) (release func(), busy *calls.Result, err error) {
	g := m.gateFor(modelKey(mod.Name))
	if g == nil {
		return func() {}, nil, nil
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil, nil
	default:
	}
	select {
	case g.waiting <- struct{}{}:
	default:
		res := calls.Errorf("busy: %d calls are already waiting for %s; try again later", cap(g.waiting), mod.Name)
		res.Structured = map[string]any{"busy": true}
		return nil, res, nil
	}
	defer func() { <-g.waiting }()
	start := time.Now()
	tick := time.NewTicker(progressHeartbeat)
	defer tick.Stop()
	req.Progress.Report(ctx, 0, 0, fmt.Sprintf("waiting for %s: %d calls running, %d waiting", mod.Name, len(g.slots), len(g.waiting)))
	for {
		select {
		case g.slots <- struct{}{}:
			return func() { <-g.slots }, nil, nil
		case <-ctx.Done():
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
