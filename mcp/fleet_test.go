package mcp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// memServer is a fleet server over in-memory transports: each dial
// connects a new session of a bare go-sdk server, and sessions holds them
// so that a test can end one.
type memServer struct {
	t        *testing.T
	srv      *sdk.Server
	mu       sync.Mutex
	sessions []*sdk.ServerSession
}

func (m *memServer) fleetServer(name string) mcp.FleetServer {
	return mcp.FleetServer{Name: name, Where: "memory", Dial: func() (sdk.Transport, *exec.Cmd) {
		st, ct := sdk.NewInMemoryTransports()
		ss, err := m.srv.Connect(context.Background(), st, nil)
		if err != nil {
			m.t.Errorf("server connect: %v", err)
		}
		m.mu.Lock()
		m.sessions = append(m.sessions, ss)
		m.mu.Unlock()
		return ct, nil
	}}
}

func (m *memServer) last() *sdk.ServerSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[len(m.sessions)-1]
}

// refusing is an HTTP server that answers every request with status.
func refusing(t *testing.T, status int) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, http.StatusText(status), status)
	}))
	t.Cleanup(hs.Close)
	return hs.URL + "/mcp"
}

// says collects a fleet's messages.
type says struct {
	mu   sync.Mutex
	msgs []string
	ch   chan string
}

func newSays() *says { return &says{ch: make(chan string, 64)} }

func (s *says) say(msg string, bad bool) {
	s.mu.Lock()
	s.msgs = append(s.msgs, fmt.Sprintf("%v %s", bad, msg))
	s.mu.Unlock()
	s.ch <- msg
}

func (s *says) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.msgs, "\n")
}

// TestFleetSkipsARefusingServer: a server that refuses is skipped with a
// typed RefusedError (which Advise may add to), the others' tools are
// prefixed with their server's name; a fleet of one (the control) is not.
func TestFleetSkipsARefusingServer(t *testing.T) {
	t.Parallel()
	good := &memServer{t: t, srv: mcptest.BareServer()}
	r := calls.NewRouter(nil)
	s := newSays()
	var advised []error
	fl := mcp.NewFleet(r, []mcp.FleetServer{
		good.fleetServer("good"),
		mcp.HTTPFleetServer("bad", refusing(t, http.StatusUnauthorized), "tok", nil),
	}, &mcp.FleetOptions{Say: s.say, Advise: func(err error) error {
		advised = append(advised, err)
		return fmt.Errorf("%w (advice)", err)
	}})
	defer fl.Close()
	if err := fl.Start(t.Context()); err != nil {
		t.Fatalf("Start with one good server: %v", err)
	}
	if len(advised) != 1 {
		t.Fatalf("Advise saw %d errors, want 1 (the refusal)", len(advised))
	}
	var re *mcp.RefusedError
	if !errors.As(advised[0], &re) || re.Status != http.StatusUnauthorized {
		t.Errorf("the refusal is %v, want a *RefusedError with 401", advised[0])
	}
	if got := s.all(); !strings.Contains(got, "true skipping server bad: it refused the token (HTTP 401) (advice)") {
		t.Errorf("messages %q do not say the bad server was skipped, with the advice", got)
	}
	var names []string
	for _, ti := range fl.Tools() {
		names = append(names, ti.Local)
	}
	if !slices.Equal(names, []string{"good__noop"}) {
		t.Errorf("tools %v, want [good__noop]", names)
	}
	if ti, ok := fl.Tool("good__noop"); !ok || ti.Server != "good" || ti.Name != "noop" {
		t.Errorf("Tool(good__noop) = %+v, %v", ti, ok)
	}
	if _, ok := r.Lookup("good__noop"); !ok {
		t.Error("the router lacks good__noop")
	}

	one := mcp.NewFleet(calls.NewRouter(nil), []mcp.FleetServer{good.fleetServer("good")}, nil)
	defer one.Close()
	if err := one.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ts := one.Tools(); len(ts) != 1 || ts[0].Local != "noop" {
		t.Errorf("a fleet of one: tools %+v, want noop unprefixed", ts)
	}
}

// TestFleetNoServers: when every server fails, Start says which and why,
// matching ErrNoServers.
func TestFleetNoServers(t *testing.T) {
	t.Parallel()
	fl := mcp.NewFleet(calls.NewRouter(nil), []mcp.FleetServer{
		mcp.HTTPFleetServer("a", refusing(t, http.StatusNotFound), "", nil),
		mcp.HTTPFleetServer("b", refusing(t, http.StatusForbidden), "", nil),
	}, nil)
	defer fl.Close()
	err := fl.Start(t.Context())
	if !errors.Is(err, mcp.ErrNoServers) {
		t.Fatalf("Start: %v, want ErrNoServers", err)
	}
	var ns *mcp.NoServersError
	if !errors.As(err, &ns) || len(ns.Failed) != 2 || ns.Failed[0].Server != "a" || ns.Failed[1].Server != "b" {
		t.Fatalf("Start: %#v, want both servers named", err)
	}
	if !strings.Contains(err.Error(), "nothing serves MCP at that path (HTTP 404)") || !strings.Contains(err.Error(), "it refused the token (HTTP 403)") {
		t.Errorf("Start: %q does not say why each failed", err)
	}
}

// TestFleetReconnects: a session that ends is reconnected after the
// backoff, and the tools come back; a fleet closed while waiting stops.
func TestFleetReconnects(t *testing.T) {
	t.Parallel()
	m := &memServer{t: t, srv: mcptest.BareServer()}
	r := calls.NewRouter(nil)
	s := newSays()
	fl := mcp.NewFleet(r, []mcp.FleetServer{m.fleetServer("m")}, &mcp.FleetOptions{Say: s.say, Backoff: []time.Duration{time.Millisecond}})
	if err := fl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.last().Close()
	want := []string{"server m ended", "server m is back: 1 tools"}
	for _, w := range want {
		select {
		case msg := <-s.ch:
			if !strings.HasPrefix(msg, w) {
				t.Fatalf("message %q, want %q…", msg, w)
			}
		case <-t.Context().Done():
			t.Fatal("no reconnection")
		}
	}
	if _, ok := r.Lookup("noop"); !ok {
		t.Error("noop is not back in the router")
	}
	if _, ok := fl.Tool("noop"); !ok {
		t.Error("the fleet does not know noop after the reconnection")
	}

	// Closed while the backoff waits: no more attempts, Close returns.
	slow := mcp.NewFleet(calls.NewRouter(nil), []mcp.FleetServer{m.fleetServer("m")}, &mcp.FleetOptions{Say: s.say, Backoff: []time.Duration{time.Hour}})
	if err := slow.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.last().Close()
	if msg := <-s.ch; !strings.HasPrefix(msg, "server m ended") {
		t.Fatalf("message %q", msg)
	}
	slow.Close()
	fl.Close()
	select {
	case msg := <-s.ch:
		t.Errorf("a message after Close: %q", msg)
	default:
	}
}
