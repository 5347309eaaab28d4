package ollama

import (
	"strings"
	"testing"

	"github.com/ollama/ollama/api"
)

func TestChooseNumCtx(t *testing.T) {
	mod := &model{Name: "m:latest", ContextLength: 32768, KVBytesPerToken: 1024}
	chat := func(bytes int, opts map[string]any) *api.ChatRequest {
		return &api.ChatRequest{Messages: []api.Message{{Role: "user", Content: strings.Repeat("x", bytes)}}, Options: opts}
	}
	for _, tt := range []struct {
		name   string
		cfg    Config
		req    *api.ChatRequest
		loaded int // the window the host has the model loaded with; -1: not loaded
		want   int
	}{
		{"short input, nothing loaded: Ollama's default", Config{}, chat(300, nil), -1, 0},
		{"just past the smallest default", Config{}, chat(3300, nil), -1, 4096},
		{"the answer's room counts", Config{}, chat(300, map[string]any{"num_predict": 3000}), -1, 4096},
		{"large input: a power of two", Config{}, chat(30000, nil), -1, 16384},
		{"capped by the model", Config{}, chat(300000, nil), -1, 32768},
		{"capped by the budget", Config{ContextBudget: 10 << 20}, chat(300000, nil), -1, 10240},
		{"the caller's num_ctx stands", Config{}, chat(30000, map[string]any{"num_ctx": 2048}), -1, 0},
		{"the configured num_ctx", Config{NumCtx: map[string]int{"m": 6000}}, chat(300, nil), -1, 6000},
		{"loaded large enough: keep it", Config{}, chat(3300, nil), 8192, 8192},
		{"loaded too small: grow", Config{}, chat(30000, nil), 4096, 16384},
		{"loaded larger than the cap: keep it", Config{}, chat(300000, nil), 65536, 65536},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.withDefaults()
			m := &Models{cfg: cfg}
			h := &host{up: true}
			if tt.loaded >= 0 {
				h.markLoaded(mod.key(), mod.Name, tt.loaded)
			}
			if got := m.chooseNumCtx(tt.req, mod, h, estimateTokens(tt.req)); got != tt.want {
				t.Errorf("num_ctx %d, want %d (estimate %d)", got, tt.want, estimateTokens(tt.req))
			}
		})
	}
	// A backend gets none: the OpenAI wire has no num_ctx.
	m := &Models{}
	if got := m.chooseNumCtx(chat(30000, nil), mod, &host{oa: &openAI{}}, 10000); got != 0 {
		t.Errorf("a backend got num_ctx %d", got)
	}
	// withNumCtx leaves the request it copies alone.
	req := chat(1, map[string]any{"temperature": 0.1})
	cp := withNumCtx(req, 4096)
	if _, set := req.Options["num_ctx"]; set || cp.Options["num_ctx"] != 4096 || cp.Options["temperature"] != 0.1 {
		t.Errorf("withNumCtx: original %v, copy %v", req.Options, cp.Options)
	}
}

func TestEstimateNote(t *testing.T) {
	for _, tt := range []struct {
		estimate, read, window int
		warn                   bool
	}{
		{10000, 4096, 4096, true}, // did not fit, and was read short
		{10000, 9000, 4096, false},
		{3000, 100, 4096, false}, // fitted: a low count is a cached prefix
		{3000, 100, 0, false},    // window unknown
		{10000, 0, 4096, false},  // no count
	} {
		if got := estimateNote(tt.estimate, tt.read, tt.window) != ""; got != tt.warn {
			t.Errorf("estimate %d, read %d, window %d: warn %v", tt.estimate, tt.read, tt.window, got)
		}
	}
	if n := kvBytesPerToken(32, 32, 8, 4096); n != 131072 {
		t.Errorf("llama-3-8b's KV bytes per token: %d, want 131072", n)
	}
}

// TestCutAdvice: raising num_ctx is advised only while the window the
// input ran in is below the model's context length.
func TestCutAdvice(t *testing.T) {
	opts := func(n int) *api.ChatRequest { return &api.ChatRequest{Options: map[string]any{"num_ctx": n}} }
	none := &api.ChatRequest{}
	for _, tt := range []struct {
		name                   string
		req                    *api.ChatRequest
		sent, prompt, modelCtx int
		raise                  bool
		mentions               string
	}{
		{"sent the whole length", none, 4096, 4096, 4096, false, "4096 tokens is the model's whole context length"},
		{"filled the whole length, none sent", none, 0, 2048, 2048, false, "2048 tokens is the model's whole context length"},
		{"the caller asked for the whole length", opts(8192), 0, 100, 8192, false, "whole context length"},
		{"capped below the length (a budget)", none, 1024, 1024, 32768, true, "up to 32768 tokens"},
		{"Ollama's default window", none, 0, 2048, 32768, true, "up to 32768 tokens"},
		{"the caller asked for less", opts(512), 0, 512, 4096, true, "up to 4096 tokens"},
		{"length unknown", none, 0, 2048, 0, true, "up to the model's context length"},
	} {
		got := cutAdvice(tt.req, tt.sent, tt.prompt, tt.modelCtx)
		if strings.Contains(got, "raise options.num_ctx") != tt.raise || !strings.Contains(got, tt.mentions) || !strings.HasPrefix(got, "shorten it") {
			t.Errorf("%s: %q (raise advised: want %v; want it to say %q)", tt.name, got, tt.raise, tt.mentions)
		}
	}
}
