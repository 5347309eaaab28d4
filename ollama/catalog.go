package ollama

// ModelStatus is what discovery knows of one model, for a view of the
// tools and the models behind them.
type ModelStatus struct {
	Name            string
	Family          string
	ParameterSize   string
	Quantization    string
	Format          string
	Size            int64
	ContextLength   int
	EmbeddingLength int
	Capabilities    []string
	// Hosts names the hosts that have the model (passwords redacted), in
	// configuration order.
	Hosts []string
}

// ToolModelStatus returns the model a registered tool runs, by the tool's
// name, with what discovery knows of it. ok is false for a name this
// package does not own or a generic tool.
func (m *Models) ToolModelStatus(tool string) (ModelStatus, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tools[tool]
	if !ok || t.Model == "" {
		return ModelStatus{}, false
	}
	mod, ok := m.models[t.Model]
	if !ok {
		return ModelStatus{}, false
	}
	return ModelStatus{
		Name: mod.Name, Family: mod.Family, ParameterSize: mod.ParameterSize, Quantization: mod.Quantization,
		Format: mod.Format, Size: mod.Size, ContextLength: mod.ContextLength, EmbeddingLength: mod.EmbeddingLength,
		Capabilities: append([]string(nil), mod.Capabilities...), Hosts: mod.hostNames(),
	}, true
}

// HostModels returns the names of the models each host listed last, in
// the order of Hosts; a host that is down lists none.
func (m *Models) HostModels() [][]string {
	out := make([][]string, len(m.hosts))
	for i, h := range m.hosts {
		h.mu.Lock()
		if h.up {
			for _, t := range h.tags {
				out[i] = append(out[i], t.Name)
			}
		}
		h.mu.Unlock()
	}
	return out
}
