package calls

import (
	"context"
	"encoding/json"
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
// A ledger or a store that keeps up on average absorbs a burst of this
// many events (about half as many calls) without losing one.
const DefaultObserverBuffer = 16384

// The bus between the calls and the observers. A call appends its event
// to one shared queue (one copy, one short lock, no wake-up while the
// dispatcher is awake); the dispatcher takes the whole queue at once,
// at most busWindow after its first event or as soon as it holds busHigh
// events, and hands that batch to each observer's goroutine. So a burst
// of calls costs each observer one wake-up per batch, not one per event.
const (
	busHigh = 1024
	// busMax bounds the events waiting for the dispatcher (when it is
	// starved of CPU); past it an event is lost, and counted as dropped
	// by every observer that wanted it.
	busMax = 1 << 16
)

// busWindow is how long the dispatcher lets events gather after the first
// (a variable for BenchmarkHandOffPaced only). Every batch wakes the
// dispatcher, a timer and each observer's goroutine: about 12 µs of CPU
// with three observers, which a call that comes alone pays by itself. An
// MCP call takes a few hundred microseconds, so a window of 1 ms shared
// that among 1-4 calls; 5 ms shares it among a dozen or more (about 1.5 µs
// a call, BenchmarkHandOffPaced), and still shows a call in the Lens, and
// writes its ledger line, long before anyone could tell. Close and
// ObserverStats hand everything on at once, whatever the window.
var busWindow = 5 * time.Millisecond

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

// observer runs one Observer on its own goroutine behind a bounded queue
// of batches.
type observer struct {
	o     Observer
	ender BatchObserver // o, when it is one
	name  string
	log   *slog.Logger
	bound int    // the most events queued for it at once
	wants uint64 // bit t set: the observer wants events of type t
	quit  chan struct{}
	done  chan struct{}
	wake  chan struct{} // capacity 1: batches are queued

	mu      sync.Mutex
	batches []part // shared with the other observers: read-only
	spare   []part // the slice drain emptied last, for the next batches
	queued  int    // wanted events in batches, not yet delivered

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
		o: o, name: name, log: log, bound: buffer,
		quit: make(chan struct{}),
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
	ob.ender, _ = o.(BatchObserver)
	f, filtered := o.(EventFilter)
	for t := EventCallStarted; t <= EventToolsChanged; t++ {
		if !filtered || f.Wants(t) {
			ob.wants |= 1 << t
		}
	}
	go ob.run()
	return ob
}

func (ob *observer) wanted(t EventType) bool { return ob.wants&(1<<t) != 0 }

// record is an event as the bus carries it. A call's started and finished
// events, the hot path, are held compactly: the call and the session by
// pointer (both fixed for the call's life) instead of their five strings,
// so that the caller copies 160 bytes with 9 pointers into the
// queue instead of a whole Event of about 260 bytes with 12, and the
// queue the garbage collector scans is that much smaller. Every other
// event, rare beside calls, is carried whole in full.
type record struct {
	typ         EventType
	outcome     Outcome
	resultBytes int
	id          uint64
	time        time.Time
	dur         time.Duration
	call        *Call
	session     *Session
	args        json.RawMessage
	traceParent string
	traceState  string
	traceID     string // made by the router (RouterOptions.NewTraces), or ""
	reason      string
	info        *Info
	full        *Event
	memo        *memo // set by the dispatcher, for events two observers want
}

// callRecord is the record of a call's event of type t at time at.
func callRecord(t EventType, at time.Time, id uint64, req *Request) record {
	return record{
		typ: t, time: at, id: id, call: req.Call, session: req.Session,
		args: req.Arguments, traceParent: req.TraceParent, traceState: req.TraceState, traceID: req.traceID,
	}
}

// event returns the Event rc holds, as observers receive it.
func (rc *record) event() Event {
	if rc.full != nil {
		e := *rc.full
		e.memo = rc.memo
		return e
	}
	e := Event{
		Type: rc.typ, Time: rc.time, ID: rc.id,
		Arguments: rc.args, TraceParent: rc.traceParent, TraceState: rc.traceState,
		Outcome: rc.outcome, Reason: rc.reason, Duration: rc.dur,
		ResultBytes: rc.resultBytes, Info: rc.info, memo: rc.memo,
	}
	if c := rc.call; c != nil {
		e.Call, e.Kind, e.Group = c.Name, c.Kind, c.Group
	}
	e.TraceID = rc.traceID
	if e.TraceID == "" {
		e.TraceID = TraceID(rc.traceParent)
	}
	if s := rc.session; s != nil {
		e.Session, e.Client = s.id, s.client
		e.Protocol, e.TokenName, e.Sessionless = s.peer.Protocol, s.peer.TokenName, s.peer.Sessionless
	}
	return e
}

// batch is one take of the bus, shared by the observers that want some of
// it, and given back to the bus for reuse when the last is done with it.
type batch struct {
	events []record
	refs   atomic.Int32
	bus    *bus
}

func (b *batch) release() {
	if b.refs.Add(-1) == 0 {
		b.bus.recycle(b)
	}
}

// part is the first n events of a batch, queued for one observer.
type part struct {
	b *batch
	n int
}

// offer queues the part of b the observer has room for, never waiting;
// what does not fit is counted as dropped. Dispatcher only.
func (ob *observer) offer(b *batch) {
	batch := b.events
	n := 0
	for i := range batch {
		if ob.wanted(batch[i].typ) {
			n++
		}
	}
	if n == 0 {
		return
	}
	ob.mu.Lock()
	room := ob.bound - ob.queued
	take, cut := len(batch), 0
	if n > room {
		// Keep the first room events it wants; lose the rest.
		kept, i := 0, 0
		for ; i < len(batch) && kept < room; i++ {
			if ob.wanted(batch[i].typ) {
				kept++
			}
		}
		take, cut, n = i, n-kept, kept
	}
	if n > 0 {
		b.refs.Add(1)
		ob.batches = append(ob.batches, part{b, take})
		ob.queued += n
	}
	ob.mu.Unlock()
	if cut > 0 && ob.dropped.Add(uint64(cut)) == uint64(cut) {
		ob.log.Warn("observer is falling behind: dropping events", "observer", ob.name, "buffer", ob.bound)
	}
	if n > 0 {
		select {
		case ob.wake <- struct{}{}:
		default:
		}
	}
}

func (ob *observer) run() {
	defer close(ob.done)
	for {
		if ob.drain() {
			continue
		}
		select {
		case <-ob.wake:
		case <-ob.quit:
			for ob.drain() {
			}
			ob.reportDrops(true)
			return
		}
	}
}

// drain delivers the batches queued now; it reports whether there were any.
func (ob *observer) drain() bool {
	ob.mu.Lock()
	bs := ob.batches
	ob.batches, ob.spare = ob.spare[:0], nil
	ob.mu.Unlock()
	defer func() {
		clear(bs)
		ob.mu.Lock()
		ob.spare = bs[:0]
		ob.mu.Unlock()
	}()
	for _, p := range bs {
		n := 0
		for i := range p.b.events[:p.n] {
			if rc := &p.b.events[i]; ob.wanted(rc.typ) {
				e := rc.event()
				ob.deliver(&e)
				n++
			}
		}
		p.b.release()
		ob.mu.Lock()
		ob.queued -= n
		ob.mu.Unlock()
	}
	if len(bs) > 0 && ob.ender != nil {
		ob.endBatch()
	}
	ob.reportDrops(false)
	return len(bs) > 0
}

func (ob *observer) endBatch() {
	defer func() {
		if v := recover(); v != nil {
			if n := ob.panics.Add(1); n == 1 || n%1000 == 0 {
				ob.log.Error("observer panicked at the end of a batch; the call is not affected", "observer", ob.name, "panic", fmt.Sprint(v), "panics", n)
			}
		}
	}()
	ob.ender.EndBatch()
}

func (ob *observer) deliver(e *Event) {
	defer func() {
		if v := recover(); v != nil {
			if n := ob.panics.Add(1); n == 1 || n%1000 == 0 {
				ob.log.Error("observer panicked; the event is lost, the call is not affected", "observer", ob.name, "panic", fmt.Sprint(v), "panics", n)
			}
		}
	}()
	ob.o.Observe(*e)
	ob.delivered.Add(1)
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
// call reads it without a lock, and the bus that feeds them.
type observers struct {
	mu    sync.Mutex
	list  atomic.Pointer[[]*observer]
	wants atomic.Uint64 // the union of the observers' wants

	bus bus
}

// bus is the queue of events between the calls and the dispatcher.
type bus struct {
	mu      sync.Mutex
	pending []record   // the chunk the calls append to
	ready   [][]record // full chunks, oldest first, for the dispatcher
	queued  int        // events in ready
	free    [][]record // chunks done with, for reuse
	batches []*batch   // batch headers done with, for reuse
	parked  bool       // the dispatcher waits for a first event
	running bool       // the dispatcher goroutine exists
	wake    chan struct{}
	flush   chan chan struct{}
	quit    chan struct{}
	done    chan struct{}
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
	b := &os.bus
	b.mu.Lock()
	if !b.running {
		b.running, b.parked = true, false
		b.wake = make(chan struct{}, 1)
		b.flush = make(chan chan struct{})
		b.quit = make(chan struct{})
		b.done = make(chan struct{})
		go os.dispatch(b.wake, b.flush, b.quit, b.done)
	}
	b.mu.Unlock()
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

// send queues rc for the dispatcher. It takes one short lock and wakes the
// dispatcher only when it was waiting for a first event or a chunk of
// busHigh events has filled. The queue is a list of fixed chunks, never a
// slice that grows: a full chunk is set aside whole, so a call never copies
// the events before it, and emptied chunks come back for reuse.
func (os *observers) send(rc *record) {
	b := &os.bus
	b.mu.Lock()
	if !b.running {
		b.mu.Unlock()
		return
	}
	if b.queued+len(b.pending) >= busMax {
		b.mu.Unlock()
		for _, ob := range os.get() {
			if ob.wanted(rc.typ) {
				ob.dropped.Add(1)
			}
		}
		return
	}
	if len(b.pending) == cap(b.pending) {
		if len(b.pending) > 0 {
			b.ready = append(b.ready, b.pending)
			b.queued += len(b.pending)
		}
		b.pending = b.chunk()
	}
	b.pending = append(b.pending, *rc)
	signal := b.parked || len(b.pending) == busHigh
	b.parked = false
	wake := b.wake
	b.mu.Unlock()
	if signal {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// take returns what the bus holds, and marks the dispatcher parked when it
// holds nothing. The batch holds one reference, the dispatcher's.
func (b *bus) take() *batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	var p []record
	switch {
	case len(b.ready) > 0:
		p = b.ready[0]
		b.ready[0] = nil
		b.ready = b.ready[1:]
		b.queued -= len(p)
		if len(b.ready) == 0 {
			b.ready = nil
		}
	case len(b.pending) > 0:
		p = b.pending
		// The next chunk is found here, off the calls' path.
		b.pending = b.chunk()
	default:
		b.parked = true
		return nil
	}
	var bt *batch
	if n := len(b.batches); n > 0 {
		bt = b.batches[n-1]
		b.batches[n-1] = nil
		b.batches = b.batches[:n-1]
	} else {
		bt = &batch{bus: b}
	}
	bt.events = p
	bt.refs.Store(1)
	return bt
}

// chunk returns an empty chunk of busHigh events, a reused one when there
// is one. Called with mu held.
func (b *bus) chunk() []record {
	if n := len(b.free); n > 0 {
		c := b.free[n-1]
		b.free[n-1] = nil
		b.free = b.free[:n-1]
		return c
	}
	return make([]record, 0, busHigh)
}

// busFree is how many emptied chunks the bus keeps for reuse: enough for
// the events an observer at its default bound holds, so that a steady
// stream of calls allocates none.
const busFree = DefaultObserverBuffer/busHigh + 2

// recycle keeps emptied chunks and batch headers, so that a burst of calls
// does not allocate a new queue each millisecond.
func (b *bus) recycle(bt *batch) {
	events := bt.events
	bt.events = nil
	// Not cleared: the next calls overwrite it on their own core, and
	// what it still points to (at most busFree*busHigh old events) goes
	// then.
	b.mu.Lock()
	if cap(events) == busHigh && len(b.free) < busFree {
		b.free = append(b.free, events[:0])
	}
	if len(b.batches) < busFree {
		b.batches = append(b.batches, bt)
	}
	b.mu.Unlock()
}

// handOn offers bt to every observer and drops the dispatcher's reference.
func (os *observers) handOn(bt *batch) {
	obs := os.get()
	shareMemos(bt.events, obs)
	for _, ob := range obs {
		ob.offer(bt)
	}
	bt.release()
}

// callEvents are the event types that carry a call's arguments, which
// observers scrub (see Event.Memo).
const callEvents = 1<<EventCallStarted | 1<<EventCallProgress | 1<<EventCallFinished

// shareMemos gives each call event that two observers or more want a memo
// they share, all of them from one allocation. The dispatcher owns the
// batch until it offers it, so the records are written before any
// observer reads them.
func shareMemos(events []record, obs []*observer) {
	var seen, shared uint64
	for _, ob := range obs {
		shared |= seen & ob.wants
		seen |= ob.wants
	}
	if shared &= callEvents; shared == 0 {
		return
	}
	n := 0
	for i := range events {
		if shared&(1<<events[i].typ) != 0 {
			n++
		}
	}
	if n == 0 {
		return
	}
	memos := make([]memo, n)
	for i := range events {
		if rc := &events[i]; shared&(1<<rc.typ) != 0 {
			rc.memo = &memos[len(memos)-n]
			n--
		}
	}
}

// dispatch moves batches from the bus to the observers until quit.
func (os *observers) dispatch(wake <-chan struct{}, flush <-chan chan struct{}, quit, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var acks []chan struct{}
	for {
		if bt := os.bus.take(); bt != nil {
			os.handOn(bt)
			continue
		}
		// Everything sent before a flush was asked for has been handed on.
		for _, a := range acks {
			close(a)
		}
		acks = acks[:0]
		select {
		case <-wake:
			// A first event: give the calls a moment to add more, so
			// that they share one batch, unless the bus fills first.
			timer.Reset(busWindow)
			select {
			case <-wake:
			case <-timer.C:
			case a := <-flush:
				acks = append(acks, a)
			case <-quit:
			}
			timer.Stop()
		case a := <-flush:
			acks = append(acks, a)
		case <-quit:
			for bt := os.bus.take(); bt != nil; bt = os.bus.take() {
				os.handOn(bt)
			}
			return
		}
	}
}

// flushBus hands every event sent so far to the observers' queues.
func (os *observers) flushBus() {
	b := &os.bus
	b.mu.Lock()
	running, flush, done := b.running, b.flush, b.done
	b.mu.Unlock()
	if !running {
		return
	}
	a := make(chan struct{})
	select {
	case flush <- a:
		<-a
	case <-done:
	}
}

// stopBus ends the dispatcher once the last observer is gone, after it has
// handed on what it holds.
func (os *observers) stopBus() {
	os.mu.Lock()
	defer os.mu.Unlock()
	if len(os.get()) > 0 {
		return
	}
	b := &os.bus
	b.mu.Lock()
	if !b.running {
		b.mu.Unlock()
		return
	}
	b.running = false
	quit, done := b.quit, b.done
	b.mu.Unlock()
	close(quit)
	<-done
}

// Observe adds o to the router's observers; it receives every later event.
// The returned function removes o, after delivering what is already queued
// for it, and waits for its last Observe to return.
func (r *Router) Observe(o Observer) (stop func()) {
	ob := newObserver(o, r.opts.ObserverBuffer, r.log)
	r.obs.flushBus() // what was sent before is not for o
	r.obs.add(ob)
	return func() {
		r.obs.flushBus()
		if r.obs.remove(ob) {
			ob.stop()
		}
		r.obs.stopBus()
	}
}

// ObserverStats reports each observer's counts, in the order they were
// added. Every event sent before it was called is counted, as delivered,
// queued or dropped.
func (r *Router) ObserverStats() []ObserverStats {
	r.obs.flushBus()
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
	r.obs.flushBus()
	for _, ob := range r.obs.get() {
		if r.obs.remove(ob) {
			ob.stop()
		}
	}
	r.obs.stopBus()
}

// InFlight returns how many calls are running now.
func (r *Router) InFlight() int64 { return r.inFlight.Load() }

// SessionsOpen returns how many sessions opened with OpenSession are open.
func (r *Router) SessionsOpen() int64 { return r.sessionsOpen.Load() }

// emit hands e to the observers, if some observer wants it.
func (r *Router) emit(e Event) {
	if r.wanted(e.Type) {
		r.obs.send(&record{typ: e.Type, full: &e})
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
			var id uint64
			if watched {
				id = r.nextID.Add(1)
				if r.opts.NewTraces && req.TraceParent == "" {
					req.traceID = NewTraceID()
					defer func() { req.traceID = "" }()
				}
				if r.wanted(EventCallStarted) {
					rc := callRecord(EventCallStarted, start, id, req)
					r.obs.send(&rc)
				}
			}
			var prev Progress
			if watched && r.wanted(EventCallProgress) {
				prev = req.Progress
				req.progress = observedProgress{r: r, req: req, id: id, next: prev}
				req.Progress = &req.progress
			}
			res, err := next.Handle(ctx, req)
			if prev != nil {
				// Put back: a request the caller uses again must not
				// gather one wrapper per call.
				req.Progress = prev
			}
			end := time.Now()
			dur := end.Sub(start)
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
			if watched && r.wanted(EventCallFinished) {
				rc := callRecord(EventCallFinished, end, id, req)
				rc.outcome, rc.reason, rc.dur = outcome, reason, dur
				if res != nil {
					rc.resultBytes, rc.info = resultBytes(res), res.Info
				}
				r.obs.send(&rc)
			}
			return res, err
		})
	}
}

// observedProgress tells observers about progress and passes it on.
type observedProgress struct {
	r    *Router
	req  *Request
	id   uint64
	next Progress
}

func (p *observedProgress) Report(ctx context.Context, progress, total float64, message string) {
	req := p.req
	e := Event{
		Type: EventCallProgress, Time: time.Now(), ID: p.id,
		Call: req.Call.Name, Kind: req.Call.Kind, Group: req.Call.Group,
		Session: req.Session.ID(), Client: req.Session.Client(),
		Arguments:   req.Arguments,
		TraceParent: req.TraceParent, TraceState: req.TraceState, TraceID: req.traceID,
		Progress: progress, Total: total, Message: message,
	}
	if e.TraceID == "" {
		e.TraceID = TraceID(req.TraceParent)
	}
	if s := req.Session; s != nil {
		e.Protocol, e.TokenName, e.Sessionless = s.peer.Protocol, s.peer.TokenName, s.peer.Sessionless
	}
	p.r.obs.send(&record{typ: EventCallProgress, full: &e})
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
