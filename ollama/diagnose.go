package ollama

import (
	"context"
	"fmt"
	"strings"

	"github.com/membrane-mcp/membrane/diag"
)

// Diagnose checks each host as `membrane doctor` reports it: whether it
// answers, its Ollama version, and what models it would serve. hosts are as
// in Config.Hosts (none means OLLAMA_HOST's default).
func Diagnose(ctx context.Context, hosts []string) []diag.Check {
	urls, err := parseHosts(hosts)
	var out []diag.Check
	if err != nil {
		out = append(out, diag.Check{Name: "ollama hosts", Status: diag.StatusFail, Detail: err.Error(),
			Fix: "give hosts as host:port or http://host:port in the Ollama hosts setting or OLLAMA_HOST", Setting: "ollama.hosts"})
	}
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	for _, u := range urls {
		h := newHost(u, hc)
		name := "ollama " + h.name
		tags, lerr := h.list(ctx)
		if lerr != nil {
			out = append(out, diag.Check{Name: name, Status: diag.StatusFail,
				Detail:  "cannot list models: " + describeHostErr(lerr),
				Fix:     "start Ollama (`ollama serve`), or point the Ollama hosts setting (or OLLAMA_HOST) at it; membrane still serves sh and python_run meanwhile",
				Setting: "ollama.hosts"})
			continue
		}
		version, verr := h.client.Version(ctx)
		if verr != nil {
			version = "(version unknown)"
		}
		if len(tags) == 0 {
			out = append(out, diag.Check{Name: name, Status: diag.StatusWarn,
				Detail: fmt.Sprintf("Ollama %s answers but has no models", version),
				Fix:    "pull one, e.g. `ollama pull qwen3:0.6b`; membrane picks it up within the refresh interval"})
			continue
		}
		var chat, embed, other []string
		for _, t := range tags {
			caps := t.Capabilities
			if len(caps) == 0 {
				if d, err := h.show(ctx, t.Name); err == nil {
					caps = d.Capabilities
				}
			}
			switch {
			case contains(caps, capCompletion):
				chat = append(chat, t.Name)
			case contains(caps, capEmbedding):
				embed = append(embed, t.Name)
			default:
				other = append(other, t.Name)
			}
		}
		detail := fmt.Sprintf("Ollama %s: %d models (%d chat, %d embedding)", version, len(tags), len(chat), len(embed))
		c := diag.Check{Name: name, Status: diag.StatusOK, Detail: detail}
		if len(other) > 0 {
			c.Status = diag.StatusWarn
			c.Detail += "; no capabilities known for " + strings.Join(other, ", ")
			c.Fix = "those models are not served; check `ollama show MODEL` works for them"
		}
		out = append(out, c)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
