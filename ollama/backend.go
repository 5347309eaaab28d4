package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/calls"
)

// Backend is an OpenAI-compatible server (vLLM, llama.cpp's llama-server,
// LM Studio, LiteLLM, Ollama's own /v1) whose models are served beside the
// Ollama hosts' models. Its models are found with GET /v1/models; each gets
// a chat tool, and an embed tool when its capabilities say it embeds.
type Backend struct {
	// Name tells the backend apart in tool names, logs and ollama_models.
	// It must match BackendNamePattern. A model whose tool name would be
	// the same as another model's (an Ollama host's, or another backend's)
	// gets the name as a prefix: chat_<name>_<model>.
	Name string `json:"name" yaml:"name"`
	// URL is the API base, up to and including the version path
	// ("http://gpu1:8000/v1"). A URL with no path gets /v1.
	URL string `json:"url" yaml:"url"`
	// APIKey is sent as a bearer token. Empty sends none, unless KeyEnv or
	// KeyFile give one.
	APIKey string `json:"-" yaml:"-"`
	// KeyEnv names an environment variable that holds the key; it is read
	// once, by New.
	KeyEnv string `json:"key_env,omitempty" yaml:"key_env,omitempty"`
	// KeyFile is a file that holds the key (surrounding space ignored); it
	// is read once, by New.
	KeyFile string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
	// Models sets what the server does not advertise, per model id; the
	// entry "*" applies to every model without its own entry.
	Models map[string]BackendModel `json:"models,omitempty" yaml:"models,omitempty"`
}

// BackendModel is what a backend's model can do, where /v1/models does not
// say. The zero value is a chat model with text only and the context
// length the server reports, if any.
type BackendModel struct {
	// Vision lets the chat tool take images.
	Vision bool `json:"vision,omitempty" yaml:"vision,omitempty"`
	// Tools marks the model as able to call tools (shown in ollama_models).
	Tools bool `json:"tools,omitempty" yaml:"tools,omitempty"`
	// Thinking lets callers pass think, sent as reasoning_effort.
	Thinking bool `json:"thinking,omitempty" yaml:"thinking,omitempty"`
	// Embedding makes the model an embedding model: an embed tool
	// (POST /v1/embeddings) instead of a chat tool. Without an entry, a
	// model whose id contains "embed" is taken for one.
	Embedding *bool `json:"embedding,omitempty" yaml:"embedding,omitempty"`
	// ContextLength is the model's context window in tokens, for
	// descriptions and truncation warnings. Zero means what the server
	// reports (vLLM's max_model_len, llama-server's n_ctx_train), if any.
	ContextLength int `json:"context_length,omitempty" yaml:"context_length,omitempty"`
}

// BackendNamePattern is what a Backend's Name must match: short, lower
// case, so that it fits in tool names.
var BackendNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,23}$`)

// ParseBackend reads a backend written as NAME=URL, with optional
// ",key-env=VAR" or ",key-file=PATH" after the URL:
// "vllm=http://gpu1:8000/v1,key-env=VLLM_KEY".
func ParseBackend(s string) (Backend, error) {
	s = strings.TrimSpace(s)
	name, rest, ok := strings.Cut(s, "=")
	if !ok || strings.Contains(name, "/") || strings.Contains(name, ":") {
		return Backend{}, fmt.Errorf("backend %q: want NAME=URL, such as vllm=http://gpu1:8000/v1", RedactURL(s))
	}
	parts := strings.Split(rest, ",")
	b := Backend{Name: strings.TrimSpace(name), URL: strings.TrimSpace(parts[0])}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k {
		case "key-env":
			b.KeyEnv = v
		case "key-file":
			b.KeyFile = v
		default:
			return Backend{}, fmt.Errorf("backend %s: unknown part %q after the URL; want key-env=VAR or key-file=PATH", b.Name, k)
		}
	}
	if err := b.check(); err != nil {
		return Backend{}, err
	}
	return b, nil
}

// check validates a backend's name and URL.
func (b *Backend) check() error {
	if !BackendNamePattern.MatchString(b.Name) {
		return fmt.Errorf("backend name %q must match %s", b.Name, BackendNamePattern)
	}
	if _, err := backendURL(b.URL); err != nil {
		return fmt.Errorf("backend %s: %w", b.Name, err)
	}
	if b.KeyEnv != "" && b.KeyFile != "" {
		return fmt.Errorf("backend %s: give the key by environment variable or by file, not both", b.Name)
	}
	for id, c := range b.Models {
		if c.ContextLength < 0 {
			return fmt.Errorf("backend %s: model %s: context length must not be negative", b.Name, id)
		}
	}
	return nil
}

// ValidateBackends checks backends as New does: valid, distinct names and
// URLs. It reads no key.
func ValidateBackends(bs []Backend) error {
	var errs []error
	seen := map[string]bool{}
	for i := range bs {
		if err := bs[i].check(); err != nil {
			errs = append(errs, err)
		}
		if seen[bs[i].Name] {
			errs = append(errs, fmt.Errorf("backend name %q is used twice", bs[i].Name))
		}
		seen[bs[i].Name] = true
	}
	return errors.Join(errs...)
}

// backendURL parses a backend's base URL: http or https, a host, and /v1
// when no path is given.
func backendURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URL %q: want http(s)://host[:port]/v1", RedactURL(s))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("URL %q: no query or fragment, just the API base", RedactURL(s))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if u.Path == "" {
		u.Path = "/v1"
	}
	u.RawPath = ""
	return u, nil
}

// ErrNoKey means a backend's key variable or key file gives no key.
var ErrNoKey = errors.New("no API key")

// key returns the backend's API key: APIKey, else from KeyEnv or KeyFile.
func (b *Backend) key() (string, error) {
	switch {
	case b.APIKey != "":
		return b.APIKey, nil
	case b.KeyEnv != "":
		v := strings.TrimSpace(os.Getenv(b.KeyEnv))
		if v == "" {
			return "", fmt.Errorf("backend %s: %w: the variable %s is empty or unset; set it in membrane's environment, or give the key by file", b.Name, ErrNoKey, b.KeyEnv)
		}
		return v, nil
	case b.KeyFile != "":
		raw, err := os.ReadFile(b.KeyFile)
		if err != nil {
			return "", fmt.Errorf("backend %s: key file: %w", b.Name, err)
		}
		v := strings.TrimSpace(string(raw))
		if v == "" || strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("backend %s: %w: the key file %s must hold one line, the key", b.Name, ErrNoKey, b.KeyFile)
		}
		return v, nil
	}
	return "", nil
}

// capsFor is the capabilities and context length of a backend model, from
// its configuration entry and what the listing said.
func (b *Backend) capsFor(id string, listedCtx int) ([]string, int) {
	c, ok := b.Models[id]
	if !ok {
		c, ok = b.Models["*"]
	}
	embed := strings.Contains(strings.ToLower(id), "embed")
	if c.Embedding != nil {
		embed = *c.Embedding
	}
	ctxLen := listedCtx
	if ok && c.ContextLength > 0 {
		ctxLen = c.ContextLength
	}
	if embed {
		return []string{capEmbedding}, ctxLen
	}
	caps := []string{capCompletion}
	if c.Tools {
		caps = append(caps, capTools)
	}
	if c.Vision {
		caps = append(caps, capVision)
	}
	if c.Thinking {
		caps = append(caps, capThinking)
	}
	return caps, ctxLen
}

// openAI is the OpenAI-compatible side of a host: set for a backend, nil
// for an Ollama host.
type openAI struct {
	cfg   Backend
	base  *url.URL
	key   string
	label string // "vllm (http://gpu1:8000/v1)"
}

func newBackendHost(b Backend, hc *http.Client) (*host, error) {
	u, err := backendURL(b.URL)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", b.Name, err)
	}
	key, err := b.key()
	if err != nil {
		return nil, err
	}
	oa := &openAI{cfg: b, base: u, key: key}
	oa.label = b.Name + " (" + u.Redacted() + ")"
	return &host{base: u, name: oa.label, http: hc, oa: oa}, nil
}

// request builds a request to the backend's path (relative to its base).
func (o *openAI) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, o.base.JoinPath(path).String(), body)
	if err != nil {
		return nil, err
	}
	if o.key != "" {
		req.Header.Set("Authorization", "Bearer "+o.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// maxErrorBody caps the error reply read from a backend.
const maxErrorBody = 64 << 10

// statusError turns a backend's non-200 reply into an api.StatusError, so
// that it is classified and explained as an Ollama reply is. The message
// is taken from the shapes servers use: {"error": {"message": ...}}
// (OpenAI, vLLM, llama-server, LiteLLM), {"error": "..."} (Ollama, LM
// Studio), {"message": ...} and {"detail": ...} (vLLM and FastAPI).
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	se := api.StatusError{StatusCode: resp.StatusCode, Status: resp.Status, ErrorMessage: errorMessage(body)}
	if se.ErrorMessage == "" {
		se.ErrorMessage = strings.TrimSpace(calls.ValidUTF8(string(body)))
	}
	if len(se.ErrorMessage) > 2000 {
		se.ErrorMessage = truncateString(se.ErrorMessage, 2000)
	}
	return se
}

// errorMessage finds the error text in an OpenAI-style error body; "" when
// there is none.
func errorMessage(body []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil && s != "" {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(e.Error, &o) == nil && o.Message != "" {
		return o.Message
	}
	if e.Message != "" {
		return e.Message
	}
	if json.Unmarshal(e.Detail, &s) == nil && s != "" {
		return s
	}
	if len(e.Detail) > 0 {
		return string(e.Detail)
	}
	return ""
}

// listModels reads GET /v1/models and makes each model a tagModel with the
// capabilities its configuration gives.
func (o *openAI) listModels(ctx context.Context, hc *http.Client) ([]tagModel, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	req, err := o.request(ctx, http.MethodGet, "models", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTagsBytes))
	if err != nil {
		return nil, err
	}
	return o.parseModels(body)
}

// parseModels decodes a /v1/models body. Ids that are not usable model
// names, and repeated ids, are dropped.
func (o *openAI) parseModels(body []byte) ([]tagModel, error) {
	var resp struct {
		Data *[]struct {
			ID          string `json:"id"`
			OwnedBy     string `json:"owned_by"`
			MaxModelLen int    `json:"max_model_len"` // vLLM
			Meta        struct {
				NCtxTrain int `json:"n_ctx_train"` // llama-server
			} `json:"meta"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("%w (%v)", errNotModelList, err)
	}
	if resp.Data == nil {
		// A JSON reply without "data": another API at this URL.
		return nil, fmt.Errorf("%w (it has no \"data\" list)", errNotModelList)
	}
	var out []tagModel
	seen := map[string]bool{}
	for _, d := range *resp.Data {
		if !validModelName(d.ID) || seen[d.ID] {
			continue
		}
		seen[d.ID] = true
		ctxLen := d.MaxModelLen
		if ctxLen <= 0 {
			ctxLen = d.Meta.NCtxTrain
		}
		caps, ctxLen := o.cfg.capsFor(d.ID, max(ctxLen, 0))
		out = append(out, tagModel{Name: d.ID, Model: d.ID, Capabilities: caps, contextLength: ctxLen})
	}
	slices.SortFunc(out, func(a, b tagModel) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
