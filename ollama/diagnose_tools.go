package ollama

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/membrane-mcp/membrane/diag"
)

// DiagnoseTools checks each logical tool against its model, as `membrane
// doctor` reports it: that some host has the model, that the model can do
// what the tool asks of it, and that the tool's options fit the model (a
// num_ctx beyond the model's context length fails every call). hosts and
// backends are as in Config.Hosts and Config.Backends; a tool's model may
// be a backend's, as BACKEND/ID.
func DiagnoseTools(ctx context.Context, hosts []string, backends []Backend, specs []ToolSpec) []diag.Check {
	if len(specs) == 0 {
		return nil
	}
	urls, _ := parseHosts(hosts) // Diagnose reports bad hosts
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	type found struct {
		h    *host
		name string
		tag  tagModel // a backend's listing, which is all it says
	}
	models := map[string]found{}
	reachable := 0
	for _, u := range urls {
		h := newHost(u, hc)
		tags, err := h.list(ctx)
		if err != nil {
			continue
		}
		reachable++
		for _, t := range tags {
			if _, ok := models[modelKey(t.Name)]; !ok {
				models[modelKey(t.Name)] = found{h, t.Name, t}
			}
		}
	}
	for _, b := range backends {
		h, err := newBackendHost(b, hc)
		if err != nil {
			continue // DiagnoseBackends reports it
		}
		tags, err := h.list(ctx)
		if err != nil {
			continue
		}
		reachable++
		for _, t := range tags {
			models[backendKey(b.Name, t.Name)] = found{h, t.Name, t}
		}
	}
	backendNamed := func(name string) bool {
		prefix, _, ok := strings.Cut(name, "/")
		return ok && slices.ContainsFunc(backends, func(b Backend) bool { return b.Name == prefix })
	}
	var out []diag.Check
	for _, s := range specs {
		c := diag.Check{Name: "tool " + s.Tool, Status: diag.StatusOK}
		f, ok := models[modelKey(s.Model)]
		if !ok {
			f, ok = models["@"+s.Model]
		}
		if !ok {
			c.Status = diag.StatusWarn
			if backendNamed(s.Model) {
				backend, id, _ := strings.Cut(s.Model, "/")
				c.Detail = fmt.Sprintf("model %s: backend %s does not list %s (or does not answer); the tool is not served", s.Model, backend, id)
				c.Fix = "serve the model on that server, or fix the model name (BACKEND/ID, as ollama_models lists it)"
				out = append(out, c)
				continue
			}
			if reachable == 0 {
				c.Detail = fmt.Sprintf("model %s: no Ollama server answers", s.Model)
				c.Fix = "start Ollama; the tool appears once its model is there"
			} else {
				c.Detail = fmt.Sprintf("model %s is on no Ollama server; the tool is not served", s.Model)
				c.Fix = fmt.Sprintf("`ollama pull %s`, or fix the model name", s.Model)
			}
			out = append(out, c)
			continue
		}
		if f.h.oa != nil {
			out = append(out, diagnoseBackendTool(c, s, f.h, f.tag))
			continue
		}
		d, err := f.h.show(ctx, f.name)
		if err != nil {
			c.Status, c.Detail = diag.StatusWarn, fmt.Sprintf("model %s: cannot read its details: %v", f.name, err)
			out = append(out, c)
			continue
		}
		mod := &model{Name: f.name, ContextLength: d.ContextLength, Capabilities: d.Capabilities}
		var problems []string
		if !mod.canChat() && !mod.canEmbed() {
			problems = append(problems, fmt.Sprintf("model %s neither chats nor embeds (capabilities: %s)", f.name, strings.Join(d.Capabilities, ", ")))
		}
		if _, err := checkOptions(s.Options, mod); err != nil {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			c.Status = diag.StatusFail
			c.Detail = strings.Join(problems, "; ")
			c.Fix = "change the tool's options in the config file; every call of the tool fails until then"
		} else {
			kind := "chat"
			if !mod.canChat() {
				kind = "embedding"
			}
			c.Detail = fmt.Sprintf("%s tool on %s (%s)", kind, f.name, f.h.name)
			if d.ContextLength > 0 {
				c.Detail += fmt.Sprintf(", context %d tokens", d.ContextLength)
			}
		}
		out = append(out, c)
	}
	return out
}

// diagnoseBackendTool is DiagnoseTools' check of a tool whose model is on
// an OpenAI-compatible backend: its options must have an OpenAI form.
func diagnoseBackendTool(c diag.Check, s ToolSpec, h *host, t tagModel) diag.Check {
	if err := checkBackendOptions(s.Options); err != nil {
		c.Status, c.Detail = diag.StatusFail, err.Error()
		c.Fix = "change the tool's options in the config file; every call of the tool fails until then"
		return c
	}
	kind := "chat"
	if slices.Contains(t.Capabilities, capEmbedding) {
		kind = "embedding"
	}
	c.Detail = fmt.Sprintf("%s tool on %s (%s)", kind, t.Name, h.name)
	if t.contextLength > 0 {
		c.Detail += fmt.Sprintf(", context %d tokens", t.contextLength)
	}
	return c
}
