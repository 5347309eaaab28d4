package main

import (
	"log/slog"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/lens"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/ollama"
)

// lensOn says whether the Lens is served: --lens on, or auto on a stateful
// HTTP listener (a stateless replica sees only its own share of the calls
// unless the store is shared, which --lens on asserts).
func lensOn(cfg *Config) bool {
	switch cfg.Observe.Lens {
	case "on":
		return cfg.HTTP.Addr != ""
	case "off":
		return false
	}
	return cfg.HTTP.Addr != "" && !cfg.HTTP.Stateless
}

// mountLens adds the Lens to the HTTP options, observing router, with the
// listener's own token rules for its login.
func mountLens(cfg *Config, opts *mcp.HTTPOptions, router *calls.Router, models *ollama.Models, obs *observers, log *slog.Logger) error {
	guard, err := mcp.HTTPGuard(opts)
	if err != nil {
		return err
	}
	lo := &lens.Options{
		Verify:   guard.Check,
		Open:     guard.Open(),
		Tools:    router,
		Store:    obs.store,
		Scrubber: obs.scrub,
		Sandbox:  lens.Sandbox{Mode: cfg.SandboxMode, Isolation: cfg.sandboxConfig().Isolation()},
		Logger:   log.With("component", "lens"),
	}
	lo.UseModels(models)
	l := lens.New(lo)
	router.Observe(l)
	opts.Mounts = append(opts.Mounts, mcp.Mount{Prefix: l.Prefix(), Handler: l, Public: true})
	return nil
}
