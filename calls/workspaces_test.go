package calls

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(t *testing.T, o WorkspacesOptions) (*Workspaces, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	o.Now = clk.Now
	w := NewWorkspaces(&o)
	t.Cleanup(w.Close)
	return w, clk
}

// request returns a request on a session bound to w as owner.
func request(w *Workspaces, owner string, sessionless bool) *Request {
	s := NewSession("")
	s.BindWorkspaces(w, owner, sessionless)
	return &Request{Session: s}
}

func TestResolveWorkspaceSessionKeepsItsOwn(t *testing.T) {
	w, _ := newStore(t, WorkspacesOptions{})
	req := request(w, "", false)
	got, err := ResolveWorkspace(req, "")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if got.Session != req.Session || got.Handle != "" || got.New {
		t.Fatalf("a session without a handle got %+v, want its own session", got)
	}
	if w.Len() != 0 {
		t.Fatalf("%d handles made for a session's call, want 0", w.Len())
	}
}

func TestResolveWorkspaceSessionlessMakesHandleAndReusesIt(t *testing.T) {
	w, _ := newStore(t, WorkspacesOptions{})
	first, err := ResolveWorkspace(request(w, "alice", true), "")
	if err != nil {
		t.Fatal(err)
	}
	first.Release()
	if !first.New || !ValidWorkspaceHandle(first.Handle) {
		t.Fatalf("first sessionless call: %+v, want a new valid handle", first)
	}
	// A later request, with a session of its own, names the handle.
	req := request(w, "alice", true)
	again, err := ResolveWorkspace(req, first.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Release()
	if again.Session != first.Session || again.New || again.Handle != first.Handle {
		t.Fatalf("by handle: %+v, want the first call's session %p", again, first.Session)
	}
	if again.Session == req.Session {
		t.Fatal("the handle resolved to the request's throwaway session")
	}
	// A session (stateful client) may name a handle too.
	st, err := ResolveWorkspace(request(w, "alice", false), first.Handle)
	if err != nil || st.Session != first.Session {
		t.Fatalf("a stateful session naming the handle: %+v, %v", st, err)
	}
	st.Release()
}

func TestResolveWorkspaceForeignOwnerRefused(t *testing.T) {
	w, _ := newStore(t, WorkspacesOptions{})
	mine, err := ResolveWorkspace(request(w, "alice", true), "")
	if err != nil {
		t.Fatal(err)
	}
	mine.Release()

	_, err = ResolveWorkspace(request(w, "mallory", true), mine.Handle)
	if !errors.Is(err, ErrHandleForeign) {
		t.Fatalf("another owner's use of the handle: %v, want ErrHandleForeign", err)
	}
	// The text is the unknown-handle text: a probe learns nothing.
	_, unknown := ResolveWorkspace(request(w, "mallory", true), NewWorkspaceHandle())
	if !errors.Is(unknown, ErrHandleUnknown) {
		t.Fatalf("a never-made handle: %v", unknown)
	}
	if strings.ReplaceAll(err.Error(), mine.Handle, "H") != strings.ReplaceAll(unknown.Error(), unknownHandle(unknown), "H") {
		t.Fatalf("foreign and unknown differ:\n%v\n%v", err, unknown)
	}
	// Control: the owner still gets it.
	ok, err := ResolveWorkspace(request(w, "alice", true), mine.Handle)
	if err != nil || ok.Session != mine.Session {
		t.Fatalf("owner: %+v, %v", ok, err)
	}
	ok.Release()
}

func unknownHandle(err error) string {
	var he *WorkspaceHandleError
	errors.As(err, &he)
	return he.Handle
}

func TestResolveWorkspaceExpiresWhenIdle(t *testing.T) {
	w, clk := newStore(t, WorkspacesOptions{Idle: time.Minute})
	got, err := ResolveWorkspace(request(w, "", true), "")
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	got.Session.OnClose(func() { close(closed) })
	got.Release()

	clk.Add(59 * time.Second)
	w.Sweep()
	still, err := ResolveWorkspace(request(w, "", true), got.Handle)
	if err != nil {
		t.Fatalf("before the idle time: %v", err)
	}
	still.Release() // the idle time starts again here

	clk.Add(time.Minute)
	w.Sweep()
	<-closed // the workspace's cleanups ran
	_, err = ResolveWorkspace(request(w, "", true), got.Handle)
	if !errors.Is(err, ErrHandleExpired) {
		t.Fatalf("expired handle: %v, want ErrHandleExpired", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "expired after 1m0s") || !strings.Contains(msg, "leave workspace out") {
		t.Fatalf("expired handle message does not say what happened and what to do: %q", msg)
	}
	if w.Len() != 0 {
		t.Fatalf("%d handles after expiry", w.Len())
	}
}

func TestResolveWorkspaceInUseDoesNotExpire(t *testing.T) {
	w, clk := newStore(t, WorkspacesOptions{Idle: time.Minute})
	got, err := ResolveWorkspace(request(w, "", true), "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour) // a long call, not released
	w.Sweep()
	if got.Session.Closed() || w.Len() != 1 {
		t.Fatal("a workspace in use was closed")
	}
	got.Release()
	got.Release() // twice is harmless
	clk.Add(time.Minute)
	w.Sweep()
	if w.Len() != 0 {
		t.Fatal("released and idle, the handle stayed")
	}
}

func TestResolveWorkspaceBounds(t *testing.T) {
	w, _ := newStore(t, WorkspacesOptions{PerOwner: 2, Total: 3})
	for range 2 {
		r, err := ResolveWorkspace(request(w, "a", true), "")
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	_, err := ResolveWorkspace(request(w, "a", true), "")
	if !errors.Is(err, ErrTooManyWorkspaces) || !strings.Contains(err.Error(), "2 are open") {
		t.Fatalf("past the per-owner bound: %v", err)
	}
	// Another owner still gets one, up to the total.
	r, err := ResolveWorkspace(request(w, "b", true), "")
	if err != nil {
		t.Fatalf("another owner under the total: %v", err)
	}
	r.Release()
	_, err = ResolveWorkspace(request(w, "c", true), "")
	if !errors.Is(err, ErrTooManyWorkspaces) || !strings.Contains(err.Error(), "3 are open") {
		t.Fatalf("past the total: %v", err)
	}
}

func TestResolveWorkspaceRefusals(t *testing.T) {
	w, _ := newStore(t, WorkspacesOptions{})
	for _, h := range []string{"x", "ws_", "ws_abc", "ws_" + strings.Repeat("A", 25) + "1", "../etc"} {
		_, err := ResolveWorkspace(request(w, "", true), h)
		if !errors.Is(err, ErrHandleInvalid) {
			t.Errorf("%q: %v, want ErrHandleInvalid", h, err)
		}
	}
	// No store: a handle is refused, none is the session's own.
	req := &Request{Session: NewSession("")}
	if _, err := ResolveWorkspace(req, NewWorkspaceHandle()); !errors.Is(err, ErrNoHandles) {
		t.Fatalf("no store, a handle: %v", err)
	}
	if r, err := ResolveWorkspace(req, ""); err != nil || r.Session != req.Session {
		t.Fatalf("no store, no handle: %+v, %v", r, err)
	}
	// Closed store.
	made, err := ResolveWorkspace(request(w, "", true), "")
	if err != nil {
		t.Fatal(err)
	}
	made.Release()
	w.Close()
	if !made.Session.Closed() {
		t.Fatal("Close left a workspace open")
	}
	if _, err := ResolveWorkspace(request(w, "", true), made.Handle); err == nil {
		t.Fatal("a closed store resolved a handle")
	}
}

func TestWorkspaceHandlesDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		h := NewWorkspaceHandle()
		if !ValidWorkspaceHandle(h) || seen[h] {
			t.Fatalf("handle %q invalid or repeated", h)
		}
		seen[h] = true
	}
}

var handleShape = regexp.MustCompile(`^ws_[A-Z2-7]{26}$`)

// FuzzWorkspaceHandle: ValidWorkspaceHandle agrees with the schema's
// pattern, and no string a client makes up resolves to a workspace: only
// a handle the store made does, for its owner.
func FuzzWorkspaceHandle(f *testing.F) {
	f.Add("ws_ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	f.Add("ws_AAAAAAAAAAAAAAAAAAAAAAAAA2")
	f.Add("")
	f.Add("ws_\x00")
	w := NewWorkspaces(nil)
	defer w.Close()
	mine, err := ResolveWorkspace(request(w, "owner", true), "")
	if err != nil {
		f.Fatal(err)
	}
	mine.Release()
	f.Fuzz(func(t *testing.T, h string) {
		if ValidWorkspaceHandle(h) != handleShape.MatchString(h) {
			t.Fatalf("ValidWorkspaceHandle(%q) = %v, the pattern says otherwise", h, ValidWorkspaceHandle(h))
		}
		for _, owner := range []string{"owner", "other"} {
			r, err := ResolveWorkspace(request(w, owner, false), h)
			switch {
			case h == "":
				if err != nil || r.Handle != "" {
					t.Fatalf("no handle in a session: %+v, %v", r, err)
				}
			case h == mine.Handle && owner == "owner":
				if err != nil || r.Session != mine.Session {
					t.Fatalf("the owner's handle: %+v, %v", r, err)
				}
			default:
				var he *WorkspaceHandleError
				if err == nil || !errors.As(err, &he) {
					t.Fatalf("%q for %s resolved: %+v, %v", h, owner, r, err)
				}
				if strings.Contains(err.Error(), mine.Handle) && h != mine.Handle {
					t.Fatalf("error for %q names another handle: %v", h, err)
				}
			}
			r.Release()
		}
	})
}

// TestWorkspacesOwned: Owned lists an owner's handles in order, bounded by
// max; another owner's never appear (bob sees only his, alice only hers),
// and an expired one is gone.
func TestWorkspacesOwned(t *testing.T) {
	w, clk := newStore(t, WorkspacesOptions{Idle: time.Minute})
	mk := func(owner string) string {
		t.Helper()
		rw, err := ResolveWorkspace(request(w, owner, true), "")
		if err != nil {
			t.Fatal(err)
		}
		rw.Release()
		return rw.Handle
	}
	a1, a2, b1 := mk("alice"), mk("alice"), mk("bob")
	handles := func(owner string, max int) []string {
		var hs []string
		for _, o := range w.Owned(owner, max) {
			hs = append(hs, o.Handle)
		}
		return hs
	}
	want := []string{a1, a2}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if got := handles("alice", 0); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("alice's handles %v, want %v", got, want)
	}
	if got := handles("bob", 0); len(got) != 1 || got[0] != b1 {
		t.Fatalf("bob's handles %v, want only %s", got, b1)
	}
	if got := handles("alice", 1); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("alice's handles, at most 1: %v", got)
	}
	if got := handles("mallory", 0); len(got) != 0 {
		t.Fatalf("an owner with none: %v", got)
	}
	clk.Add(2 * time.Minute)
	if got := handles("alice", 0); len(got) != 0 {
		t.Fatalf("expired handles listed: %v", got)
	}
}
