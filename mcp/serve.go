package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// DefaultShutdownTimeout is how long ListenAndServe gives open connections
// to finish once its context is done, when ServeOptions gives no time.
const DefaultShutdownTimeout = 10 * time.Second

// ServeOptions configure Server.ListenAndServe. A nil *ServeOptions, like
// the zero value, serves HTTPHandler(nil) within the default ListenOptions.
type ServeOptions struct {
	// HTTP configures the handler (Server.HTTPHandler): tokens, origins,
	// sessions, mounts. Its Logger also gets the HTTP server's own errors,
	// at debug level.
	HTTP *HTTPOptions
	// Listen bounds the connections (NewHTTPServer, Listen).
	Listen *ListenOptions
	// ShutdownTimeout bounds how long open connections get to finish once
	// the context is done; then they are closed. Zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// OnListen, when set, is called with the address listened on (the port
	// chosen for ":0") before the first request is served.
	OnListen func(net.Addr)
}

// ListenError is ListenAndServe's error when it cannot listen on Addr. A
// program words the advice: InUse says another process holds the address.
type ListenError struct {
	Addr string // as given
	Err  error  // from net.Listen
}

func (e *ListenError) Error() string { return fmt.Sprintf("listen on %s: %v", e.Addr, e.Err) }
func (e *ListenError) Unwrap() error { return e.Err }

// InUse reports whether the address is taken by another listener.
func (e *ListenError) InUse() bool { return errors.Is(e.Err, syscall.EADDRINUSE) }

// ListenAndServe serves s over streamable HTTP on addr until ctx is done
// or the listener fails. When ctx is done it stops accepting, closes s (its
// sessions, and the SSE streams they hold open) and gives open connections
// ShutdownTimeout to end. It returns nil after a shutdown, a *ListenError
// when addr cannot be listened on, and the HTTP server's error otherwise.
func (s *Server) ListenAndServe(ctx context.Context, addr string, opts *ServeOptions) error {
	var o ServeOptions
	if opts != nil {
		o = *opts
	}
	h, err := s.HTTPHandler(o.HTTP)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &ListenError{Addr: addr, Err: err}
	}
	hs := NewHTTPServer(h, o.Listen)
	log := slog.New(slog.DiscardHandler)
	if o.HTTP != nil && o.HTTP.Logger != nil {
		log = o.HTTP.Logger
	}
	hs.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	ln = Listen(ln, o.Listen)
	if o.OnListen != nil {
		o.OnListen(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	// Stop accepting and close idle connections; sessions (and their open
	// SSE streams) end as s closes.
	sctx, cancel := context.WithTimeout(context.Background(), orDefault(o.ShutdownTimeout, DefaultShutdownTimeout))
	defer cancel()
	go s.Close()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// CloseWithin closes s as Close does, but waits at most d for the running
// calls to end. It reports whether they did; when not, Close goes on in
// the background.
func (s *Server) CloseWithin(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
