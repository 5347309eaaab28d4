package calls

import (
	"crypto/rand"
	"strings"
	"sync"
)

// Session is one client connection's view of the router. Components that keep
// per-session state (the sandbox's workspace, for one) register a cleanup
// with OnClose; the transport adapter closes the session when the client goes
// away.
type Session struct {
	id     string
	client string // the client's name, when the transport knows it
	peer   Peer   // set by the transport before the session's first call

	done    chan struct{} // closed by End
	endOnce sync.Once

	mu        sync.Mutex
	closed    bool
	closers   []func()
	workspace string
	handle    string
	handles   workspaceBinding
}

// Peer is what the transport knows of the client behind a session, for
// the records: none of it decides anything.
type Peer struct {
	// Protocol is the MCP protocol version the client speaks ("" when
	// unknown).
	Protocol string
	// TokenName names the scoped token (of a tokens file) the client
	// presented; never the token itself. "" without one.
	TokenName string
	// Sessionless is set for a client of the sessionless protocol
	// (2026-07-28 over HTTP): its session lasts one request, and its ID
	// names nothing the client knows.
	Sessionless bool
}

// SetPeer records what the transport knows of the client. Call it before
// the session's first call; it is read without a lock.
func (s *Session) SetPeer(p Peer) { s.peer = p }

// Peer returns what SetPeer recorded.
func (s *Session) Peer() Peer { return s.peer }

// NewSession returns an open session. An empty id gets a random one.
func NewSession(id string) *Session {
	if id == "" {
		id = "s-" + rand.Text()[:12]
	}
	return &Session{id: id, done: make(chan struct{})}
}

// End marks the session as gone, before its calls are cancelled: calls of
// it still waiting for a slot leave their queue at once and never run.
// Close calls End. Calling End again does nothing.
func (s *Session) End() {
	if s.done == nil {
		return // a zero Session
	}
	s.endOnce.Do(func() { close(s.done) })
}

// Done returns a channel closed when the session ends.
func (s *Session) Done() <-chan struct{} { return s.done }

// ID returns the session's identifier, safe to log.
func (s *Session) ID() string { return s.id }

// Client returns the name the client gave for itself (MCP's clientInfo), or
// "" when unknown. Router.OpenSession sets it.
func (s *Session) Client() string { return s.client }

// OnClose arranges for f to run when the session closes. On a session that is
// already closed, f runs at once.
func (s *Session) OnClose(f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f()
		return
	}
	s.closers = append(s.closers, f)
	s.mu.Unlock()
}

// Close runs the registered cleanups, last registered first, and marks the
// session closed. Calling Close again does nothing.
func (s *Session) Close() {
	s.End()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	fs := s.closers
	s.closers = nil
	s.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Closed reports whether Close has been called.
func (s *Session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Workspace returns the directory the sandbox keeps for this session's files,
// or "" when it has made none yet. Model calls read it to resolve workspace
// paths (an image a vision model should see, say).
func (s *Session) Workspace() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workspace
}

// SetWorkspace records the session's workspace directory.
func (s *Session) SetWorkspace(dir string) {
	s.mu.Lock()
	s.workspace = dir
	s.mu.Unlock()
}

// WorkspaceHandle returns the name of the session's workspace in workspace
// URIs (see WorkspaceURI): random and unguessable, made on first use, the
// same for the life of the session.
func (s *Session) WorkspaceHandle() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handle == "" {
		s.handle = "w" + strings.ToLower(rand.Text())
	}
	return s.handle
}
