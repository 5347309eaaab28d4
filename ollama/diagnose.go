package ollama

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/diag"
)

// Diagnose checks each host as `membrane doctor` reports it: whether it
// answers, its Ollama version, and what models it would serve. hosts are as
// in Config.Hosts (none means OLLAMA_HOST's default).
//
// A host that takes longer than FirstListWait to tell its models gets a
// warning with the time it took: a program that waits that long for the
// first refresh (WaitDiscovered) serves its first tool list without them.
func Diagnose(ctx context.Context, hosts []string) []diag.Check {
	return diagnose(ctx, hosts, FirstListWait)
}

// diagnose is Diagnose with the time after which a host is slow.
func diagnose(ctx context.Context, hosts []string, slow time.Duration) []diag.Check {
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
		start := time.Now()
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
		took := time.Since(start)
		detail := fmt.Sprintf("Ollama %s: %d models (%d chat, %d embedding), answered in %s", version, len(tags), len(chat), len(embed), roundTook(took))
		c := diag.Check{Name: name, Status: diag.StatusOK, Detail: detail}
		if len(other) > 0 {
			c.Status = diag.StatusWarn
			c.Detail += "; no capabilities known for " + strings.Join(other, ", ")
			c.Fix = "those models are not served; check `ollama show MODEL` works for them"
		}
		out = append(out, c)
		if took > slow {
			out = append(out, slowHost(name, took, slow))
		}
	}
	return out
}

// slowHost is the warning for a host that took longer to tell its models
// than the first tool list waits for.
func slowHost(name string, took, wait time.Duration) diag.Check {
	return diag.Check{Name: name, Status: diag.StatusWarn,
		Detail: fmt.Sprintf("slow to answer: listing its models took %s, longer than the %s the first tools/list waits for the hosts", roundTook(took), wait),
		Fix: "a client that lists the tools once at start (a one-shot agent) sees no model tools from this host; they come later, with a list_changed notification. " +
			"Start the client after Ollama is warm, have it list again on list_changed, or find why the host is slow (loaded, remote, or many models to show)"}
}

// roundTook rounds a duration for a finding: to the millisecond, and to
// the tenth of a second from a second up.
func roundTook(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
