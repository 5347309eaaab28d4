// Package observers builds the set of observers that record and export a
// membrane's calls, from one options struct: the scrubber they share, the
// audit ledger, the trace store, the Prometheus metrics and the
// OpenTelemetry tracer, and the listener that serves the metrics on their
// own address. A command turns its flags into Options and hands the set's
// observers to its router.
package observers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/calls/metrics"
	"github.com/membrane-mcp/membrane/calls/otel"
	"github.com/membrane-mcp/membrane/calls/scrub"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/mcp"
)

// StoreOff, as Options.Store, turns the trace store off.
const StoreOff = "off"

// AuditStderr, as Options.AuditLog, writes the ledger to Options.Stderr.
const AuditStderr = "-"

// Options configures Open. The zero value gives a scrubber, the trace
// store at its default path, no ledger, and tracing as the OTEL_*
// variables say.
type Options struct {
	// Secrets are exact values (tokens) the scrubber hides beside the
	// credential shapes.
	Secrets []string
	// ServiceName and ServiceVersion name the process in its traces.
	// An empty name means "membrane".
	ServiceName, ServiceVersion string
	// Transport is the MCP transport the tracer names ("pipe" or "tcp").
	// Empty means "pipe".
	Transport string
	// AuditLog is where the ledger goes: "" for none, AuditStderr for
	// Stderr, else a file path.
	AuditLog string
	// AuditLogMaxBytes rotates the ledger file past this size (see
	// ledger.Options.MaxFileBytes).
	AuditLogMaxBytes int64
	// Store is the trace store's path: StoreOff for none, "" for
	// store.DefaultPath.
	Store string
	// Getenv reads the environment (for the store's default path). Nil
	// means os.Getenv.
	Getenv func(string) string
	// Stderr is where AuditStderr writes. Nil means os.Stderr.
	Stderr io.Writer
	// Logger receives the observers' own trouble. Nil discards.
	Logger *slog.Logger
}

// PartError is an observer that Open could not start; Part names it
// ("ledger" or "tracing").
type PartError struct {
	Part string
	Err  error
}

func (e *PartError) Error() string { return e.Part + ": " + e.Err.Error() }
func (e *PartError) Unwrap() error { return e.Err }

// Set is the observers of one process.
type Set struct {
	Scrub   *scrub.Scrubber
	Ledger  *ledger.Ledger // nil without an audit log
	Store   *store.Store   // nil when off, or when it could not open
	Metrics *metrics.Metrics
	Tracing *otel.Tracing // a no-op one unless OTEL_* switch it on
	Tracer  calls.Observer

	// StoreErr is why the store is nil though it was asked for: the
	// process serves without its history, and the caller says so.
	StoreErr error
}

// Open starts the observers opts asks for. The metrics come later
// (AttachMetrics), once the router exists. A store that cannot open is
// not an error: it is kept in StoreErr, and the set has none.
func Open(opts *Options) (*Set, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.ServiceName == "" {
		o.ServiceName = "membrane"
	}
	if o.Transport == "" {
		o.Transport = "pipe"
	}
	s := &Set{Scrub: scrub.New(&scrub.Options{Secrets: o.Secrets})}
	tr, err := otel.Start(context.Background(), &otel.Options{
		ServiceName: o.ServiceName, ServiceVersion: o.ServiceVersion, Logger: log.With("component", "tracing"),
	})
	if err != nil {
		return nil, &PartError{Part: "tracing", Err: err}
	}
	s.Tracing = tr
	if tr.Enabled() {
		c := tr.Config()
		log.Info("tracing on", "protocol", c.Protocol, "endpoint", c.Endpoint)
	}
	lopts := &ledger.Options{
		Scrubber:     s.Scrub,
		MaxFileBytes: o.AuditLogMaxBytes,
		Logger:       log.With("component", "ledger"),
	}
	switch o.AuditLog {
	case "":
	case AuditStderr:
		s.Ledger = ledger.New(o.Stderr, lopts)
	default:
		l, err := ledger.Open(o.AuditLog, lopts)
		if err != nil {
			s.shutdownTracing()
			return nil, &PartError{Part: "ledger", Err: err}
		}
		s.Ledger = l
	}
	if o.Store != StoreOff {
		path, err := StorePath(o.Store, o.Getenv)
		if err == nil {
			s.Store, err = store.Open(path, &store.Options{Scrubber: s.Scrub, Logger: log.With("component", "store")})
		}
		if err != nil {
			s.StoreErr = err
		}
	}
	topts := &otel.ObserverOptions{Transport: o.Transport}
	if s.Store != nil {
		// Each span names its call as the store does.
		topts.CallID = s.Store.CallID
	}
	s.Tracer = tr.Observer(topts)
	return s, nil
}

// StorePath is the trace store's file: path when set, else
// store.DefaultPath.
func StorePath(path string, getenv func(string) string) (string, error) {
	if path != "" {
		return path, nil
	}
	return store.DefaultPath(getenv)
}

// RouterObservers lists the observers a router starts with (the metrics
// join in AttachMetrics).
func (s *Set) RouterObservers() []calls.Observer {
	var out []calls.Observer
	if s.Ledger != nil {
		out = append(out, s.Ledger)
	}
	if s.Store != nil {
		out = append(out, s.Store)
	}
	if s.Tracer != nil {
		out = append(out, s.Tracer)
	}
	return out
}

// AttachMetrics makes the metrics of router, with opts (the model hosts
// and queues), and adds them to its observers.
func (s *Set) AttachMetrics(router *calls.Router, opts *metrics.Options) *metrics.Metrics {
	s.Metrics = metrics.New(router, opts)
	router.Observe(s.Metrics)
	return s.Metrics
}

// Close flushes the router's observers, then closes the ledger and the
// store and exports the last spans (waiting up to five seconds).
func (s *Set) Close(router *calls.Router, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if router != nil {
		router.Close()
	}
	if s.Ledger != nil {
		if err := s.Ledger.Close(); err != nil {
			log.Warn("audit ledger close", "err", err)
		}
	}
	if s.Store != nil {
		if err := s.Store.Close(); err != nil {
			log.Warn("trace store close", "err", err)
		}
	}
	if err := s.shutdownTracing(); err != nil {
		log.Warn("tracing: the last spans were not exported", "err", err)
	}
}

func (s *Set) shutdownTracing() error {
	if s.Tracing == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Tracing.Shutdown(ctx)
}

// ServeMetrics serves h at /metrics on addr until ctx is done, behind the
// security layer of opts (token, Host and Origin checks) and the MCP
// listener's bounds.
func ServeMetrics(ctx context.Context, addr string, opts *mcp.HTTPOptions, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	guard, err := mcp.HTTPGuard(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", guard.Protect(h))
	// The MCP listener's bounds: header and idle timeouts, header size and
	// a connection cap.
	ln = mcp.Listen(ln, nil)
	hs := mcp.NewHTTPServer(mux, nil)
	hs.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	log.Info("membrane serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
