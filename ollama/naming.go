package ollama

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Tool-name prefixes, one per kind of model tool.
const (
	prefixChat  = "chat_"
	prefixEmbed = "embed_"
)

// maxToolName is the longest tool name OpenAI-style APIs accept.
const maxToolName = 64

// canonicalModel returns the name Ollama lists a model under: a name without
// a tag gets ":latest". Case is kept; Ollama matches names without regard to
// case, and so does modelKey.
func canonicalModel(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return ""
	}
	// The tag follows the last ':' after the last '/': "host:5000/x" has no tag.
	slash := strings.LastIndexByte(name, '/')
	if !strings.Contains(name[slash+1:], ":") {
		name += ":latest"
	}
	return name
}

// modelKey is the identity of a model name: canonical and lower case.
func modelKey(name string) string { return strings.ToLower(canonicalModel(name)) }

// slug turns a model name into the part of a tool name after the prefix:
// the ":latest" tag dropped, lower case, every run of characters outside
// [a-z0-9] turned into one '_', no '_' at either end.
// "hf.co/x/Llama-3.2:Q4_K_M" becomes "hf_co_x_llama_3_2_q4_k_m".
func slug(model string) string {
	m := strings.ToLower(canonicalModel(model))
	m = strings.TrimSuffix(m, ":latest")
	var b strings.Builder
	b.Grow(len(m))
	under := false
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimRight(b.String(), "_")
}

// shortHash is 8 hex digits of the SHA-256 of the canonical model name: a
// stable suffix that tells apart models whose slugs collide.
func shortHash(model string) string {
	sum := sha256.Sum256([]byte(modelKey(model)))
	return hex.EncodeToString(sum[:4])
}

// toolName is the name of the prefix tool for model when no other model
// shares its slug: prefix + slug, or, when that is longer than 64 characters
// or the slug is empty, the slug cut short with a hash suffix.
func toolName(prefix, model string) string {
	s := slug(model)
	if s != "" && len(prefix)+len(s) <= maxToolName {
		return prefix + s
	}
	return hashedToolName(prefix, model)
}

// hashedToolName is prefix + slug cut to fit + "_" + shortHash: the name a
// model gets when its plain name is too long or taken by another model.
func hashedToolName(prefix, model string) string {
	s := slug(model)
	h := shortHash(model)
	room := maxToolName - len(prefix) - 1 - len(h)
	if len(s) > room {
		s = strings.TrimRight(s[:room], "_")
	}
	if s == "" {
		return prefix + h
	}
	return prefix + s + "_" + h
}

// assignNames gives each model in models (canonical names) its tool name for
// prefix. Models whose plain names collide (say "a.b" and "a_b") all get
// hashed names, so that which one arrived first never matters: the same set
// of models always gets the same names.
func assignNames(prefix string, models []string) map[string]string {
	plain := make(map[string][]string, len(models))
	for _, m := range models {
		n := toolName(prefix, m)
		plain[n] = append(plain[n], m)
	}
	out := make(map[string]string, len(models))
	for n, ms := range plain {
		if len(ms) == 1 {
			out[ms[0]] = n
			continue
		}
		for _, m := range ms {
			out[m] = hashedToolName(prefix, m)
		}
	}
	return out
}

// displayName is the name callers use for mod: its Ollama name, or
// BACKEND/ID for a backend's model.
func (m *model) displayName() string {
	if m.backend != "" {
		return m.backend + "/" + m.Name
	}
	return m.Name
}

// assignModelNames gives each model for which ok holds its tool name for
// prefix, by model key. Ollama models are named as assignNames names them.
// A backend's model gets the plain name of its id when no other model
// would have that name, and otherwise prefix + backend + "_" + id, so that
// it never takes an Ollama model's name, and two backends serving the
// same id never fight over one.
func assignModelNames(prefix string, mods []*model, ok func(*model) bool) map[string]string {
	var ollamaNames []string
	plain := map[string]int{} // plain tool name -> models that want it
	for _, mod := range mods {
		if !ok(mod) {
			continue
		}
		if mod.backend == "" {
			ollamaNames = append(ollamaNames, mod.Name)
		}
		plain[toolName(prefix, mod.Name)]++
	}
	out := map[string]string{}
	taken := map[string]bool{}
	for name, tool := range assignNames(prefix, ollamaNames) {
		out[modelKey(name)] = tool
		taken[tool] = true
	}
	var prefixed []string
	byPrefixed := map[string]*model{}
	for _, mod := range mods {
		if !ok(mod) || mod.backend == "" {
			continue
		}
		if n := toolName(prefix, mod.Name); plain[n] == 1 && !taken[n] {
			out[mod.key()] = n
			taken[n] = true
			continue
		}
		p := mod.backend + "_" + mod.Name
		prefixed = append(prefixed, p)
		byPrefixed[p] = mod
	}
	for name, tool := range assignNames(prefix, prefixed) {
		if taken[tool] {
			tool = hashedToolName(prefix, name)
		}
		out[byPrefixed[name].key()] = tool
		taken[tool] = true
	}
	return out
}

// where says what kind of model mod is, for descriptions.
func (m *model) where() string {
	if m.backend != "" {
		return "model of the OpenAI-compatible server"
	}
	return "local model"
}
