package ollama

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults used where Config leaves a field zero.
const (
	DefaultRefreshInterval  = 15 * time.Second
	DefaultCallTimeout      = 5 * time.Minute
	DefaultModelConcurrency = 2
	DefaultMaxPromptBytes   = 8 << 20
	DefaultMaxResponseBytes = 1 << 20
)

// ToolSpec is a logical tool: a name of the user's choosing bound to one
// model, with its own description, system prompt and default options. It is
// registered only while its model exists on some host.
type ToolSpec struct {
	// Tool is the tool name; it must match calls.NamePattern.
	Tool string `json:"tool" yaml:"tool"`
	// Model is the Ollama model the tool runs, such as "qwen3:0.6b". A name
	// without a tag means ":latest".
	Model string `json:"model" yaml:"model"`
	// Description tells clients what the tool is for. Empty means one is
	// made from the model's details.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// System is the system prompt every call starts with. When set, callers
	// cannot pass their own.
	System string `json:"system,omitempty" yaml:"system,omitempty"`
	// Options are Ollama model options (temperature, num_ctx, ...) applied
	// to every call; a caller's options override them key by key.
	Options map[string]any `json:"options,omitempty" yaml:"options,omitempty"`
	// Timeout bounds one call of this tool, as a Go duration ("90s",
	// "10m"); a slow, large model may need more than CallTimeout. Zero
	// means Config.CallTimeout.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// Duration is a time.Duration written as text ("90s", "2m30s") in JSON
// and YAML configuration files.
type Duration time.Duration

// UnmarshalText parses a Go duration such as "90s", or a bare number of
// seconds ("90"), as every duration in membrane's settings reads.
func (d *Duration) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		if !(n >= 0) || n > 1e9 {
			return fmt.Errorf("timeout %q: a number of seconds from 0 to 1e9", b)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(t)
	if err != nil {
		return fmt.Errorf("timeout %q: want a duration such as 90s or 10m, or a number of seconds", b)
	}
	if v < 0 {
		return fmt.Errorf("timeout %q must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Config configures Models. The zero value is usable: it talks to the host
// OLLAMA_HOST names (or 127.0.0.1:11434) with the defaults above.
type Config struct {
	// Hosts are the Ollama servers to serve models from, in order of
	// preference. An empty list, or an "" entry, means the host OLLAMA_HOST
	// names, with Ollama's own rules: "" is http://127.0.0.1:11434, a bare
	// host gets port 11434, "http://h" means port 80.
	Hosts []string
	// RefreshInterval is how often the model list is read again. Zero means
	// DefaultRefreshInterval. While a host is down it is retried at least
	// every 5 seconds.
	RefreshInterval time.Duration
	// CallTimeout bounds one model call, queueing and model loading
	// included. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// ModelConcurrency is how many calls may run against one model at once
	// (all of its tools together), per up host that has the model. Later
	// calls wait their turn, first come first served, with progress
	// notifications, until their deadline; past 16 waiting per slot they
	// are turned away as busy. Zero means DefaultModelConcurrency; negative
	// means no limit.
	ModelConcurrency int
	// MaxPromptBytes caps the text and images of one call. Zero means
	// DefaultMaxPromptBytes; negative means no limit.
	MaxPromptBytes int64
	// MaxResponseBytes caps the text one chat call returns: generation
	// stops there and the answer is marked truncated. Zero means
	// DefaultMaxResponseBytes; negative means no limit.
	MaxResponseBytes int64
	// Tools are logical tools (see ToolSpec). SetTools replaces them.
	Tools []ToolSpec
	// ModelTools says which tools the discovered models get. Empty means
	// ModelToolsPerModel.
	ModelTools ModelTools
	// ContextBudget is the memory, in bytes, one call's context window
	// (its KV cache) may take on a host: num_ctx is capped where the
	// model's KV cache would pass it. Zero means no cap but the model's
	// context length.
	ContextBudget int64
	// NumCtx sets the num_ctx sent with every call of a model, by model
	// name, instead of the size membrane chooses (a caller's own num_ctx
	// still wins). Nil means none.
	NumCtx map[string]int
	// Backends are OpenAI-compatible servers whose models are served
	// beside the Ollama hosts' (see Backend), with the same routing,
	// queueing, limits and refresh. None by default.
	Backends []Backend

	// MaxLoadedModels is how many models one Ollama host keeps in memory
	// at once, for the order of calls across models (hostsched.go): calls
	// of a model that is running on a host join it, and calls of other
	// models wait until the host has room, so the host does not load and
	// unload models in turn. Zero learns it from each host's /api/ps (no
	// limit until a load pushes a model out); negative turns the ordering
	// off. OpenAI-compatible backends are never ordered.
	MaxLoadedModels int
	// SwitchWait bounds how long a call waits while calls of the models
	// running on its host keep being let in before it: past it, they
	// drain and the call's model goes next. Zero means DefaultSwitchWait.
	SwitchWait time.Duration
}

// ModelTools is how the discovered models become tools.
type ModelTools string

// The ways models become tools. Logical tools (Config.Tools) are served in
// every mode.
const (
	// ModelToolsPerModel serves one tool per model and capability
	// (chat_qwen3, embed_nomic) beside the generic tools.
	ModelToolsPerModel ModelTools = "per-model"
	// ModelToolsGeneric serves only ollama_chat, ollama_embed and
	// ollama_models, each model argument with an enum of the models
	// discovered, kept live: a short tool list for small models.
	ModelToolsGeneric ModelTools = "generic"
	// ModelToolsOff serves no model tools.
	ModelToolsOff ModelTools = "off"
)

// ParseModelTools reads a ModelTools; "" is ModelToolsPerModel.
func ParseModelTools(s string) (ModelTools, error) {
	switch m := ModelTools(strings.TrimSpace(s)); m {
	case "", ModelToolsPerModel:
		return ModelToolsPerModel, nil
	case ModelToolsGeneric, ModelToolsOff:
		return m, nil
	}
	return "", fmt.Errorf("model tools %q: want per-model, generic or off", s)
}

func (c *Config) withDefaults() {
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.ModelConcurrency == 0 {
		c.ModelConcurrency = DefaultModelConcurrency
	}
	if c.MaxPromptBytes == 0 {
		c.MaxPromptBytes = DefaultMaxPromptBytes
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.ModelTools == "" {
		c.ModelTools = ModelToolsPerModel
	}
	if len(c.NumCtx) > 0 {
		keyed := make(map[string]int, len(c.NumCtx))
		for name, n := range c.NumCtx {
			keyed[modelKey(name)] = n
		}
		c.NumCtx = keyed
	}
}

// ParseHost turns a host as OLLAMA_HOST accepts it into a base URL, with
// Ollama's rules: "" is http://127.0.0.1:11434, "h" and "h:p" are http with
// port 11434 when none is given, "http://h" is port 80, "https://h" port 443,
// and a path is kept. An "" argument reads OLLAMA_HOST.
//
// A user:password@ before the host (Ollama behind a proxy with basic
// authentication) is kept in the URL's User, and Go's HTTP client sends it
// as basic auth; errors show the host with the password redacted (see
// RedactURL), never the password.
func ParseHost(s string) (*url.URL, error) {
	if strings.TrimSpace(s) == "" {
		s = os.Getenv("OLLAMA_HOST")
	}
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	shown := RedactURL(s)
	defaultPort := "11434"
	scheme, hostport, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		scheme, hostport = "http", s
		if s == "ollama.com" {
			scheme, hostport = "https", "ollama.com:443"
		}
	case scheme == "http":
		defaultPort = "80"
	case scheme == "https":
		defaultPort = "443"
	default:
		return nil, fmt.Errorf("ollama host %q: scheme must be http or https", shown)
	}
	hostport, path, _ := strings.Cut(hostport, "/")
	var user *url.Userinfo
	if at := strings.LastIndex(hostport, "@"); at >= 0 {
		// Decoded as a URL decodes it, so that percent-escapes work.
		p, err := url.Parse("http://" + hostport[:at] + "@h")
		if err != nil || p.User == nil || p.User.Username() == "" {
			return nil, fmt.Errorf("ollama host %q: the user:password@ part is not valid (percent-encode special characters in it)", shown)
		}
		user, hostport = p.User, hostport[at+1:]
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = "127.0.0.1", defaultPort
		if ip := net.ParseIP(strings.Trim(hostport, "[]")); ip != nil {
			host = ip.String()
		} else if hostport != "" {
			host = hostport
		}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return nil, fmt.Errorf("ollama host %q: port %q is not a number from 1 to 65535", shown, port)
	}
	if strings.ContainsAny(host, " \t\r\n/?#@") {
		return nil, fmt.Errorf("ollama host %q: %q is not a host name", shown, host)
	}
	u := &url.URL{Scheme: scheme, User: user, Host: net.JoinHostPort(host, port)}
	if path = strings.Trim(path, "/"); path != "" {
		u.Path = "/" + path
	}
	return u, nil
}

// RedactURL returns the URL s (parsable or not) with the password of any
// user:password@ replaced by xxxxx, for errors and logs.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Redacted()
	}
	// No scheme, or not parsable: cut the user information out by hand,
	// from the start of the authority to its last @.
	_, rest, hasScheme := strings.Cut(s, "://")
	if !hasScheme {
		rest = s
	}
	auth, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return s
	}
	prefix := s[:len(s)-len(rest)]
	userinfo := auth[:at]
	if name, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		userinfo = name + ":xxxxx"
	}
	return prefix + userinfo + rest[at:]
}

// parseHosts resolves cfg.Hosts into distinct base URLs, in order.
func parseHosts(hosts []string) ([]*url.URL, error) {
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	var (
		out  []*url.URL
		seen = map[string]bool{}
		errs []error
	)
	for _, h := range hosts {
		u, err := ParseHost(h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		out = append(out, u)
	}
	return out, errors.Join(errs...)
}
