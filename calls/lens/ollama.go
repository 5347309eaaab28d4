package lens

import "github.com/membrane-mcp/membrane/ollama"

// UseModels points the Lens's model views (Hosts, ModelOf, Queues) at m,
// the model hosts a membrane serves. A nil m leaves them unset.
func (o *Options) UseModels(m *ollama.Models) {
	if m == nil {
		return
	}
	o.Hosts = func() []Host {
		hs, names := m.Hosts(), m.HostModels()
		out := make([]Host, len(hs))
		for i, h := range hs {
			out[i] = Host{URL: h.URL, Up: h.Up, Err: h.Err, Loaded: h.Loaded}
			if i < len(names) {
				out[i].Models = names[i]
			}
		}
		return out
	}
	o.ModelOf = func(tool string) (Model, bool) {
		s, ok := m.ToolModelStatus(tool)
		if !ok {
			return Model{}, false
		}
		return Model{Name: s.Name, Hosts: s.Hosts, Family: s.Family, ParameterSize: s.ParameterSize,
			Quantization: s.Quantization, Size: s.Size, ContextLength: s.ContextLength, Capabilities: s.Capabilities}, true
	}
	o.Queues = m.QueueDepths
}
