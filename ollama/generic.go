package ollama

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// The generic tools: always registered, with schemas that never change, for
// clients that list tools once and cache them.
const (
	ToolModels = "ollama_models"
	ToolChat   = "ollama_chat"
	ToolEmbed  = "ollama_embed"
)

func isGeneric(name string) bool {
	return name == ToolModels || name == ToolChat || name == ToolEmbed
}

// maxNamesInError caps the model names an unknown-model error lists.
const maxNamesInError = 20

func (m *Models) genericCalls() []calls.Call {
	return []calls.Call{
		{
			Name:  ToolModels,
			Title: "List Ollama models",
			Description: "List the local Ollama models membrane serves right now: name, capabilities (completion, embedding, vision, thinking, tools), " +
				"family, size, quantization, context length, which hosts have each, and the tool that runs it. Set refresh to read the hosts again first. " +
				"Use a name from here as the model of ollama_chat or ollama_embed.",
			InputSchema: mustJSON(map[string]any{
				"type": "object",
				"properties": map[string]any{
					"refresh":    map[string]any{"type": "boolean", "description": "Read every host's model list again before answering."},
					"capability": map[string]any{"type": "string", "enum": []string{capCompletion, capEmbedding, capVision, capThinking, capTools, capInsert}, "description": "Only list models with this capability."},
				},
				"additionalProperties": false,
			}),
			OutputSchema: modelsOutputSchema,
			Kind:         calls.KindTool,
			ReadOnly:     true,
			Handler:      calls.HandlerFunc(m.handleModels),
		},
		{
			Name:  ToolChat,
			Title: "Chat with an Ollama model",
			Description: "Chat with any local Ollama model by name (see ollama_models). Give model and a prompt, or messages for a conversation; " +
				"optional system prompt, options such as temperature, format for JSON output (\"json\" or a JSON schema), images for vision models " +
				"(base64 or session workspace paths), and think for thinking models. Returns the model's answer.",
			InputSchema:  chatSchema(schemaFlags{generic: true, system: true}),
			OutputSchema: chatOutputSchema,
			Kind:         calls.KindModel,
			Timeout:      m.cfg.CallTimeout,
			Concurrency:  -1,
			ReadOnly:     true,
			Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
				a, err := decodeChat(req.Arguments, true, false)
				if err != nil {
					return calls.Errorf("%v", err), nil
				}
				mod, res := m.resolve(a.Model, capCompletion)
				if res != nil {
					return res, nil
				}
				return m.runChat(ctx, req, mod, nil, a)
			}),
		},
		{
			Name:  ToolEmbed,
			Title: "Embed text with an Ollama model",
			Description: "Embed text with any local Ollama embedding model by name (see ollama_models). Give model and one input or an array of inputs; " +
				"returns one vector per input, or with summary a compact summary of each.",
			InputSchema:  embedSchema(true, false, 0),
			OutputSchema: embedOutputSchema,
			Kind:         calls.KindModel,
			Timeout:      m.cfg.CallTimeout,
			Concurrency:  -1,
			ReadOnly:     true,
			Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
				a, inputs, err := decodeEmbed(req.Arguments, true)
				if err != nil {
					return calls.Errorf("%v", err), nil
				}
				mod, res := m.resolve(a.Model, capEmbedding)
				if res != nil {
					return res, nil
				}
				return m.runEmbed(ctx, req, mod, a, inputs)
			}),
		},
	}
}

// resolve finds a discovered model by the name a caller gave. Only names in
// the live set are accepted, matched exactly (case aside, ":latest"
// implied): the name is never used to build a URL or a command, but the
// model Ollama gets is always one it listed.
func (m *Models) resolve(name string, capability string) (*model, *calls.Result) {
	if !validModelName(name) {
		return nil, calls.Errorf("%q is not a model name; call ollama_models for the names", truncateString(name, 80))
	}
	if mod, ok := m.lookup(modelKey(name)); ok {
		return mod, nil
	}
	if mod, ok := m.lookup("@" + name); ok {
		return mod, nil // a backend's model, as BACKEND/ID
	}
	var names []string
	for _, mod := range m.snapshot() {
		if mod.has(capability) {
			names = append(names, mod.displayName())
		}
	}
	if len(names) == 0 {
		if m.anyUp() {
			return nil, calls.Errorf("unknown model %q: no %s model is installed (pull one with `ollama pull`)", truncateString(name, 80), capability)
		}
		return nil, calls.Errorf("unknown model %q: no Ollama host is reachable right now (%s)", truncateString(name, 80), m.hostSummary())
	}
	more := ""
	if len(names) > maxNamesInError {
		more = fmt.Sprintf(" and %d more (see ollama_models)", len(names)-maxNamesInError)
		names = names[:maxNamesInError]
	}
	return nil, calls.Errorf("unknown model %q; the %s models are: %s%s", truncateString(name, 80), capability, strings.Join(names, ", "), more)
}

func (m *Models) anyUp() bool {
	for _, h := range m.hosts {
		if h.isUp() {
			return true
		}
	}
	return false
}

func (m *Models) hostSummary() string {
	var parts []string
	for _, st := range m.Hosts() {
		if st.Up {
			parts = append(parts, st.URL+" up")
		} else {
			parts = append(parts, st.URL+": "+st.Err)
		}
	}
	return strings.Join(parts, "; ")
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return calls.ValidUTF8(s[:n]) + "…"
}

// modelEntry is one model in the ollama_models answer.
type modelEntry struct {
	Name string `json:"name"`
	// Backend is the OpenAI-compatible backend that serves the model;
	// empty for an Ollama model. Its name is BACKEND/ID.
	Backend       string   `json:"backend,omitempty"`
	Tools         []string `json:"tools"`
	Capabilities  []string `json:"capabilities"`
	Family        string   `json:"family,omitempty"`
	ParameterSize string   `json:"parameter_size,omitempty"`
	Quantization  string   `json:"quantization,omitempty"`
	ContextLength int      `json:"context_length,omitempty"`
	Dimensions    int      `json:"embedding_dimensions,omitempty"`
	Hosts         []string `json:"hosts"`
	// Available is false while every host that has the model is down.
	Available bool `json:"available"`
	// LoadedOn are the hosts that have the model in memory now: a call
	// goes to one of them first.
	LoadedOn []string `json:"loaded_on,omitempty"`
	// NumCtxLimit is the largest num_ctx membrane sends for the model:
	// its context length, lowered by the context memory budget, or the
	// configured num_ctx. Below it, membrane sizes num_ctx to the input.
	NumCtxLimit int `json:"num_ctx_limit,omitempty"`
}

func (m *Models) handleModels(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	var a struct {
		Refresh    bool   `json:"refresh"`
		Capability string `json:"capability"`
	}
	if err := calls.DecodeArgs(req.Arguments, &a); err != nil {
		return calls.Errorf("%v", err), nil
	}
	if a.Refresh {
		_ = m.Refresh(ctx) // host errors show in the hosts list
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	m.mu.RLock()
	toolsOf := map[string][]string{}
	for name, t := range m.tools {
		if t.Model != "" {
			toolsOf[t.Model] = append(toolsOf[t.Model], name)
		}
	}
	m.mu.RUnlock()
	entries := []modelEntry{}
	for _, mod := range m.snapshot() {
		if a.Capability != "" && !mod.has(a.Capability) {
			continue
		}
		tools := toolsOf[mod.key()]
		slices.Sort(tools)
		entries = append(entries, modelEntry{
			Name: mod.displayName(), Backend: mod.backend, Tools: tools, Capabilities: mod.Capabilities,
			Family: mod.Family, ParameterSize: mod.ParameterSize, Quantization: mod.Quantization,
			ContextLength: mod.ContextLength, Dimensions: mod.EmbeddingLength, Hosts: mod.hostNames(),
			Available: mod.pickHost(nil) != nil, LoadedOn: mod.loadedOn(time.Now()), NumCtxLimit: m.numCtxLimit(mod),
		})
	}
	out := map[string]any{"models": entries, "hosts": m.Hosts()}
	b, _ := json.MarshalIndent(out, "", "  ")
	text := string(b)
	if len(entries) == 0 && !m.anyUp() {
		text = "No Ollama host is reachable (" + m.hostSummary() + "). Start Ollama, or point membrane's Ollama host setting (or OLLAMA_HOST) at it.\n" + text
	}
	return &calls.Result{Content: []calls.Content{{Type: calls.ContentText, Text: text}}, Structured: out}, nil
}

// numCtxLimit is ctxLimit for an Ollama model; 0 for a backend's.
func (m *Models) numCtxLimit(mod *model) int {
	if mod.backend != "" {
		return 0
	}
	return m.ctxLimit(mod)
}
