package metrics

import "github.com/membrane-mcp/membrane/ollama"

// ModelOptions are the Options that export the state of m's model hosts
// and model queues with each scrape. A nil m exports none.
func ModelOptions(m *ollama.Models) *Options {
	if m == nil {
		return &Options{}
	}
	return &Options{Hosts: func() []Host {
		var out []Host
		for _, h := range m.Hosts() {
			out = append(out, Host{URL: h.URL, Up: h.Up, Models: h.Models, Loaded: h.Loaded})
		}
		return out
	}, Queues: m.QueueDepths}
}
