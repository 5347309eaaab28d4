package mcp

import "github.com/membrane-mcp/membrane/ollama"

// ModelBackends reports m's model hosts for /readyz (HTTPOptions.Backends).
// A nil m reports none.
func ModelBackends(m *ollama.Models) func() []BackendStatus {
	if m == nil {
		return nil
	}
	return func() []BackendStatus {
		var out []BackendStatus
		for _, h := range m.Hosts() {
			out = append(out, BackendStatus{URL: h.URL, Up: h.Up, Models: h.Models, Err: h.Err})
		}
		return out
	}
}
