package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/metrics"
	obsv "github.com/membrane-mcp/membrane/calls/observers"
	"github.com/membrane-mcp/membrane/calls/scrub"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/ollama"
)

// observers is what records and exports membrane's calls (calls/observers),
// with the fields the rest of the command reads.
type observers struct {
	set     *obsv.Set
	scrub   *scrub.Scrubber
	store   *store.Store // nil with --store off, or when it cannot open
	metrics *metrics.Metrics
}

// newObservers turns the flags into the observer set. The metrics come
// later (attach), once the router exists.
func newObservers(cfg *Config, log *slog.Logger) (*observers, error) {
	transport := "pipe"
	if cfg.HTTP.Addr != "" {
		transport = "tcp"
	}
	set, err := obsv.Open(&obsv.Options{
		Secrets:          cfg.secrets(),
		ServiceName:      "membrane",
		ServiceVersion:   versionString(),
		Transport:        transport,
		AuditLog:         cfg.Observe.AuditLog,
		AuditLogMaxBytes: int64(cfg.Observe.AuditLogMaxSize),
		Store:            cfg.Observe.Store,
		Getenv:           os.Getenv,
		Logger:           log,
	})
	var pe *obsv.PartError
	if errors.As(err, &pe) {
		switch pe.Part {
		case "tracing":
			return nil, fmt.Errorf("tracing: %w; fix the OTEL_* variables, or unset OTEL_EXPORTER_OTLP_ENDPOINT to trace nothing", pe.Err)
		case "ledger":
			return nil, fmt.Errorf("--audit-log: ledger: %w", pe.Err)
		}
	}
	if err != nil {
		return nil, err
	}
	if set.StoreErr != nil {
		// Not fatal: membrane serves without its history.
		log.Error("trace store off: calls are not kept for `membrane calls`; fix the path or its disk, or set --store off", "err", set.StoreErr)
	}
	return &observers{set: set, scrub: set.Scrub, store: set.Store}, nil
}

// storePath is the trace store's file: flag, else the default.
func storePath(flag string, getenv func(string) string) (string, error) {
	return obsv.StorePath(flag, getenv)
}

// routerObservers lists the observers the router starts with.
func (o *observers) routerObservers() []calls.Observer { return o.set.RouterObservers() }

// attach adds the metrics, with the model hosts' state, to router.
func (o *observers) attach(router *calls.Router, models *ollama.Models) {
	o.metrics = o.set.AttachMetrics(router, &metrics.Options{Hosts: func() []metrics.Host {
		var out []metrics.Host
		for _, h := range models.Hosts() {
			out = append(out, metrics.Host{URL: h.URL, Up: h.Up, Models: h.Models, Loaded: h.Loaded})
		}
		return out
	}, Queues: models.QueueDepths})
}

// close flushes the router's observers and closes them.
func (o *observers) close(router *calls.Router, log *slog.Logger) { o.set.Close(router, log) }

// serveMetrics serves /metrics on --metrics-addr until ctx is done.
func serveMetrics(ctx context.Context, addr string, opts *mcp.HTTPOptions, h http.Handler, log *slog.Logger) error {
	if err := obsv.ServeMetrics(ctx, addr, opts, h, log); err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
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
