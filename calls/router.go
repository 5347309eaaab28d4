package calls

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnknownCall is returned by Router.Call for a name that is not
// registered (never registered, or removed since the client listed it).
var ErrUnknownCall = errors.New("unknown call")

// Defaults used where RouterOptions leaves a field zero.
const (
	DefaultTimeout     = 5 * time.Minute
	DefaultConcurrency = 8
)

// RouterOptions configures a Router. The zero value is usable.
type RouterOptions struct {
	// Logger receives one record per call. Nil discards.
	Logger *slog.Logger
	// DefaultTimeout applies to calls whose Timeout is zero. Zero means
	// DefaultTimeout.
	DefaultTimeout time.Duration
	// DefaultConcurrency applies to calls whose Concurrency is zero. Zero
	// means DefaultConcurrency.
	DefaultConcurrency int
	// QueueLength is how many invocations of one call may wait for a slot
	// once its Concurrency are running; one more is answered busy at once.
	// One session may fill at most half of the queue (at least one place).
	// Zero means four per slot, at least MinDefaultQueue; negative means
	// no queue: a call past the limit is busy at once.
	QueueLength int
	// QueueTimeout is the longest an invocation waits in the queue before
	// it is answered busy. Zero means DefaultQueueTimeout.
	QueueTimeout time.Duration
	// SessionShare is how many of one call's slots a single session may
	// hold at once, so that one session cannot take every slot and keep
	// it. Zero means DefaultShare of the call's Concurrency (a quarter of
	// the slots, at least one, stays free for other sessions); negative
	// means a session may hold them all.
	SessionShare int
	// Middleware runs inside the built-in middleware (logging, panic
	// recovery, concurrency limit, deadline), first element outermost.
	Middleware []Middleware
	// Observers receive every event of the router (see Observer), each on
	// its own goroutine; Router.Observe adds more later. Router.Close
	// flushes and removes them.
	Observers []Observer
	// ObserverBuffer is how many events each observer may fall behind
	// before it loses some. Zero means DefaultObserverBuffer.
	ObserverBuffer int
	// Redact, when set, is applied to every reason text before it is
	// logged or sent to observers (to remove secrets that a failing call
	// echoed). Nil leaves reasons as they are.
	Redact func(string) string
	// NewTraces makes the router give each call that comes without a
	// traceparent a trace ID of its own (Event.TraceID), for the tracer to
	// start the call's span under and the ledger and store to record, so
	// that every call's record leads to its trace. Set it when tracing is
	// on; off, no call has a trace and none is made up.
	NewTraces bool
}

// Change is a batch of changes to a router's set of calls.
type Change struct {
	// Added holds calls that are new or whose definition changed.
	Added []Call
	// Removed holds the names of calls that are gone.
	Removed []string
}

// Empty reports whether c changes nothing.
func (c Change) Empty() bool { return len(c.Added) == 0 && len(c.Removed) == 0 }

// Router holds the live set of calls. It is safe for concurrent use.
type Router struct {
	opts RouterOptions
	log  *slog.Logger

	// writeMu serialises changes together with their notification, so that
	// every subscriber sees changes in the order they were made.
	writeMu sync.Mutex

	mu      sync.RWMutex
	entries map[string]*entry
	subs    map[int]func(Change)
	nextSub int

	obs          observers
	nextID       atomic.Uint64
	inFlight     atomic.Int64
	sessionsOpen atomic.Int64
}

type entry struct {
	call Call
	h    Handler  // call.Handler wrapped in the router's middleware
	lim  *limiter // nil: no limit
}

// NewRouter returns an empty router. A nil opts means the defaults.
func NewRouter(opts *RouterOptions) *Router {
	r := &Router{entries: map[string]*entry{}, subs: map[int]func(Change){}}
	if opts != nil {
		r.opts = *opts
	}
	if r.opts.DefaultTimeout <= 0 {
		r.opts.DefaultTimeout = DefaultTimeout
	}
	if r.opts.DefaultConcurrency == 0 {
		r.opts.DefaultConcurrency = DefaultConcurrency
	}
	if r.opts.ObserverBuffer <= 0 {
		r.opts.ObserverBuffer = DefaultObserverBuffer
	}
	r.log = r.opts.Logger
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range r.opts.Observers {
		r.obs.add(newObserver(o, r.opts.ObserverBuffer, r.log))
	}
	return r
}

// Add registers c. It fails if c is invalid or its name is taken.
func (r *Router) Add(c Call) error {
	if err := c.Validate(); err != nil {
		return err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	if _, ok := r.entries[c.Name]; ok {
		r.mu.Unlock()
		return fmt.Errorf("calls: add %s: name already registered", c.Name)
	}
	r.entries[c.Name] = r.newEntry(c)
	r.mu.Unlock()
	r.notify(Change{Added: []Call{c}})
	return nil
}

// Replace registers c, replacing any call of the same name.
func (r *Router) Replace(c Call) error {
	if err := c.Validate(); err != nil {
		return err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	r.entries[c.Name] = r.newEntry(c)
	r.mu.Unlock()
	r.notify(Change{Added: []Call{c}})
	return nil
}

// Remove unregisters the named calls. Names that are not registered are
// ignored. Invocations already running finish normally.
func (r *Router) Remove(names ...string) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	var removed []string
	r.mu.Lock()
	for _, n := range names {
		if _, ok := r.entries[n]; ok {
			delete(r.entries, n)
			removed = append(removed, n)
		}
	}
	r.mu.Unlock()
	r.notify(Change{Removed: removed})
}

// Sync makes the calls of group exactly cs: it adds the new ones, replaces
// those whose definition changed, and removes the group's calls that are not
// in cs, then notifies subscribers once. A call in cs whose name belongs to
// another group, or that is invalid, is skipped and reported in the error;
// the rest are still applied.
func (r *Router) Sync(group string, cs []Call) (Change, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	var (
		ch   Change
		errs []error
		keep = map[string]bool{}
	)
	r.mu.Lock()
	for _, c := range cs {
		c.Group = group
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if keep[c.Name] {
			errs = append(errs, fmt.Errorf("calls: sync %s: %s listed twice", group, c.Name))
			continue
		}
		old, ok := r.entries[c.Name]
		if ok && old.call.Group != group {
			errs = append(errs, fmt.Errorf("calls: sync %s: %s is owned by group %q", group, c.Name, old.call.Group))
			continue
		}
		keep[c.Name] = true
		if ok && sameDefinition(&old.call, &c) {
			// Same tool as far as a client can tell: swap the handler
			// quietly, keeping the concurrency slots in use.
			e := r.newEntry(c)
			e.lim = old.lim
			r.entries[c.Name] = e
			continue
		}
		r.entries[c.Name] = r.newEntry(c)
		ch.Added = append(ch.Added, c)
	}
	for name, e := range r.entries {
		if e.call.Group == group && !keep[name] {
			delete(r.entries, name)
			ch.Removed = append(ch.Removed, name)
		}
	}
	r.mu.Unlock()
	slices.Sort(ch.Removed)
	r.notify(ch)
	return ch, errors.Join(errs...)
}

func sameDefinition(a, b *Call) bool {
	return a.Name == b.Name && a.Title == b.Title && a.Description == b.Description &&
		a.Kind == b.Kind && a.Timeout == b.Timeout && a.Concurrency == b.Concurrency &&
		a.ReadOnly == b.ReadOnly && a.Destructive == b.Destructive &&
		bytes.Equal(a.InputSchema, b.InputSchema) && bytes.Equal(a.OutputSchema, b.OutputSchema)
}

// Lookup returns the call registered under name.
func (r *Router) Lookup(name string) (Call, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[name]
	if !ok {
		return Call{}, false
	}
	return e.call, true
}

// List returns the registered calls, sorted by name.
func (r *Router) List() []Call {
	r.mu.RLock()
	out := make([]Call, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e.call)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Call) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Len returns the number of registered calls.
func (r *Router) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.entries)
}

// Subscribe calls fn with every later change, in order. Before Subscribe
// returns, fn receives one Change whose Added holds every call registered at
// that moment, so a subscriber never misses a call. fn runs on the goroutine
// that made the change and must not change the router itself. The returned
// function ends the subscription.
func (r *Router) Subscribe(fn func(Change)) (cancel func()) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	r.mu.Unlock()
	if all := r.List(); len(all) > 0 {
		fn(Change{Added: all})
	}
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

// notify runs with writeMu held.
func (r *Router) notify(ch Change) {
	if ch.Empty() {
		return
	}
	r.mu.RLock()
	ids := make([]int, 0, len(r.subs))
	for id := range r.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fns := make([]func(Change), 0, len(ids))
	for _, id := range ids {
		fns = append(fns, r.subs[id])
	}
	r.mu.RUnlock()
	for _, fn := range fns {
		fn(ch)
	}
	if r.observed() {
		r.emit(Event{Type: EventToolsChanged, Time: time.Now(), Change: &ch})
	}
}

// Call invokes the named call. req may be nil; its Call field is set by the
// router, and nil Session, Progress and Logger fields get defaults. A tool
// failure is a Result with IsError; an error means the call could not be made
// (ErrUnknownCall for a name that is not registered).
func (r *Router) Call(ctx context.Context, name string, req *Request) (*Result, error) {
	r.mu.RLock()
	e, ok := r.entries[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCall, name)
	}
	if req == nil {
		req = &Request{}
	}
	c := e.call
	req.Call = &c
	if req.Session == nil {
		req.Session = NewSession("")
	}
	if req.Progress == nil {
		req.Progress = NoProgress
	}
	if req.Logger == nil {
		req.Logger = slog.New(slog.DiscardHandler)
	}
	return e.h.Handle(ctx, req)
}

func (r *Router) newEntry(c Call) *entry {
	e := &entry{call: c}
	limit := c.Concurrency
	if limit == 0 {
		limit = r.opts.DefaultConcurrency
	}
	if limit > 0 {
		e.lim = newLimiter(c.Name, limit, queueConfig{
			length:  r.opts.QueueLength,
			share:   r.opts.SessionShare,
			timeout: r.opts.QueueTimeout,
		})
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = r.opts.DefaultTimeout
	}
	var h Handler = c.Handler
	for i := len(r.opts.Middleware) - 1; i >= 0; i-- {
		h = r.opts.Middleware[i](h)
	}
	h = Deadline(timeout)(h)
	h = limitMiddleware(e)(h)
	h = Recover(r.log)(h)
	h = r.observe(e)(h)
	e.h = h
	return e
}

// limitMiddleware enforces the entry's concurrency limit: past it, calls
// wait in the entry's fair queue (see limiter).
func limitMiddleware(e *entry) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Result, error) {
			if e.lim == nil {
				return next.Handle(ctx, req)
			}
			release, busy, err := e.lim.acquire(ctx, req)
			if busy != nil || err != nil {
				return busy, err
			}
			defer release()
			return next.Handle(ctx, req)
		})
	}
}

// errCallDeadline is the cause of a context that Deadline ended.
var errCallDeadline = errors.New("calls: the call's deadline passed")

// Deadline bounds each invocation to d. A handler that fails because that
// deadline passed gets a tool error that says so; one that fails because
// the caller's own deadline passed first gets the caller's error.
func Deadline(d time.Duration) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(parent context.Context, req *Request) (*Result, error) {
			ctx, cancel := context.WithTimeoutCause(parent, d, errCallDeadline)
			defer cancel()
			res, err := next.Handle(ctx, req)
			// Only this call's own deadline is reported as its timeout: a
			// caller whose deadline passed first gets its context's error.
			expired := parent.Err() == nil && context.Cause(ctx) == errCallDeadline
			if err != nil && expired && errors.Is(err, context.DeadlineExceeded) {
				res := Errorf("timeout: %s did not finish within %s", req.Call.Name, d)
				res.Outcome, res.Reason = OutcomeTimeout, ReasonTimeout
				return res, nil
			}
			if expired && err == nil && res != nil && res.IsError && res.Outcome == 0 {
				res.Outcome = OutcomeTimeout
			}
			return res, err
		})
	}
}

// Recover turns a panic in a handler into a tool error and logs the stack.
func Recover(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (res *Result, err error) {
			defer func() {
				if v := recover(); v != nil {
					log.Error("call panicked", "call", req.Call.Name, "panic", v, "stack", string(debug.Stack()))
					res, err = Errorf("internal error: %s failed unexpectedly (%v); the server is still running", req.Call.Name, v), nil
					res.Outcome, res.Reason = OutcomeError, ReasonPanic
				}
			}()
			return next.Handle(ctx, req)
		})
	}
}
