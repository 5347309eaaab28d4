package ollama

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ollama/ollama/api"
)

// Capability names as Ollama reports them.
const (
	capCompletion = "completion"
	capEmbedding  = "embedding"
	capVision     = "vision"
	capThinking   = "thinking"
	capTools      = "tools"
	capInsert     = "insert"
)

// listTimeout bounds one /api/tags or /api/show request during discovery,
// so that a hung host cannot stall the refresh of the others.
const listTimeout = 10 * time.Second

// maxTagsBytes caps the /api/tags body read from a host.
const maxTagsBytes = 64 << 20

// HostStatus is what a refresh last saw of one Ollama host.
type HostStatus struct {
	// URL is the host's base URL, with any password redacted.
	URL string `json:"url"`
	// Up reports whether the last listing succeeded.
	Up bool `json:"up"`
	// Models is how many models the host listed; 0 while it is down.
	Models int `json:"models"`
	// Err says why the host is down; empty when it is up.
	Err string `json:"err,omitempty"`
	// Loaded are the models the host has in memory, as its /api/ps said
	// at the last refresh (and calls since have shown); empty for an
	// OpenAI-compatible backend, which does not say.
	Loaded []string `json:"loaded,omitempty"`
}

// host is one Ollama server.
type host struct {
	base   *url.URL
	name   string      // base with the password redacted, for logs and descriptions
	client *api.Client // nil for an OpenAI-compatible backend
	http   *http.Client
	oa     *openAI // set for an OpenAI-compatible backend

	inflight atomic.Int64 // calls running on this host, for least-busy routing

	mu     sync.Mutex
	up     bool
	err    string
	tags   []tagModel             // as of the last successful listing, until downAfter failures
	listed bool                   // a listing was ever attempted
	fails  int                    // listings failed in a row
	loaded map[string]loadedModel // by model key, from /api/ps and calls

	sched hostSched // orders the calls of different models (hostsched.go)
}

func newHost(base *url.URL, hc *http.Client) *host {
	return &host{base: base, name: base.Redacted(), client: api.NewClient(base, hc), http: hc}
}

func (h *host) status() HostStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := HostStatus{URL: h.name, Up: h.up, Err: h.err}
	if h.up {
		st.Models = len(h.tags)
		st.Loaded = h.loadedNames(time.Now())
	}
	if !h.listed {
		st.Err = "not contacted yet"
	}
	return st
}

func (h *host) isUp() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

// markDown records that a call could not reach the host; the next refresh
// decides again.
func (h *host) markDown(err error) {
	h.mu.Lock()
	h.up = false
	h.err = h.describeErr(err)
	h.mu.Unlock()
}

// tagModel is one /api/tags entry. Newer Ollama versions add capabilities,
// which api.ListModelResponse (v0.17.4) does not carry, so the listing is
// decoded here.
type tagModel struct {
	Name         string           `json:"name"`
	Model        string           `json:"model"`
	Digest       string           `json:"digest"`
	Size         int64            `json:"size"`
	Details      api.ModelDetails `json:"details"`
	Capabilities []string         `json:"capabilities,omitempty"`
	// contextLength is what an OpenAI-compatible listing said of the
	// context window; Ollama's comes from /api/show.
	contextLength int
}

// parseTags decodes an /api/tags body. Entries with no usable name are
// dropped.
func parseTags(body []byte) ([]tagModel, error) {
	var resp struct {
		Models []tagModel `json:"models"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("malformed /api/tags reply: %w", err)
	}
	out := resp.Models[:0]
	for _, t := range resp.Models {
		if t.Name == "" {
			t.Name = t.Model
		}
		if !validModelName(t.Name) {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// validModelName reports whether a name a host listed is one membrane will
// serve: printable, no spaces, not absurdly long.
func validModelName(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

// list reads the host's models.
func (h *host) list(ctx context.Context) ([]tagModel, error) {
	if h.oa != nil {
		return h.oa.listModels(ctx, h.http)
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base.JoinPath("/api/tags").String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTagsBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var se api.StatusError
		_ = json.Unmarshal(body, &se)
		se.StatusCode, se.Status = resp.StatusCode, resp.Status
		return nil, se
	}
	return parseTags(body)
}

// modelDetails is what membrane knows of one model from /api/show.
type modelDetails struct {
	Capabilities    []string
	ContextLength   int
	EmbeddingLength int
	Arch            string
	KVBytesPerToken int // f16 KV cache per token of context; 0 unknown
	// ThinkLevels: the model takes think "low", "medium" or "high", not
	// only true or false (see thinkLevelsFromShow).
	ThinkLevels bool
}

// show reads a model's details from /api/show.
func (h *host) show(ctx context.Context, name string) (*modelDetails, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	resp, err := h.client.Show(ctx, &api.ShowRequest{Model: name})
	if err != nil {
		return nil, err
	}
	return detailsFromShow(resp), nil
}

func detailsFromShow(resp *api.ShowResponse) *modelDetails {
	d := &modelDetails{}
	for _, c := range resp.Capabilities {
		d.Capabilities = append(d.Capabilities, string(c))
	}
	d.Arch, _ = resp.ModelInfo["general.architecture"].(string)
	if d.Arch != "" {
		d.ContextLength = intOf(resp.ModelInfo[d.Arch+".context_length"])
		d.EmbeddingLength = intOf(resp.ModelInfo[d.Arch+".embedding_length"])
		d.KVBytesPerToken = kvBytesPerToken(intOf(resp.ModelInfo[d.Arch+".block_count"]), intOf(resp.ModelInfo[d.Arch+".attention.head_count"]),
			intOf(resp.ModelInfo[d.Arch+".attention.head_count_kv"]), d.EmbeddingLength)
	}
	if len(d.Capabilities) == 0 {
		// Servers older than capabilities in /api/show: an embedding model
		// is one with a pooling type, anything else completes text.
		if _, ok := resp.ModelInfo[d.Arch+".pooling_type"]; ok && d.Arch != "" {
			d.Capabilities = []string{capEmbedding}
		} else {
			d.Capabilities = []string{capCompletion}
		}
	}
	d.ThinkLevels = thinkLevelsFromShow(resp)
	if d.ContextLength == 0 {
		// Some architectures nest their keys differently; take any
		// "*.context_length" there is.
		for k, v := range resp.ModelInfo {
			if strings.HasSuffix(k, ".context_length") {
				d.ContextLength = max(d.ContextLength, intOf(v))
			}
		}
	}
	return d
}

// thinkLevelsFromShow says whether a model takes think levels. Ollama
// v0.17.4 accepts a string think value only for models it parses with its
// harmony parser (gpt-oss), and answers any other model's level with 400
// `think value "low" is not supported for this model`. It uses that parser
// when the model was created with PARSER harmony (the Modelfile /api/show
// returns says so; v0.17.4 leaves the parser field empty) or when the
// family is gpt-oss and the template has the harmony tags.
func thinkLevelsFromShow(resp *api.ShowResponse) bool {
	if resp.Parser == "harmony" {
		return true
	}
	for line := range strings.Lines(resp.Modelfile) {
		if f := strings.Fields(line); len(f) == 2 && strings.EqualFold(f[0], "PARSER") && f[1] == "harmony" {
			return true
		}
	}
	switch resp.Details.Family {
	case "gptoss", "gpt-oss":
		return strings.Contains(resp.Template, "<|start|>") && strings.Contains(resp.Template, "<|end|>")
	}
	return false
}

func intOf(v any) int {
	switch n := v.(type) {
	case float64:
		if n > 0 && n < 1<<40 {
			return int(n)
		}
	case int:
		return n
	case int64:
		return int(n)
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	}
	return 0
}

// model is one model as membrane serves it: merged over every host that has
// it. It is immutable once built; a refresh builds new ones.
type model struct {
	Name            string // as the first host listed it, e.g. "qwen3:0.6b"
	Digest          string
	Family          string
	ParameterSize   string
	Quantization    string
	Format          string
	Size            int64
	ContextLength   int
	EmbeddingLength int
	KVBytesPerToken int
	Capabilities    []string
	// ThinkLevels: think takes "low", "medium" and "high" as well as
	// true and false.
	ThinkLevels bool
	hosts       []*host // hosts that have it, in configuration order
	// backend is the name of the OpenAI-compatible backend that serves
	// the model (its one host); "" for an Ollama model.
	backend string
}

// key is the model's identity: modelKey of its name for an Ollama model
// (one model over every Ollama host that lists the name), and
// "@backend/id" for a backend's, whose ids are the backend's own.
func (m *model) key() string {
	if m.backend != "" {
		return backendKey(m.backend, m.Name)
	}
	return modelKey(m.Name)
}

// backendKey is the key of a backend's model.
func backendKey(backend, id string) string { return "@" + backend + "/" + id }

func (m *model) has(c string) bool { return slices.Contains(m.Capabilities, c) }

func (m *model) canChat() bool  { return m.has(capCompletion) }
func (m *model) canEmbed() bool { return m.has(capEmbedding) }

// hostNames lists the hosts that have the model.
func (m *model) hostNames() []string {
	out := make([]string, len(m.hosts))
	for i, h := range m.hosts {
		out[i] = h.name
	}
	return out
}

// summary is one line of facts about the model for descriptions.
func (m *model) summary() string {
	var parts []string
	if m.Family != "" {
		parts = append(parts, "family "+m.Family)
	}
	if m.ParameterSize != "" {
		parts = append(parts, m.ParameterSize+" parameters")
	}
	if m.Quantization != "" {
		parts = append(parts, "quantization "+m.Quantization)
	}
	if m.ContextLength > 0 {
		parts = append(parts, fmt.Sprintf("context %d tokens", m.ContextLength))
	}
	if m.EmbeddingLength > 0 && m.canEmbed() {
		parts = append(parts, fmt.Sprintf("%d dimensions", m.EmbeddingLength))
	}
	if len(m.Capabilities) > 0 {
		parts = append(parts, "capabilities "+strings.Join(m.Capabilities, ", "))
	}
	hosts := m.hostNames()
	if len(hosts) == 1 {
		parts = append(parts, "on "+hosts[0])
	} else {
		parts = append(parts, "on "+strings.Join(hosts, " and "))
	}
	return strings.Join(parts, "; ")
}

// downReasons says, host by host, why none of mod's hosts can take a call.
func (m *model) downReasons() string {
	var parts []string
	for _, h := range m.hosts {
		st := h.status()
		if st.Err == "" {
			st.Err = "down"
		}
		parts = append(parts, st.URL+": "+st.Err)
	}
	return strings.Join(parts, "; ")
}

// pickHost returns the up host that has m and is running the fewest calls,
// skipping those in tried; ties go to the earlier host in the configuration.
func (m *model) pickHost(tried []*host) *host { return m.pick(tried, 0) }

// pick is pickHost that first prefers a host that has the model loaded
// already (a call there skips the load, and no other host has to load it
// beside), while that host runs fewer than per calls; per <= 0 means
// always. Among equals the least busy wins, then the earlier one.
func (m *model) pick(tried []*host, per int) *host {
	var (
		best     *host
		load     int64
		bestWarm bool
		now      = time.Now()
		key      = m.key()
	)
	for _, h := range m.hosts {
		if slices.Contains(tried, h) || !h.isUp() {
			continue
		}
		n := h.inflight.Load()
		warm := h.isLoaded(key, now) && (per <= 0 || n < int64(per))
		if best == nil || warm && !bestWarm || warm == bestWarm && n < load {
			best, load, bestWarm = h, n, warm
		}
	}
	return best
}
