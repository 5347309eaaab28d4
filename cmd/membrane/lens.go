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
	l := lens.New(&lens.Options{
		Verify:   guard.Check,
		Open:     guard.Open(),
		Tools:    router,
		Store:    obs.store,
		Scrubber: obs.scrub,
		Hosts: func() []lens.Host {
			hs, names := models.Hosts(), models.HostModels()
			out := make([]lens.Host, len(hs))
			for i, h := range hs {
				out[i] = lens.Host{URL: h.URL, Up: h.Up, Err: h.Err, Models: names[i], Loaded: h.Loaded}
			}
			return out
		},
		ModelOf: func(tool string) (lens.Model, bool) {
			m, ok := models.ToolModelStatus(tool)
			if !ok {
				return lens.Model{}, false
			}
			return lens.Model{Name: m.Name, Hosts: m.Hosts, Family: m.Family, ParameterSize: m.ParameterSize,
				Quantization: m.Quantization, Size: m.Size, ContextLength: m.ContextLength, Capabilities: m.Capabilities}, true
		},
		Queues:  models.QueueDepths,
		Sandbox: lens.Sandbox{Mode: cfg.SandboxMode, Isolation: cfg.sandboxConfig().Isolation()},
		Logger:  log.With("component", "lens"),
	})
	router.Observe(l)
	opts.Mounts = append(opts.Mounts, mcp.Mount{Prefix: l.Prefix(), Handler: l, Public: true})
	return nil
}
