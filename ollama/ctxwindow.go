package ollama

import (
	"fmt"
	"maps"

	"github.com/ollama/ollama/api"
)

// Context windows. Ollama runs a model with the num_ctx of the call that
// loaded it (2048 tokens by default before v0.6, 4096 later, more by VRAM
// from v0.15), and cuts, or with truncate:false refuses, an input longer
// than that. membrane sizes num_ctx per call: large enough for the input
// as estimated and the answer, no larger than the model's context length
// and the host's memory budget, and left alone when what is loaded (or
// Ollama's smallest default) already fits, because a call with another
// num_ctx makes Ollama load the model again.

// minDefaultCtx is the smallest window any Ollama version loads a model
// with when num_ctx is not set.
const minDefaultCtx = 2048

// answerReserve is room kept for the answer when num_predict is not set.
const answerReserve = 1024

// bytesPerToken is the estimate's bytes of text per token: a little under
// what English and code take with common tokenizers (about 4), so that
// the estimate errs large.
const bytesPerToken = 3

// imageTokens is the estimate for one image (vision encoders take a few
// hundred to a few thousand tokens).
const imageTokens = 768

// estimateTokens guesses how many tokens creq's input takes.
func estimateTokens(creq *api.ChatRequest) int {
	n := 0
	for _, msg := range creq.Messages {
		n += 4 + (len(msg.Content)+bytesPerToken-1)/bytesPerToken + imageTokens*len(msg.Images)
	}
	return n
}

// ctxLimit is the largest num_ctx membrane sends for mod: the model's
// context length, lowered to what the host memory budget holds of its
// KV cache, or the configured override. 0 means no limit is known.
func (m *Models) ctxLimit(mod *model) int {
	if n := m.cfg.NumCtx[mod.key()]; n > 0 {
		return n
	}
	limit := mod.ContextLength
	if b := m.cfg.ContextBudget; b > 0 && mod.KVBytesPerToken > 0 {
		fit := int(b / int64(mod.KVBytesPerToken))
		fit -= fit % 256
		fit = max(fit, 256)
		if limit == 0 || fit < limit {
			limit = fit
		}
	}
	return limit
}

// chooseNumCtx returns the num_ctx to send with creq to h, or 0 to send
// none. estimate is estimateTokens(creq).
func (m *Models) chooseNumCtx(creq *api.ChatRequest, mod *model, h *host, estimate int) int {
	if h.oa != nil {
		return 0 // not an option of the OpenAI wire
	}
	if _, set := creq.Options["num_ctx"]; set {
		return 0 // the caller's (or the logical tool's) choice stands
	}
	if n := m.cfg.NumCtx[mod.key()]; n > 0 {
		return n
	}
	reserve := answerReserve
	if n, ok := number(creq.Options["num_predict"]); ok && n > 0 {
		reserve = min(int(n), 8*answerReserve)
	}
	need := estimate + reserve
	// A call without num_ctx, or with another one, makes Ollama load the
	// model again: while what is loaded fits, ask for just that.
	loaded, asked, known := h.loadedCtx(mod.key())
	if loaded >= need {
		if known {
			return asked // what it was loaded for, 0 included: no reload
		}
		return loaded
	}
	if loaded == 0 && need <= minDefaultCtx {
		return 0
	}
	n := minDefaultCtx
	for n < need {
		n *= 2
	}
	if limit := m.ctxLimit(mod); limit > 0 && n > limit {
		n = limit
	}
	if loaded >= n {
		return loaded // as large as membrane would ask for
	}
	return n
}

// withNumCtx returns creq with options.num_ctx set to n, sharing nothing
// it changes with creq (a retry on another host starts from creq again).
func withNumCtx(creq *api.ChatRequest, n int) *api.ChatRequest {
	cp := *creq
	cp.Options = maps.Clone(creq.Options)
	if cp.Options == nil {
		cp.Options = map[string]any{}
	}
	cp.Options["num_ctx"] = n
	return &cp
}

// loadedCtx is the window the host has the model loaded with, when it is
// loaded and that is known (from /api/ps, or the num_ctx membrane sent),
// and the num_ctx membrane's last call there sent, when known.
func (h *host) loadedCtx(key string) (window, asked int, known bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.loaded[key]
	return l.ContextLength, l.Asked, l.AskedKnown
}

// estimateNote is the warning for an answer whose input was estimated
// larger than its window and that Ollama counted as far fewer tokens: the
// start of the input was dropped. A low count alone proves nothing (Ollama
// does not count a prefix it had cached), so the estimate must not have
// fitted either. "" when nothing says the input was cut.
func estimateNote(estimate, promptTokens, window int) string {
	if promptTokens <= 0 || window <= 0 || estimate <= window || promptTokens*2 >= estimate {
		return ""
	}
	return fmt.Sprintf("the input was estimated at about %d tokens, more than the window of %d, and read as %d", estimate, window, promptTokens)
}

// cutAdvice says what to do about an input that was cut: raise num_ctx
// while the window it ran with (sent, asked by the caller, or filled by
// promptTokens) is smaller than the model's context length, else only
// shorten it, since no num_ctx holds more.
func cutAdvice(creq *api.ChatRequest, sent, promptTokens, modelCtx int) string {
	window := max(sent, promptTokens)
	if n, ok := number(creq.Options["num_ctx"]); ok {
		window = max(window, int(n))
	}
	switch {
	case modelCtx > 0 && window >= modelCtx:
		return fmt.Sprintf("shorten it: %d tokens is the model's whole context length, so a larger options.num_ctx does not help", modelCtx)
	case modelCtx > 0:
		return fmt.Sprintf("shorten it, or raise options.num_ctx (the model takes up to %d tokens)", modelCtx)
	}
	return "shorten it, or raise options.num_ctx (up to the model's context length)"
}

// kvBytesPerToken is the KV cache one token of context takes at f16 (the
// default cache type): keys and values, per layer, per KV head.
func kvBytesPerToken(blocks, heads, kvHeads, embd int) int {
	if blocks <= 0 || heads <= 0 || embd <= 0 {
		return 0
	}
	if kvHeads <= 0 {
		kvHeads = heads
	}
	return 2 * 2 * blocks * kvHeads * (embd / heads)
}
