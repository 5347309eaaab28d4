package policy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/membrane-mcp/membrane/calls"
)

// A View is a router as clients see it: only the calls its Selector
// allows. It has the methods of a router that a transport adapter uses
// (Subscribe, Call, List, Len), filtered, and is safe for concurrent use.
// A call outside the selection is unknown through the View.
type View struct {
	r *calls.Router

	// mu orders the View's notifications: a change forwarded from the
	// router and a change of selector never interleave.
	mu      sync.Mutex
	sel     atomic.Pointer[Selector] // written with mu held
	subs    map[int]func(calls.Change)
	nextSub int
	unsub   func()
}

// NewView returns a View of r through sel (nil selects everything). Close
// ends it.
func NewView(r *calls.Router, sel *Selector) *View {
	v := &View{r: r, subs: map[int]func(calls.Change){}}
	v.sel.Store(sel)
	v.unsub = r.Subscribe(v.forward)
	return v
}

// Close stops following the router.
func (v *View) Close() { v.unsub() }

// Selector returns the selector in use.
func (v *View) Selector() *Selector { return v.sel.Load() }

func (v *View) allows(name string) bool { return v.sel.Load().Allows(name) }

// forward passes the router's changes on, filtered. It runs on the
// goroutine that changed the router.
func (v *View) forward(ch calls.Change) {
	v.mu.Lock()
	defer v.mu.Unlock()
	sel := v.sel.Load()
	out := calls.Change{Removed: ch.Removed}
	for _, c := range ch.Added {
		if sel.Allows(c.Name) {
			out.Added = append(out.Added, c)
		}
	}
	// A removal of a name the selector hides is passed on as well: it is
	// harmless to a subscriber that never had it, and needs no memory of
	// what was hidden when.
	v.notify(out)
}

// SetSelector changes the selection: calls it newly allows are announced as
// added, calls it now hides as removed, in one change.
func (v *View) SetSelector(sel *Selector) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.sel.Swap(sel)
	var ch calls.Change
	for _, c := range v.r.List() {
		was, is := old.Allows(c.Name), sel.Allows(c.Name)
		switch {
		case is && !was:
			ch.Added = append(ch.Added, c)
		case was && !is:
			ch.Removed = append(ch.Removed, c.Name)
		}
	}
	v.notify(ch)
}

// notify runs with mu held.
func (v *View) notify(ch calls.Change) {
	if ch.Empty() {
		return
	}
	ids := make([]int, 0, len(v.subs))
	for id := range v.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		v.subs[id](ch)
	}
}

// Subscribe calls fn with every later change to the selected set, in
// order, after one Change holding every call selected now. fn must not
// change the router or the View.
func (v *View) Subscribe(fn func(calls.Change)) (cancel func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id := v.nextSub
	v.nextSub++
	v.subs[id] = fn
	var all []calls.Call
	sel := v.sel.Load()
	for _, c := range v.r.List() {
		if sel.Allows(c.Name) {
			all = append(all, c)
		}
	}
	if len(all) > 0 {
		fn(calls.Change{Added: all})
	}
	return func() {
		v.mu.Lock()
		delete(v.subs, id)
		v.mu.Unlock()
	}
}

// List returns the selected calls, sorted by name.
func (v *View) List() []calls.Call {
	sel := v.sel.Load()
	return slices.DeleteFunc(v.r.List(), func(c calls.Call) bool { return !sel.Allows(c.Name) })
}

// Len returns the number of selected calls.
func (v *View) Len() int { return len(v.List()) }

// Call invokes name through the router when the selector allows it; any
// other name is calls.ErrUnknownCall, as if it were not registered.
func (v *View) Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error) {
	if !v.allows(name) {
		return nil, fmt.Errorf("%w %q", calls.ErrUnknownCall, name)
	}
	return v.r.Call(ctx, name, req)
}

// OpenSession opens a session on the router behind the View, so that
// sessions served through a selection are observed like any other.
func (v *View) OpenSession(id, client string) *calls.Session { return v.r.OpenSession(id, client) }
