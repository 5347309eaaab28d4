package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/calls"
)

// summaryValues is how many leading values a vector summary shows.
const summaryValues = 8

// embedCall is the call for an embed tool: a model's own (spec nil) or a
// logical tool bound to it.
func (m *Models) embedCall(name string, mod *model, spec *ToolSpec) calls.Call {
	var desc string
	if spec != nil && spec.Description != "" {
		desc = fmt.Sprintf("%s (runs the %s %s: %s.)", spec.Description, mod.where(), mod.displayName(), mod.summary())
	} else {
		desc = fmt.Sprintf("Embed text with the %s %s (%s).", mod.where(), mod.displayName(), mod.summary())
	}
	desc += " Give one input or an array of inputs; returns one vector per input, or with summary a compact summary of each."
	key := mod.key()
	return calls.Call{
		Name:         name,
		Title:        "Embed: " + mod.displayName(),
		Description:  desc,
		InputSchema:  embedSchema(false, mod.backend != "", mod.EmbeddingLength),
		OutputSchema: embedOutputSchema,
		Kind:         calls.KindModel,
		Group:        Group,
		Timeout:      m.timeoutFor(spec),
		Concurrency:  -1,
		ReadOnly:     true,
		Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			a, inputs, err := decodeEmbed(req.Arguments, false)
			if err != nil {
				return calls.Errorf("%v", err), nil
			}
			mod, ok := m.lookup(key)
			if !ok {
				return calls.Errorf("model %s is gone: no host has it any more; call ollama_models for the current list", name), nil
			}
			return m.runEmbed(ctx, req, mod, a, inputs)
		}),
	}
}

// runEmbed embeds inputs with mod on the least busy host that has it.
func (m *Models) runEmbed(ctx context.Context, req *calls.Request, mod *model, a *embedArgs, inputs []string) (*calls.Result, error) {
	if !mod.canEmbed() {
		return calls.Errorf("%s is not an embedding model (capabilities: %s); use ollama_chat for it", mod.Name, strings.Join(mod.Capabilities, ", ")), nil
	}
	if mod.backend != "" {
		if err := refuseBackendTruncate(a.Truncate); err != nil {
			return calls.Errorf("%v", err), nil
		}
	}
	var size int64
	for _, s := range inputs {
		size += int64(len(s))
	}
	if m.cfg.MaxPromptBytes > 0 && size > m.cfg.MaxPromptBytes {
		return calls.Errorf("the input is %d bytes, more than the limit of %d; split it over several calls", size, m.cfg.MaxPromptBytes), nil
	}
	req = monotonic(req)
	release, busy, err := m.acquire(ctx, req, mod)
	if busy != nil || err != nil {
		return busy, err
	}
	defer release()

	ereq := &api.EmbedRequest{Model: mod.Name, Input: inputs, Truncate: a.Truncate}
	var (
		tried []*host
		last  string
	)
	for {
		h := mod.pick(tried, m.cfg.ModelConcurrency)
		if h == nil {
			if last != "" {
				return calls.Errorf("%s", last), nil
			}
			return calls.Errorf("model %s is on no host that is up right now (%s); try again shortly", mod.Name, mod.downReasons()), nil
		}
		req.Progress.Report(ctx, 0, float64(len(inputs)), fmt.Sprintf("embedding %d inputs with %s on %s", len(inputs), mod.Name, h.name))
		h, turn, err := m.hostTurn(ctx, req, h, mod, tried)
		if err != nil {
			return nil, err
		}
		h.inflight.Add(1)
		resp, err := h.embed(ctx, ereq)
		h.inflight.Add(-1)
		if err == nil {
			h.markLoaded(mod.key(), mod.Name, 0) // before turn reads /api/ps
		}
		turn()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("ollama: embed %s: %w", mod.Name, ctxErr)
		}
		if err != nil {
			var se api.StatusError
			if unreachable(err) && !errors.As(err, &se) {
				h.markDown(err)
				m.kickRefresh()
				tried, last = append(tried, h), explainOn(err, mod, h)
				continue
			}
			if errors.As(err, &se) && se.StatusCode == 404 {
				m.kickRefresh()
			}
			return calls.Errorf("%s", explainOn(err, mod, h)), nil
		}
		h.markLoaded(mod.key(), mod.Name, 0)
		if len(resp.Embeddings) != len(inputs) {
			return calls.Errorf("%s on %s returned %d vectors for %d inputs", h.server(), h.name, len(resp.Embeddings), len(inputs)), nil
		}
		return embedResult(mod, h, resp, a.Summary), nil
	}
}

// vectorSummary describes one vector compactly.
type vectorSummary struct {
	Dimensions int       `json:"dimensions"`
	Norm       float64   `json:"norm"`
	First      []float32 `json:"first"`
}

func summarize(v []float32) vectorSummary {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	n := min(summaryValues, len(v))
	return vectorSummary{Dimensions: len(v), Norm: math.Round(math.Sqrt(sum)*1e6) / 1e6, First: v[:n:n]}
}

func embedResult(mod *model, h *host, resp *api.EmbedResponse, summary bool) *calls.Result {
	dims := 0
	if len(resp.Embeddings) > 0 {
		dims = len(resp.Embeddings[0])
	}
	// The text is a summary a model can read; the vectors travel once, in
	// the structured content.
	out := map[string]any{"model": mod.Name, "host": h.name, "dimensions": dims, "count": len(resp.Embeddings)}
	sums := make([]vectorSummary, len(resp.Embeddings))
	for i, v := range resp.Embeddings {
		sums[i] = summarize(v)
	}
	text := map[string]any{"model": mod.Name, "host": h.name, "dimensions": dims, "count": len(resp.Embeddings), "summaries": sums}
	note := "\n[the vectors are in the structured content (embeddings), one per input]"
	if summary {
		out["summaries"] = sums
		note = ""
	} else {
		out["embeddings"] = resp.Embeddings
	}
	b, err := json.Marshal(text)
	if _, verr := json.Marshal(out); err != nil || verr != nil {
		// NaN or Inf in a vector: report the shape only.
		delete(out, "embeddings")
		delete(out, "summaries")
		delete(text, "summaries")
		b, _ = json.Marshal(text)
		return &calls.Result{Content: []calls.Content{{Type: calls.ContentText, Text: string(b) + "\n[warning: the vectors hold values JSON cannot carry (NaN or Inf)]"}}, Structured: out, IsError: true}
	}
	return &calls.Result{Content: []calls.Content{{Type: calls.ContentText, Text: string(b) + note}}, Structured: out}
}
