package mcp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults for the bounds of the HTTP listener, used where HTTPOptions or
// ListenOptions leave a field zero.
const (
	// DefaultMaxSessions bounds the stateful sessions open at once.
	DefaultMaxSessions = 256
	// DefaultMaxSessionsPerToken bounds the sessions one token (one
	// identity; all unauthenticated clients share one) holds at once.
	DefaultMaxSessionsPerToken = 128
	// DefaultMaxInitializeBytes caps the body of an initialize request
	// (and of any request without a session): a session keeps the
	// client's clientInfo and capabilities for its life, at about three
	// times their size.
	DefaultMaxInitializeBytes = 16 << 10
	// DefaultBodyReadTimeout bounds the time to read one request body.
	DefaultBodyReadTimeout = 30 * time.Second
	// DefaultWriteStallTimeout bounds how long one write to a client may
	// block (a client that stops reading). It is not a bound on a
	// response's length: a long SSE stream lives as long as it is read.
	DefaultWriteStallTimeout = 30 * time.Second

	// DefaultReadHeaderTimeout bounds the time to read a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection idle this long.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxHeaderBytes caps a request's headers.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxConns bounds the connections served at once; further
	// connections wait in the kernel's accept queue.
	DefaultMaxConns = 1024
)

// JSON-RPC error codes of the HTTP layer, beside the standard ones.
const (
	// CodeSessionNotFound answers a request for a session that expired
	// or never existed (HTTP 404): initialize again.
	CodeSessionNotFound = -32001
	// CodeTooManySessions answers an initialize when the server (HTTP
	// 503) or the caller's token (HTTP 429) holds its maximum of
	// sessions. Retry-After says when to try again; closing idle
	// sessions (DELETE) frees room at once.
	CodeTooManySessions = -32005
)

// ListenOptions bounds the connections of an HTTP listener. A nil
// *ListenOptions means the defaults; each field's zero value means its
// default, and a negative duration means no limit.
type ListenOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers. Zero means
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request in
	// flight for that long. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's headers; larger gets 431. Zero
	// means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxConns bounds the connections served at once. Zero means
	// DefaultMaxConns; negative means no bound.
	MaxConns int
}

func (o *ListenOptions) withDefaults() ListenOptions {
	var v ListenOptions
	if o != nil {
		v = *o
	}
	v.ReadHeaderTimeout = orDefault(v.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	v.IdleTimeout = orDefault(v.IdleTimeout, DefaultIdleTimeout)
	if v.MaxHeaderBytes <= 0 {
		v.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if v.MaxConns == 0 {
		v.MaxConns = DefaultMaxConns
	}
	return v
}

// orDefault maps zero to def and a negative duration to zero (none).
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// NewHTTPServer returns an *http.Server for h with the timeouts of o. It
// sets no ReadTimeout or WriteTimeout: those would end long-running calls
// and SSE streams; the handler of Server.HTTPHandler bounds the reading of
// each body and each write itself. Serve it on Listen(ln, o).
func NewHTTPServer(h http.Handler, o *ListenOptions) *http.Server {
	v := o.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: v.ReadHeaderTimeout,
		IdleTimeout:       v.IdleTimeout,
		MaxHeaderBytes:    v.MaxHeaderBytes,
	}
}

// Listen wraps ln so that at most o.MaxConns connections are open at once:
// Accept waits while that many are open, so further clients wait in the
// kernel's queue rather than costing the server anything.
func Listen(ln net.Listener, o *ListenOptions) net.Listener {
	v := o.withDefaults()
	if v.MaxConns < 0 {
		return ln
	}
	return &limitListener{Listener: ln, sem: make(chan struct{}, v.MaxConns), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// identity names who a request acts for, for the per-token bounds: a
// digest of its bearer token, or "anonymous" without one. A later policy
// with several scoped tokens keys its bounds the same way.
func identity(token string) string {
	if token == "" {
		return "anonymous"
	}
	sum := sha256.Sum256([]byte(token))
	return "token:" + hex.EncodeToString(sum[:8])
}

// sessionLimiter counts the stateful sessions, in all and per identity.
type sessionLimiter struct {
	max, perOwner int // <= 0: no bound

	mu      sync.Mutex
	total   int
	byOwner map[string]int
}

// limitError says which bound refused a session.
type limitError struct {
	perOwner bool
	limit    int
}

func (e *limitError) Error() string {
	if e.perOwner {
		return fmt.Sprintf("too many sessions for this token: it holds its maximum of %d; close sessions you no longer use (DELETE with their Mcp-Session-Id) or wait for idle ones to expire", e.limit)
	}
	return fmt.Sprintf("too many sessions: the server holds its maximum of %d; try again later", e.limit)
}

// reserve takes one session slot for owner, or says which bound is full.
// The caller gives the slot back with release exactly once.
// A positive own is the owner's own bound, in place of perOwner.
func (l *sessionLimiter) reserve(owner string, own int) *limitError {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return &limitError{limit: l.max}
	}
	per := l.perOwner
	if own > 0 {
		per = own
	}
	if per > 0 && l.byOwner[owner] >= per {
		return &limitError{perOwner: true, limit: per}
	}
	l.total++
	l.byOwner[owner]++
	return nil
}

func (l *sessionLimiter) release(owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byOwner[owner]--; l.byOwner[owner] <= 0 {
		delete(l.byOwner, owner)
	}
}

// count reports the sessions held, in all and by owner.
func (l *sessionLimiter) count(owner string) (total, owned int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.byOwner[owner]
}

// stallWriter sets a write deadline before every write and flush, so that
// a client that stops reading fails the write after d instead of holding
// the handler forever, while a stream that is read lasts as long as it
// needs.
type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (s *stallWriter) arm() {
	if s.d > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.d))
	}
}

func (s *stallWriter) WriteHeader(code int) {
	s.arm()
	s.ResponseWriter.WriteHeader(code)
}

func (s *stallWriter) Write(p []byte) (int, error) {
	s.arm()
	return s.ResponseWriter.Write(p)
}

func (s *stallWriter) Flush() {
	s.arm()
	_ = s.rc.Flush()
}

func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
