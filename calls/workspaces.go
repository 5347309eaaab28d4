package calls

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Workspace handles.
//
// A client of the sessionless protocol (MCP 2026-07-28 over HTTP, or any
// request to a stateless server) has no session whose workspace could last
// from one call to the next. It carries a handle instead: a call without one
// gets a fresh workspace, its result returns the handle, and a later call
// that passes it as its "workspace" argument works in the same directory.
//
// A handle is unguessable (130 random bits), bound to the owner (the bearer
// token's user) that made it, closed after it has been idle for a while, and
// bounded in number per owner and in total. Behind each handle is a Session
// of its own: the sandbox keeps the workspace of that session exactly as it
// keeps a connection's, and closing it (expiry, Workspaces.Close) removes
// the directory.
//
// With sessions (stdio, stateful HTTP), a call without a handle keeps using
// its session's workspace; a handle, when given, still works.

// Defaults used where WorkspacesOptions leaves a field zero.
const (
	DefaultWorkspaceIdle        = 30 * time.Minute
	DefaultWorkspacesPerOwner   = 16
	DefaultWorkspacesTotal      = 128
	workspaceHandlePrefix       = "ws_"
	workspaceHandleRandomLength = 26 // rand.Text: 26 base32 characters, 130 bits
	maxTombstones               = 4096
)

// WorkspaceArg is the name of the tool argument that carries a handle.
const WorkspaceArg = "workspace"

// WorkspaceArgSchema is the JSON Schema of the "workspace" argument, for a
// tool's input schema.
const WorkspaceArgSchema = `{"type": "string", "pattern": "^ws_[A-Z2-7]{26}$", "description": "A workspace handle (ws_...) from an earlier result: work on the files left there. Left out: this session's workspace, or a new one (its handle in the result) without a session."}`

// WorkspaceHint is the sentence a tool description adds to tell a model how
// to carry a handle. It is short: the "workspace" argument's own
// description (WorkspaceArgSchema) says the rest, in the same tool.
const WorkspaceHint = `To keep the same files in later sh, python_run or file calls, pass the "workspace" handle each result names.`

// Errors of Resolve, matched with errors.Is; a *WorkspaceHandleError
// carries one.
var (
	// ErrHandleInvalid: the argument is not a workspace handle at all.
	ErrHandleInvalid = errors.New("not a workspace handle")
	// ErrHandleUnknown: no such handle (never made, or long gone).
	ErrHandleUnknown = errors.New("unknown workspace handle")
	// ErrHandleExpired: the handle was closed after being idle.
	ErrHandleExpired = errors.New("the workspace handle expired")
	// ErrHandleForeign: the handle belongs to another token. Its text is
	// the same as ErrHandleUnknown's, so a probe learns nothing.
	ErrHandleForeign = errors.New("the workspace handle belongs to another token")
	// ErrTooManyWorkspaces: making one more would pass a bound.
	ErrTooManyWorkspaces = errors.New("too many workspaces")
	// ErrNoHandles: the server keeps no handles (no store).
	ErrNoHandles = errors.New("this server keeps no workspace handles")
)

// WorkspaceHandleError is the error of Resolve. Its text says what was
// wrong and what to do, and can go back to a model as it is.
type WorkspaceHandleError struct {
	Handle string        // as given (shortened when long)
	Err    error         // one of the ErrHandle* values or ErrTooManyWorkspaces, ErrNoHandles
	Idle   time.Duration // the idle timeout, for ErrHandleExpired
	Limit  int           // the bound passed, for ErrTooManyWorkspaces
}

func (e *WorkspaceHandleError) Error() string {
	h := e.Handle
	if len(h) > 40 {
		h = h[:40] + "..."
	}
	switch {
	case errors.Is(e.Err, ErrHandleInvalid):
		return fmt.Sprintf("workspace %q is not a workspace handle: give the ws_... value an earlier result returned, or leave workspace out", h)
	case errors.Is(e.Err, ErrHandleExpired):
		return fmt.Sprintf("workspace %s expired after %s without a call, and its files are gone: leave workspace out to get a new one", h, e.Idle)
	case errors.Is(e.Err, ErrHandleUnknown), errors.Is(e.Err, ErrHandleForeign):
		return fmt.Sprintf("workspace %s is not a workspace of this token (unknown, or closed when the server restarted): leave workspace out to get a new one", h)
	case errors.Is(e.Err, ErrTooManyWorkspaces):
		return fmt.Sprintf("no new workspace: %d are open, the most allowed; pass the handle of one you have as workspace, or wait until idle ones expire", e.Limit)
	case errors.Is(e.Err, ErrNoHandles):
		return "this server keeps no workspace handles: leave workspace out, and the call uses this connection's workspace"
	}
	return "workspace " + h + ": " + e.Err.Error()
}

func (e *WorkspaceHandleError) Unwrap() error { return e.Err }

// WorkspacesOptions configures a Workspaces. A nil *WorkspacesOptions means
// the defaults.
type WorkspacesOptions struct {
	// Idle closes a handle's workspace after no call used it for that
	// long. Zero means DefaultWorkspaceIdle.
	Idle time.Duration
	// PerOwner bounds the open handles of one owner. Zero means
	// DefaultWorkspacesPerOwner.
	PerOwner int
	// Total bounds the open handles of all owners. Zero means
	// DefaultWorkspacesTotal.
	Total int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Workspaces is the store of workspace handles. Create one with
// NewWorkspaces; it is safe for concurrent use. Close it to close every
// handle's workspace.
type Workspaces struct {
	idle            time.Duration
	perOwner, total int
	now             func() time.Time

	mu      sync.Mutex
	closed  bool
	handles map[string]*handleEntry
	owned   map[string]int
	tombs   map[string]tomb // expired handles, so that their error says so
	timer   *time.Timer
}

type handleEntry struct {
	owner string
	sess  *Session
	last  time.Time
	inUse int
}

type tomb struct {
	owner string
	at    time.Time
}

// NewWorkspaces returns an empty store.
func NewWorkspaces(opts *WorkspacesOptions) *Workspaces {
	var o WorkspacesOptions
	if opts != nil {
		o = *opts
	}
	if o.Idle <= 0 {
		o.Idle = DefaultWorkspaceIdle
	}
	if o.PerOwner <= 0 {
		o.PerOwner = DefaultWorkspacesPerOwner
	}
	if o.Total <= 0 {
		o.Total = DefaultWorkspacesTotal
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Workspaces{
		idle: o.Idle, perOwner: o.PerOwner, total: o.Total, now: o.Now,
		handles: map[string]*handleEntry{}, owned: map[string]int{}, tombs: map[string]tomb{},
	}
}

// ResolvedWorkspace is the answer of ResolveWorkspace: the session whose
// workspace a call uses. Release it when the call is done.
type ResolvedWorkspace struct {
	// Session owns the workspace: the request's own session, or the
	// session behind a handle. Its Workspace() is the directory once a
	// sandbox has made it.
	Session *Session
	// Handle is the handle the call uses, or "" for the session's own
	// workspace. A result names it so that the model can carry it on.
	Handle string
	// New is set when this call made the handle.
	New bool

	release func()
}

// Release marks the call done with the workspace: a handle's idle time
// starts again from now. Releasing twice, or a nil one, does nothing.
func (r *ResolvedWorkspace) Release() {
	if r == nil || r.release == nil {
		return
	}
	f := r.release
	r.release = nil
	f()
}

// ResolveWorkspace is THE function a tool that works in a workspace calls,
// with the "workspace" argument the request carried ("" when none): it
// returns the session whose workspace the call uses.
//
//   - A handle: the handle's workspace, if it exists, has not expired and
//     belongs to the request's owner; otherwise a *WorkspaceHandleError.
//   - No handle, in a session (stdio, stateful HTTP): the session's own
//     workspace, as always.
//   - No handle, in a sessionless request: a new handle and its workspace
//     (New is set), or ErrTooManyWorkspaces.
//
// The store is the one the transport bound to the request's session (see
// Session.BindWorkspaces); a session without one serves no handles.
func ResolveWorkspace(req *Request, handle string) (*ResolvedWorkspace, error) {
	sess := req.Session
	var b workspaceBinding
	if sess != nil {
		b = sess.workspaceBinding()
	}
	if b.store == nil {
		if handle != "" {
			return nil, &WorkspaceHandleError{Handle: handle, Err: ErrNoHandles}
		}
		return &ResolvedWorkspace{Session: sess}, nil
	}
	return b.store.resolve(sess, b.owner, b.sessionless, handle)
}

func (w *Workspaces) resolve(sess *Session, owner string, sessionless bool, handle string) (*ResolvedWorkspace, error) {
	if handle == "" && !sessionless {
		return &ResolvedWorkspace{Session: sess}, nil
	}
	if handle != "" && !ValidWorkspaceHandle(handle) {
		return nil, &WorkspaceHandleError{Handle: handle, Err: ErrHandleInvalid}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, &WorkspaceHandleError{Handle: handle, Err: ErrHandleUnknown}
	}
	now := w.now()
	w.sweepLocked(now)
	if handle != "" {
		e, ok := w.handles[handle]
		if !ok {
			if t, dead := w.tombs[handle]; dead && t.owner == owner {
				return nil, &WorkspaceHandleError{Handle: handle, Err: ErrHandleExpired, Idle: w.idle}
			}
			return nil, &WorkspaceHandleError{Handle: handle, Err: ErrHandleUnknown}
		}
		if e.owner != owner {
			return nil, &WorkspaceHandleError{Handle: handle, Err: ErrHandleForeign}
		}
		e.inUse++
		return &ResolvedWorkspace{Session: e.sess, Handle: handle, release: w.releaser(e)}, nil
	}
	if len(w.handles) >= w.total {
		return nil, &WorkspaceHandleError{Err: ErrTooManyWorkspaces, Limit: w.total}
	}
	if w.owned[owner] >= w.perOwner {
		return nil, &WorkspaceHandleError{Err: ErrTooManyWorkspaces, Limit: w.perOwner}
	}
	handle = NewWorkspaceHandle()
	e := &handleEntry{owner: owner, sess: NewSession("w-" + rand.Text()[:12]), last: now, inUse: 1}
	w.handles[handle] = e
	w.owned[owner]++
	w.armLocked()
	return &ResolvedWorkspace{Session: e.sess, Handle: handle, New: true, release: w.releaser(e)}, nil
}

func (w *Workspaces) releaser(e *handleEntry) func() {
	return func() {
		w.mu.Lock()
		e.inUse--
		e.last = w.now()
		w.mu.Unlock()
	}
}

// sweepLocked closes the handles idle for longer than w.idle. The sessions
// close off the lock: their cleanups (a sandbox removing a directory) can
// be slow.
func (w *Workspaces) sweepLocked(now time.Time) {
	var gone []*Session
	for h, e := range w.handles {
		if e.inUse == 0 && now.Sub(e.last) >= w.idle {
			gone = append(gone, e.sess)
			w.dropLocked(h, e, now)
		}
	}
	if len(gone) > 0 {
		go closeAll(gone)
	}
}

func (w *Workspaces) dropLocked(h string, e *handleEntry, now time.Time) {
	delete(w.handles, h)
	if w.owned[e.owner]--; w.owned[e.owner] <= 0 {
		delete(w.owned, e.owner)
	}
	if len(w.tombs) >= maxTombstones {
		// Forget the oldest half: an expired handle that old gets the
		// unknown-handle answer, which is still true.
		type aged struct {
			h  string
			at time.Time
		}
		all := make([]aged, 0, len(w.tombs))
		for k, t := range w.tombs {
			all = append(all, aged{k, t.at})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
		for _, a := range all[:len(all)/2] {
			delete(w.tombs, a.h)
		}
	}
	w.tombs[h] = tomb{owner: e.owner, at: now}
}

func closeAll(ss []*Session) {
	for _, s := range ss {
		s.Close()
	}
}

// armLocked makes sure a sweep runs while any handle is open, so that an
// idle workspace is removed even when no call comes to trigger it.
func (w *Workspaces) armLocked() {
	if w.timer != nil || w.closed || len(w.handles) == 0 {
		return
	}
	every := max(w.idle/4, time.Second)
	w.timer = time.AfterFunc(every, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.timer = nil
		if w.closed {
			return
		}
		w.sweepLocked(w.now())
		w.armLocked()
	})
}

// Sweep closes the handles idle for longer than the idle timeout now,
// rather than at the next periodic sweep.
func (w *Workspaces) Sweep() {
	w.mu.Lock()
	w.sweepLocked(w.now())
	w.mu.Unlock()
}

// Len is the number of open handles.
func (w *Workspaces) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.handles)
}

// Close closes every handle's workspace and refuses handles from then on.
// Closing twice does nothing.
func (w *Workspaces) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	ss := make([]*Session, 0, len(w.handles))
	for _, e := range w.handles {
		ss = append(ss, e.sess)
	}
	w.handles, w.owned = map[string]*handleEntry{}, map[string]int{}
	w.mu.Unlock()
	closeAll(ss)
}

// NewWorkspaceHandle returns a fresh random handle.
func NewWorkspaceHandle() string {
	return workspaceHandlePrefix + rand.Text()
}

// ValidWorkspaceHandle reports whether h has the form of a handle: "ws_"
// and 26 characters of the base32 alphabet (A-Z, 2-7).
func ValidWorkspaceHandle(h string) bool {
	rest, ok := strings.CutPrefix(h, workspaceHandlePrefix)
	if !ok || len(rest) != workspaceHandleRandomLength {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// workspaceBinding is what a transport tells a session about handles.
type workspaceBinding struct {
	store       *Workspaces
	owner       string
	sessionless bool
}

// BindWorkspaces tells s which handle store its calls resolve handles in,
// who owns the handles they make (the bearer token's user, "" for a single
// token or none), and whether s is the throwaway session of one
// sessionless request, whose calls get a new handle when they name none.
// The transport calls it before the session's first call.
func (s *Session) BindWorkspaces(store *Workspaces, owner string, sessionless bool) {
	s.mu.Lock()
	s.handles = workspaceBinding{store: store, owner: owner, sessionless: sessionless}
	s.mu.Unlock()
}

func (s *Session) workspaceBinding() workspaceBinding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handles
}

// OwnedWorkspace is one entry of Workspaces.Owned.
type OwnedWorkspace struct {
	Handle string
	// Dir is the workspace directory, "" while no sandbox has made it.
	Dir string
}

// Owned lists the open handles of owner in the order of their handles, at
// most max of them (at most the per-owner bound; max <= 0 means that
// bound). Listing is not a use: it does not restart a handle's idle time.
// Another owner's handles never appear.
func (w *Workspaces) Owned(owner string, max int) []OwnedWorkspace {
	if max <= 0 || max > w.perOwner {
		max = w.perOwner
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.sweepLocked(w.now())
	var sess []*Session
	var out []OwnedWorkspace
	for h, e := range w.handles {
		if e.owner == owner {
			out = append(out, OwnedWorkspace{Handle: h})
			sess = append(sess, e.sess)
		}
	}
	w.mu.Unlock()
	// Workspace() takes the session's lock: ask off the store's.
	for i := range out {
		out[i].Dir = sess[i].Workspace()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Handle < out[j].Handle })
	if len(out) > max {
		out = out[:max]
	}
	return out
}
