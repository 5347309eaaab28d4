package main

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/membrane-mcp/membrane/ollama"
)

// observers is what records and exports membrane's calls: the audit
// ledger and the metrics, with the scrubber they share.
type observers struct {
	scrub   *scrub.Scrubber
	ledger  *ledger.Ledger // nil without --audit-log
	store   *store.Store   // nil with --store off, or when it cannot open
	metrics *metrics.Metrics
	tracing *otel.Tracing // a no-op one unless OTEL_* switch it on
	tracer  calls.Observer
}

// newObservers opens the audit ledger, if one is asked for. The metrics
// come later (attach), once the router exists.
func newObservers(cfg *Config, log *slog.Logger) (*observers, error) {
	o := &observers{scrub: scrub.New(&scrub.Options{Secrets: cfg.secrets()})}
	tr, err := otel.Start(context.Background(), &otel.Options{ServiceName: "membrane", ServiceVersion: versionString()})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w; fix the OTEL_* variables, or unset OTEL_EXPORTER_OTLP_ENDPOINT to trace nothing", err)
	}
	o.tracing = tr
	transport := "pipe"
	if cfg.HTTP.Addr != "" {
		transport = "tcp"
	}
	o.tracer = tr.Observer(&otel.ObserverOptions{Transport: transport})
	if tr.Enabled() {
		c := tr.Config()
		log.Info("tracing on", "protocol", c.Protocol, "endpoint", c.Endpoint)
	}
	lopts := &ledger.Options{
		Scrubber:     o.scrub,
		MaxFileBytes: int64(cfg.Observe.AuditLogMaxSize),
		Logger:       log.With("component", "ledger"),
	}
	switch cfg.Observe.AuditLog {
	case "":
	case "-":
		o.ledger = ledger.New(os.Stderr, lopts)
	default:
		l, err := ledger.Open(cfg.Observe.AuditLog, lopts)
		if err != nil {
			return nil, fmt.Errorf("--audit-log: %w", err)
		}
		o.ledger = l
	}
	if cfg.Observe.Store != "off" {
		path, err := storePath(cfg.Observe.Store, os.Getenv)
		if err == nil {
			o.store, err = store.Open(path, &store.Options{Scrubber: o.scrub, Logger: log.With("component", "store")})
		}
		if err != nil {
			// Not fatal: membrane serves without its history.
			log.Error("trace store off: calls are not kept for `membrane calls`; fix the path or its disk, or set --store off", "err", err)
		}
	}
	return o, nil
}

// storePath is the trace store's file: flag, else the default.
func storePath(flag string, getenv func(string) string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return store.DefaultPath(getenv)
}

// routerObservers lists the observers the router starts with.
func (o *observers) routerObservers() []calls.Observer {
	var out []calls.Observer
	if o.ledger != nil {
		out = append(out, o.ledger)
	}
	if o.store != nil {
		out = append(out, o.store)
	}
	if o.tracer != nil {
		out = append(out, o.tracer)
	}
	return out
}

// attach adds the metrics to router.
func (o *observers) attach(router *calls.Router, models *ollama.Models) {
	o.metrics = metrics.New(router, &metrics.Options{Hosts: func() []metrics.Host {
		var out []metrics.Host
		for _, h := range models.Hosts() {
			out = append(out, metrics.Host{URL: h.URL, Up: h.Up, Models: h.Models, Loaded: h.Loaded})
		}
		return out
	}, Queues: models.QueueDepths})
	router.Observe(o.metrics)
}

// close flushes the router's observers and closes the ledger.
func (o *observers) close(router *calls.Router, log *slog.Logger) {
	router.Close()
	if o.ledger != nil {
		if err := o.ledger.Close(); err != nil {
			log.Warn("audit ledger close", "err", err)
		}
	}
	if o.store != nil {
		if err := o.store.Close(); err != nil {
			log.Warn("trace store close", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.tracing.Shutdown(ctx); err != nil {
		log.Warn("tracing: the last spans were not exported", "err", err)
	}
}

// serveMetrics serves /metrics on addr until ctx is done, behind the
// security layer of opts.
func serveMetrics(ctx context.Context, addr string, opts *mcp.HTTPOptions, h http.Handler, log *slog.Logger) error {
	guard, err := mcp.HTTPGuard(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %s: %w", addr, err)
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

// durationsInMS makes a JSON log carry every duration attribute as
// KEY_ms, a number of milliseconds ("dur_ms": 53.2), where text logs show
// "53ms".
func durationsInMS(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		d := a.Value.Duration()
		return slog.Float64(a.Key+"_ms", float64(d.Microseconds())/1000)
	}
	return a
}
