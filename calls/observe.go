package calls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultObserverBuffer is how many events an observer may fall behind
// before it loses some, where RouterOptions leaves ObserverBuffer zero.
const DefaultObserverBuffer = 4096

// maxReason bounds the reason text of a finished call.
const maxReason = 400

// ObserverStats counts what one observer received and lost.
type ObserverStats struct {
	// Name is the observer's ObserverName when it has one, else its Go
	// type.
	Name string
	// Delivered counts the events Observe was called with.
	Delivered uint64
	// Dropped counts the events lost because the observer's queue was full.
	Dropped uint64
	// Panics counts the calls of Observe that panicked.
	Panics uint64
}

// observer runs one Observer on its own goroutine behind a bounded queue.
type observer struct {
	o     Observer
	name  string
	log   *slog.Logger
	q     chan Event
	wants uint64 // bit t set: the observer wants events of type t
	quit  chan struct{}
	done  chan struct{}

	delivered, dropped, panics atomic.Uint64
	reported                   uint64 // drops already logged; observer goroutine only
	lastReport                 time.Time
}

func newObserver(o Observer, buffer int, log *slog.Logger) *observer {
	name := fmt.Sprintf("%T", o)
	if n, ok := o.(interface{ ObserverName() string }); ok {
		name = n.ObserverName()
	}
	ob := &observer{
		o: o, name: name, log: log,
		q:    make(chan Event, buffer),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	f, filtered := o.(EventFilter)
	for t := EventCallStarted; t <= EventToolsChanged; t++ {
		if !filtered || f.Wants(t) {
			ob.wants |= 1 << t
		}
	}
	go ob.run()
	return ob
}

// send queues e without ever waiting, if the observer wants it.
func (ob *observer) send(e *Event) {
	if ob.wants&(1<<e.Type) == 0 {
		return
	}
	select {
	case ob.q <- *e:
	default:
		if ob.dropped.Add(1) == 1 {
			ob.log.Warn("observer is falling behind: dropping events", "observer", ob.name, "buffer", cap(ob.q))
		}
	}
}

func (ob *observer) run() {
	defer close(ob.done)
	for {
		select {
		case e := <-ob.q:
			ob.deliver(e)
		case <-ob.quit:
			for {
				select {
				case e := <-ob.q:
					ob.deliver(e)
				default:
					ob.reportDrops(true)
					return
				}
			}
		}
	}
}

func (ob *observer) deliver(e Event) {
	defer func() {
		if v := recover(); v != nil {
			if n := ob.panics.Add(1); n == 1 || n%1000 == 0 {
				ob.log.Error("observer panicked; the event is lost, the call is not affected", "observer", ob.name, "panic", fmt.Sprint(v), "panics", n)
			}
		}
	}()
	ob.o.Observe(e)
	ob.delivered.Add(1)
	ob.reportDrops(false)
}

// reportDrops logs, at most every ten seconds, how many events were lost
// since the last report.
func (ob *observer) reportDrops(final bool) {
	d := ob.dropped.Load()
	if d == ob.reported || (!final && time.Since(ob.lastReport) < 10*time.Second) {
		return
	}
	ob.log.Warn("observer dropped events", "observer", ob.name, "dropped", d-ob.reported, "dropped_total", d)
	ob.reported, ob.lastReport = d, time.Now()
}

// stop delivers what is queued and ends the goroutine. Events sent while it
// stops may be lost.
func (ob *observer) stop() {
	select {
	case <-ob.quit:
	default:
		close(ob.quit)
	}
	<-ob.done
}

// observers is the router's set of observers, copied on write so that a
// call reads it without a lock.
type observers struct {
	mu    sync.Mutex
	list  atomic.Pointer[[]*observer]
	wants atomic.Uint64 // the union of the observers' wants
}

func (os *observers) get() []*observer {
	if p := os.list.Load(); p != nil {
		return *p
	}
	return nil
}

func (os *observers) add(ob *observer) {
	os.mu.Lock()
	defer os.mu.Unlock()
	l := append(append([]*observer(nil), os.get()...), ob)
	os.list.Store(&l)
	os.wants.Store(os.wants.Load() | ob.wants)
}

func (os *observers) remove(ob *observer) bool {
	os.mu.Lock()
	defer os.mu.Unlock()
	old := os.get()
	l := make([]*observer, 0, len(old))
	found := false
	for _, o := range old {
		if o == ob {
			found = true
			continue
		}
		l = append(l, o)
	}
	os.list.Store(&l)
	var w uint64
	for _, o := range l {
		w |= o.wants
	}
	os.wants.Store(w)
	return found
}

// Observe adds o to the router's observers; it receives every later event.
// The returned function removes o, after delivering what is already queued
// for it, and waits for its last Observe to return.
func (r *Router) Observe(o Observer) (stop func()) {
	ob := newObserver(o, r.opts.ObserverBuffer, r.log)
	r.obs.add(ob)
	return func() {
		if r.obs.remove(ob) {
			ob.stop()
		}
	}
}

// ObserverStats reports each observer's counts, in the order they were
// added.
func (r *Router) ObserverStats() []ObserverStats {
	obs := r.obs.get()
	out := make([]ObserverStats, 0, len(obs))
	for _, ob := range obs {
		out = append(out, ObserverStats{Name: ob.name, Delivered: ob.delivered.Load(), Dropped: ob.dropped.Load(), Panics: ob.panics.Load()})
	}
	return out
}

// Close removes every observer, after delivering what is queued for each,
// so that a ledger has written its last line when Close returns. Calls
// still work after Close; they are no longer observed.
func (r *Router) Close() {
	for _, ob := range r.obs.get() {
		if r.obs.remove(ob) {
			ob.stop()
		}
	}
}

// InFlight returns how many calls are running now.
func (r *Router) InFlight() int64 { return r.inFlight.Load() }

// SessionsOpen returns how many sessions opened with OpenSession are open.
func (r *Router) SessionsOpen() int64 { return r.sessionsOpen.Load() }

// emit hands e to every observer that wants it.
func (r *Router) emit(e Event) {
	for _, ob := range r.obs.get() {
		ob.send(&e)
	}
}

// observed reports whether anyone is listening.
func (r *Router) observed() bool { return len(r.obs.get()) > 0 }

// wanted reports whether some observer wants events of type t.
func (r *Router) wanted(t EventType) bool { return r.obs.wants.Load()&(1<<t) != 0 }

// OpenSession returns a new session for a client connection, with the
// client's name (empty when unknown) for the records, and tells observers.
// Closing the session tells them again. An empty id gets a random one.
func (r *Router) OpenSession(id, client string) *Session {
	s := NewSession(id)
	s.client = client
	r.sessionsOpen.Add(1)
	if r.observed() {
		r.emit(Event{Type: EventSessionOpened, Time: time.Now(), Session: s.id, Client: client})
	}
	s.OnClose(func() {
		r.sessionsOpen.Add(-1)
		if r.observed() {
			r.emit(Event{Type: EventSessionClosed, Time: time.Now(), Session: s.id, Client: client})
		}
	})
	return s
}

// observe is the outermost middleware of every call: it grades the outcome,
// logs one record, and tells observers that the call started, progressed
// and finished.
func (r *Router) observe(e *entry) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Result, error) {
			start := time.Now()
			r.inFlight.Add(1)
			watched := r.observed()
			var ev Event
			if watched {
				ev = Event{
					Type: EventCallStarted, Time: start, ID: r.nextID.Add(1),
					Call: req.Call.Name, Kind: req.Call.Kind, Group: req.Call.Group,
					Session: req.Session.ID(), Client: req.Session.Client(),
					Arguments:   req.Arguments,
					TraceParent: req.TraceParent, TraceState: req.TraceState,
				}
				if r.wanted(EventCallStarted) {
					r.emit(ev)
				}
				if r.wanted(EventCallProgress) {
					req.Progress = &observedProgress{r: r, ev: ev, next: req.Progress}
				}
			}
			res, err := next.Handle(ctx, req)
			dur := time.Since(start)
			r.inFlight.Add(-1)
			if err == nil && res == nil {
				err = fmt.Errorf("calls: %s returned no result", req.Call.Name)
			}
			outcome := grade(ctx, res, err)
			reason := ""
			if outcome != OutcomeOK {
				reason = r.reason(res, err)
			}
			r.logCall(ctx, req, outcome, reason, dur, err)
			if watched {
				ev.Type, ev.Time = EventCallFinished, time.Now()
				ev.Outcome, ev.Reason, ev.Duration = outcome, reason, dur
				if res != nil {
					ev.ResultBytes, ev.Info = resultBytes(res), res.Info
				}
				r.emit(ev)
			}
			return res, err
		})
	}
}

// observedProgress tells observers about progress and passes it on.
type observedProgress struct {
	r    *Router
	ev   Event // the started event
	next Progress
}

func (p *observedProgress) Report(ctx context.Context, progress, total float64, message string) {
	e := p.ev
	e.Type, e.Time = EventCallProgress, time.Now()
	e.Progress, e.Total, e.Message = progress, total, message
	p.r.emit(e)
	p.next.Report(ctx, progress, total, message)
}

// grade decides a call's outcome. ctx is the caller's context, outside the
// router's deadline.
func grade(ctx context.Context, res *Result, err error) Outcome {
	cancelled := errors.Is(ctx.Err(), context.Canceled)
	switch {
	case err != nil:
		if cancelled && errors.Is(err, context.Canceled) {
			return OutcomeCancelled
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
			return OutcomeTimeout // the caller's own deadline
		}
		return OutcomeError
	case res.Outcome != 0:
		return res.Outcome
	case !res.IsError:
		return OutcomeOK
	}
	switch res.Reason {
	case ReasonBusy:
		return OutcomeBusy
	case ReasonTimeout:
		return OutcomeTimeout
	case ReasonPanic:
		return OutcomeError
	}
	if m, ok := res.Structured.(map[string]any); ok && m["busy"] == true {
		return OutcomeBusy
	}
	if cancelled {
		return OutcomeCancelled
	}
	return OutcomeToolError
}

// reason is the one-line, bounded, redacted account of a failure.
func (r *Router) reason(res *Result, err error) string {
	var s string
	if err != nil {
		s = err.Error()
	} else {
		s = res.TextOf()
	}
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) > maxReason {
		s = ValidUTF8(s[:maxReason]) + "…"
	}
	if r.opts.Redact != nil {
		s = r.opts.Redact(s)
	}
	return s
}

// logCall writes the call's one record: info for every outcome but error,
// which is a warning; the reason for every failure.
func (r *Router) logCall(ctx context.Context, req *Request, outcome Outcome, reason string, dur time.Duration, err error) {
	level := slog.LevelInfo
	if outcome == OutcomeError {
		level = slog.LevelWarn
	}
	if !r.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs,
		slog.String("call", req.Call.Name),
		slog.String("kind", req.Call.Kind.String()),
		slog.String("session", req.Session.ID()),
		slog.Duration("dur", RoundDuration(dur)),
		slog.String("outcome", outcome.String()),
	)
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	r.log.LogAttrs(ctx, level, "call", attrs...)
}

// RoundDuration rounds d for people to read: microseconds under a
// millisecond, milliseconds under a second, then hundredths of a second
// ("53ms", "1.25s").
func RoundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}
