package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/membrane-mcp/membrane/calls/metrics"
	obsv "github.com/membrane-mcp/membrane/calls/observers"
	"github.com/membrane-mcp/membrane/calls/scrub"
	"github.com/membrane-mcp/membrane/calls/store"
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
