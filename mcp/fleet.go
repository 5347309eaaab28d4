package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
)

// FleetServer is one MCP server a Fleet connects to. Make one with
// HTTPFleetServer or CommandFleetServer, or fill Dial yourself.
type FleetServer struct {
	// Name names the server in messages and in its router group; with
	// several servers it is the SERVER of SERVER__TOOL.
	Name string
	// Where says where the server is, for messages: a command line or a
	// URL.
	Where string
	// Dial returns a new transport to the server, and for a launched
	// server the command it starts (nil otherwise), whose process group
	// Fleet.Kill kills. It is called again for each reconnection.
	Dial func() (sdk.Transport, *exec.Cmd)
	// Transport is the OpenTelemetry network.transport of the connection:
	// "tcp" for HTTP, "pipe" for a launched server; "" when unknown.
	Transport string

	// refused records an HTTP server's first refusal of the last dial, so
	// that a failed connect can say why; nil for other servers.
	refused *statusRecorder
}

// HTTPFleetServer is the MCP server at url over streamable HTTP, sent
// token (when not empty) as a bearer token and the given headers. A
// connection it refuses fails with a *RefusedError.
func HTTPFleetServer(name, url, token string, headers map[string]string) FleetServer {
	rec := &statusRecorder{}
	return FleetServer{Name: name, Where: url, refused: rec, Transport: "tcp", Dial: func() (sdk.Transport, *exec.Cmd) {
		return rec.wrap(HTTPTransport(url, token, headers)), nil
	}}
}

// CommandFleetServer is a server launched over stdio: mk returns a new,
// unstarted command for each connection (see CommandTransport).
func CommandFleetServer(name string, mk func() *exec.Cmd) FleetServer {
	c := mk()
	return FleetServer{Name: name, Where: strings.Join(c.Args, " "), Transport: "pipe", Dial: func() (sdk.Transport, *exec.Cmd) {
		cmd := mk()
		return CommandTransport(cmd), cmd
	}}
}

// RefusedError is a connection an HTTP server refused with an HTTP status
// (401, 403, 404, ...). go-sdk v1.8.0 reports a refused initialize only as
// http.StatusText, with no code to match, so the code is taken off the
// response itself.
type RefusedError struct {
	URL    string
	Status int
	Err    error // what the SDK said
}

func (e *RefusedError) Error() string {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("it refused the token (HTTP %d)", e.Status)
	case http.StatusNotFound:
		return fmt.Sprintf("nothing serves MCP at that path (HTTP %d)", e.Status)
	}
	return e.Err.Error()
}

func (e *RefusedError) Unwrap() error { return e.Err }

// ErrNoServers is matched (errors.Is) by the error of Fleet.Start when no
// server could be reached.
var ErrNoServers = errors.New("no MCP server could be reached")

// ServerError is why one server of a fleet could not be connected.
type ServerError struct {
	Server, Where string
	Err           error
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("server %s (%s): %v", e.Server, e.Where, e.Err)
}
func (e *ServerError) Unwrap() error { return e.Err }

// NoServersError is the error of Fleet.Start when every server failed; it
// matches ErrNoServers.
type NoServersError struct{ Failed []*ServerError }

func (e *NoServersError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		parts[i] = f.Error()
	}
	return ErrNoServers.Error() + ": " + strings.Join(parts, "; ")
}

func (e *NoServersError) Is(target error) bool { return target == ErrNoServers }

// Unwrap returns each server's error, so that errors.As finds a
// *RefusedError or *NoAnswerError among them.
func (e *NoServersError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f
	}
	return out
}

// NoAnswerError is a server that did not finish connecting (initialize,
// then the first tools/list) within FleetOptions.ConnectTimeout. A
// launched server's process group has been killed by the time it is
// returned.
type NoAnswerError struct {
	Within time.Duration
	Err    error // what the client said when the bound ended
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("no answer within %gs: %v", e.Within.Seconds(), e.Err)
}
func (e *NoAnswerError) Unwrap() error { return e.Err }

// DefaultBackoff is the wait before each reconnection attempt when
// FleetOptions.Backoff is nil.
var DefaultBackoff = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second}

// DefaultConnectTimeout bounds one connection attempt when
// FleetOptions.ConnectTimeout is zero.
const DefaultConnectTimeout = 60 * time.Second

// FleetOptions configures NewFleet. A nil *FleetOptions, and each zero
// field, means the default.
type FleetOptions struct {
	// CallTimeout bounds each remote call (ClientOptions.CallTimeout).
	// Zero means the router's default.
	CallTimeout time.Duration
	// ConnectTimeout bounds one connection attempt: a server that has not
	// answered initialize and the first tools/list by then fails with a
	// *NoAnswerError, its process group killed. Zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ClientName is announced to the servers. Empty means
	// ClientOptions's default.
	ClientName string
	// Backoff is the wait before each reconnection attempt of a server
	// whose session ended; after the last, the server stays gone. Nil
	// means DefaultBackoff.
	Backoff []time.Duration
	// Say, when set, tells the user something: a server skipped, lost,
	// back. bad marks the unwelcome news. Nil means the Logger, at Warn
	// for bad news and Info otherwise.
	Say func(msg string, bad bool)
	// OnToolsChanged, when set, reports a server's changed tools.
	OnToolsChanged func(server string, ch calls.Change)
	// Advise, when set, rewrites each connection error before the fleet
	// shows or returns it: a program adds there what its user should do
	// (with its own settings' names). Nil leaves the errors as they are.
	Advise func(err error) error
	// Logger receives the clients' records. Nil discards.
	Logger *slog.Logger
}

// Fleet holds the connections to several MCP servers, with their tools in
// one router. A server that cannot be reached at start is skipped; one
// whose session ends (it exited, or broke the protocol with one bad frame)
// is reconnected with backoff. With more than one server the tools are
// named SERVER__TOOL.
type Fleet struct {
	router   *calls.Router
	opts     FleetOptions
	servers  []FleetServer
	prefix   bool
	prefixes map[string]string

	mu      sync.Mutex
	clients map[string]*Client
	cmds    []*exec.Cmd // every server launched, reconnections too
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

// NewFleet returns a fleet of servers whose tools go into r. Nothing is
// connected until Start.
func NewFleet(r *calls.Router, servers []FleetServer, opts *FleetOptions) *Fleet {
	f := &Fleet{router: r, servers: servers, clients: map[string]*Client{}, done: make(chan struct{})}
	if opts != nil {
		f.opts = *opts
	}
	if f.opts.Logger == nil {
		f.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if f.opts.Backoff == nil {
		f.opts.Backoff = DefaultBackoff
	}
	if f.opts.ConnectTimeout <= 0 {
		f.opts.ConnectTimeout = DefaultConnectTimeout
	}
	if f.opts.Say == nil {
		log := f.opts.Logger
		f.opts.Say = func(msg string, bad bool) {
			if bad {
				log.Warn(msg)
			} else {
				log.Info(msg)
			}
		}
	}
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = s.Name
	}
	f.prefix, f.prefixes = len(servers) > 1, ServerPrefixes(names)
	return f
}

// Start connects to every server in turn. A server that fails is skipped
// with a message; Start fails only when none is left (a *NoServersError),
// or with ctx's error when ctx ended.
func (f *Fleet) Start(ctx context.Context) error {
	var failed []*ServerError
	for _, s := range f.servers {
		err := f.connect(ctx, s)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failed = append(failed, &ServerError{Server: s.Name, Where: s.Where, Err: err})
			f.opts.Say(fmt.Sprintf("skipping server %s: %v", s.Name, err), true)
		}
	}
	if len(failed) == len(f.servers) {
		return &NoServersError{Failed: failed}
	}
	return nil
}

var errClosing = errors.New("the fleet is closing")

func (f *Fleet) connect(ctx context.Context, s FleetServer) error {
	t, cmd := s.Dial()
	cctx, cancel := context.WithTimeout(ctx, f.opts.ConnectTimeout)
	defer cancel()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errClosing
	}
	f.mu.Unlock()
	// A launched server that does not answer in time is killed, with its
	// process group, as soon as the bound ends: the client's own close
	// would wait on it (stdin closed, then SIGTERM, then SIGKILL, seconds
	// apart) and would leave its children running.
	var proc launched
	if cmd != nil {
		t = &launchTransport{Transport: t, cmd: cmd, proc: &proc}
	}
	stop := context.AfterFunc(cctx, proc.kill)
	c, err := Connect(cctx, t, f.router, &ClientOptions{
		Name:        s.Name,
		Prefix:      f.prefix,
		PrefixName:  f.prefixes[s.Name],
		CallTimeout: f.opts.CallTimeout,
		ClientName:  f.opts.ClientName,
		Logger:      f.opts.Logger,
		OnToolsChanged: func(ch calls.Change) {
			if f.opts.OnToolsChanged != nil {
				f.opts.OnToolsChanged(s.Name, ch)
			}
		},
		OnSessionEnd: func(err error) { f.lost(s, err) },
	})
	stop()
	if err != nil {
		proc.kill() // and whatever it started
		if cctx.Err() != nil && ctx.Err() == nil {
			err = &NoAnswerError{Within: f.opts.ConnectTimeout, Err: err}
		}
		if s.refused != nil {
			if st := int(s.refused.status.Load()); st != 0 {
				err = &RefusedError{URL: s.Where, Status: st, Err: err}
			}
		}
		if f.opts.Advise != nil {
			err = f.opts.Advise(err)
		}
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if cmd != nil {
		f.cmds = append(f.cmds, cmd) // started by now
	}
	if f.closed {
		go c.Close()
		return errClosing
	}
	f.clients[s.Name] = c
	return nil
}

// launched is the process a connection attempt started, once started.
type launched struct {
	mu  sync.Mutex
	pid int
}

// kill sends SIGKILL to the process group of the process, if it started.
func (l *launched) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pid != 0 {
		killGroup(l.pid)
	}
}

// launchTransport is a command's transport that records the process it
// started.
type launchTransport struct {
	sdk.Transport
	cmd  *exec.Cmd
	proc *launched
}

func (t *launchTransport) Connect(ctx context.Context) (sdk.Connection, error) {
	conn, err := t.Transport.Connect(ctx)
	if t.cmd.Process != nil {
		t.proc.mu.Lock()
		t.proc.pid = t.cmd.Process.Pid
		t.proc.mu.Unlock()
	}
	return conn, err
}

// lost reconnects a server whose session ended, with backoff.
func (f *Fleet) lost(s FleetServer, err error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	old := f.clients[s.Name]
	delete(f.clients, s.Name)
	f.wg.Add(1)
	f.mu.Unlock()
	why := ""
	if err != nil {
		why = fmt.Sprintf(" (%v)", err)
	}
	go func() {
		defer f.wg.Done()
		// Let the dead client's goroutines end before a new client takes
		// over its tools.
		if old != nil {
			old.Close()
		}
		for i, wait := range f.opts.Backoff {
			f.opts.Say(fmt.Sprintf("server %s ended%s; its tools are gone; reconnecting in %s (attempt %d of %d)", s.Name, why, wait, i+1, len(f.opts.Backoff)), true)
			select {
			case <-f.done:
				return
			case <-time.After(wait):
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-f.done:
				case <-ctx.Done():
				}
				cancel()
			}()
			err := f.connect(ctx, s)
			cancel()
			if err == nil {
				f.opts.Say(fmt.Sprintf("server %s is back: %d tools", s.Name, len(f.clientTools(s.Name))), false)
				return
			}
			why = fmt.Sprintf(" (reconnect: %v)", err)
		}
		f.opts.Say(fmt.Sprintf("server %s could not be reconnected; its tools stay gone until the program is restarted", s.Name), true)
	}()
}

func (f *Fleet) clientTools(name string) []ToolInfo {
	f.mu.Lock()
	c := f.clients[name]
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Tools()
}

// Tool says who a local tool name is: its server and its name there.
func (f *Fleet) Tool(local string) (ToolInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.clients {
		if t, ok := c.Tool(local); ok {
			return t, true
		}
	}
	return ToolInfo{}, false
}

// Transport returns the network.transport (FleetServer.Transport) of the
// server that holds the local tool name, or "" when none does.
func (f *Fleet) Transport(local string) string {
	t, ok := f.Tool(local)
	if !ok {
		return ""
	}
	for _, s := range f.servers {
		if s.Name == t.Server {
			return s.Transport
		}
	}
	return ""
}

// Tools lists the tools of every connected server, by local name.
func (f *Fleet) Tools() []ToolInfo {
	f.mu.Lock()
	cs := make([]*Client, 0, len(f.clients))
	for _, c := range f.clients {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	var out []ToolInfo
	for _, c := range cs {
		out = append(out, c.Tools()...)
	}
	slices.SortFunc(out, func(a, b ToolInfo) int { return strings.Compare(a.Local, b.Local) })
	return out
}

// Close ends every session politely (stdin closed, then SIGTERM, then
// SIGKILL for a launched server), stops reconnecting, and then kills what
// is left of each launched server's process group (children it left
// behind). Closing again does nothing.
func (f *Fleet) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.done)
	cs := make([]*Client, 0, len(f.clients))
	for _, c := range f.clients {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if err := c.Close(); err != nil {
				f.opts.Logger.Warn("close server", "server", c.Name(), "err", err)
			}
		})
	}
	wg.Wait()
	f.wg.Wait()
	f.Kill()
}

// Kill sends SIGKILL to the process group of every launched server (each
// has its own group, see CommandTransport), for a user who will not wait,
// or to what is left of it. (A group's ID is not reused while any member
// lives, so this never reaches a stranger.) It may be called while Close
// waits.
func (f *Fleet) Kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cmd := range f.cmds {
		if p := cmd.Process; p != nil {
			killGroup(p.Pid)
		}
	}
}

// statusRecorder remembers the status of the first HTTP response of 400 or
// more since its last wrap.
type statusRecorder struct {
	base   http.RoundTripper
	status atomic.Int32
}

func (s *statusRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err == nil && resp.StatusCode >= 400 {
		s.status.CompareAndSwap(0, int32(resp.StatusCode))
	}
	return resp, err
}

// wrap makes t, a streamable HTTP transport, record its refusals in s.
func (s *statusRecorder) wrap(t sdk.Transport) sdk.Transport {
	st, ok := t.(*sdk.StreamableClientTransport)
	if !ok {
		return t
	}
	s.status.Store(0)
	hc := &http.Client{}
	if st.HTTPClient != nil {
		*hc = *st.HTTPClient
	}
	if s.base == nil {
		s.base = hc.Transport
		if s.base == nil {
			s.base = http.DefaultTransport
		}
	}
	hc.Transport = s
	cp := *st
	cp.HTTPClient = hc
	return &cp
}
