// Package agents owns named agents: the Spec that describes one (its model
// and endpoint, system prompt, tools, limits and approval rules), the
// decoder and checks of a file of them, and a concurrency-safe Catalog of
// the agents in use, which a reload replaces whole.
//
// Both programs read the same format: the "agents" key of a YAML or JSON
// document, a list of specs.
//
//	agents:
//	  - name: coder
//	    description: writes and tests small scripts
//	    system: You write POSIX shell. Test what you write with sh.
//	    model: qwen3:0.6b
//	    tools: [sh, python_run]
//	    max_steps: 8
//	    timeout: 2m
//	    approve: [python_run]
//
// The package runs no agent: calls/agent is the loop, and the programs
// turn a Spec into its options.
package agents

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on a file of agents, so that a bad file costs little.
const (
	MaxAgents       = 256
	MaxSystemBytes  = 64 << 10
	MaxDescBytes    = 4 << 10
	MaxPatterns     = 256
	MaxServers      = 32
	MaxSteps        = 1000
	DefaultMaxSteps = 10
)

// NamePattern is what an agent's name must match: it is a model id in the
// OpenAI API, a path segment of /v1/agents/{name}, and the suffix of a tool
// name, so it is kept to letters, digits, '_' and '-'.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$`)

// Unattended says what happens to a call that needs approval when nobody is
// there to give it (a server, a pipe).
type Unattended string

// The Unattended choices.
const (
	// Refuse denies such calls; the model is told. The default.
	Refuse Unattended = "refuse"
	// Allow runs them without asking.
	Allow Unattended = "allow"
)

// Spec is one named agent as a file describes it. Its zero value is not a
// valid agent: Name and Model are needed.
type Spec struct {
	// Name identifies the agent (see NamePattern).
	Name string `json:"name" yaml:"name"`
	// Description tells users and UIs what the agent is for.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// System is the system prompt each conversation starts with.
	System string `json:"system,omitempty" yaml:"system,omitempty"`

	// Model is the chat model the endpoint serves, such as "qwen3:0.6b".
	Model string `json:"model" yaml:"model"`
	// BaseURL is an OpenAI-compatible endpoint up to and including /v1.
	// Empty means the program's default: Ollama's /v1.
	BaseURL string `json:"base_url,omitempty" yaml:"base_url,omitempty"`
	// APIKeyEnv names the environment variable holding the endpoint's key;
	// a key is never written in the file. Empty sends none.
	APIKeyEnv string `json:"api_key_env,omitempty" yaml:"api_key_env,omitempty"`
	// Temperature, when set, is sent with each request (0 to 2).
	Temperature *float64 `json:"temperature,omitempty" yaml:"temperature,omitempty"`
	// MaxTokens, when positive, bounds each reply.
	MaxTokens int64 `json:"max_tokens,omitempty" yaml:"max_tokens,omitempty"`
	// ReasoningEffort is sent as reasoning_effort: low, medium, high or
	// none. Empty sends nothing.
	ReasoningEffort string `json:"reasoning_effort,omitempty" yaml:"reasoning_effort,omitempty"`

	// Tools are globs over tool names (membrane's and those of Servers, as
	// the program names them) that the agent is offered. Empty means all.
	Tools []string `json:"tools,omitempty" yaml:"tools,omitempty"`
	// ExcludeTools are globs of tools never offered.
	ExcludeTools []string `json:"exclude_tools,omitempty" yaml:"exclude_tools,omitempty"`
	// Servers are extra MCP servers whose tools the agent may use, by name.
	Servers map[string]Server `json:"mcp_servers,omitempty" yaml:"mcp_servers,omitempty"`

	// MaxSteps bounds the model calls of one turn. Zero means
	// DefaultMaxSteps.
	MaxSteps int `json:"max_steps,omitempty" yaml:"max_steps,omitempty"`
	// Timeout is the time budget of one turn. Zero means the program's.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Parallel bounds the tool calls of one step that run at once. Zero
	// means all.
	Parallel int `json:"parallel,omitempty" yaml:"parallel,omitempty"`

	// Approve are globs of the tools whose calls need approval.
	Approve []string `json:"approve,omitempty" yaml:"approve,omitempty"`
	// Unattended says what happens to those calls when nobody can approve
	// them. Empty means Refuse.
	Unattended Unattended `json:"unattended,omitempty" yaml:"unattended,omitempty"`

	// ExtractTextCalls runs tool calls the model writes as JSON text. Nil
	// means the program's default (on for Ollama).
	ExtractTextCalls *bool `json:"extract_text_calls,omitempty" yaml:"extract_text_calls,omitempty"`
}

// Server is an extra MCP server, in the form of a Claude-Desktop
// "mcpServers" entry: a command to launch over stdio, or a streamable HTTP
// URL.
type Server struct {
	Command string            `json:"command,omitempty" yaml:"command,omitempty"`
	Args    []string          `json:"args,omitempty" yaml:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	Cwd     string            `json:"cwd,omitempty" yaml:"cwd,omitempty"`
	URL     string            `json:"url,omitempty" yaml:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
}

// Steps is MaxSteps with its default applied.
func (s *Spec) Steps() int {
	if s.MaxSteps == 0 {
		return DefaultMaxSteps
	}
	return s.MaxSteps
}

// NeedsApproval reports whether a call of the tool named name needs
// approval.
func (s *Spec) NeedsApproval(name string) bool {
	for _, p := range s.Approve {
		if ok, _ := path.Match(strings.TrimSpace(p), name); ok {
			return true
		}
	}
	return false
}

// AllowUnattended reports whether calls that need approval run when nobody
// can approve them.
func (s *Spec) AllowUnattended() bool { return s.Unattended == Allow }

// Duration is a time.Duration written as text ("90s", "2m30s"), or a bare
// number of seconds, in files.
type Duration time.Duration

// UnmarshalText parses "90s", "10m" or a bare number of seconds.
func (d *Duration) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		if !(n >= 0) || n > 1e6 {
			return fmt.Errorf("%q: a number of seconds from 0 to 1e6", b)
		}
		*d = Duration(time.Duration(n * float64(time.Second)))
		return nil
	}
	v, err := time.ParseDuration(t)
	if err != nil {
		return fmt.Errorf("%q: want a duration such as 90s or 10m, or a number of seconds", b)
	}
	if v < 0 {
		return fmt.Errorf("%q must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Error is a problem with one agent of a file. Agent is its name, or
// "agents[i]" when it has none.
type Error struct {
	Agent string
	Line  int // the file line, when known
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString("agent " + e.Agent)
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	efforts = []string{"", "low", "medium", "high", "none"}
)

// Validate checks a list of agents and returns every problem found, each an
// *Error, joined. Names must be unique, ignoring case.
func Validate(specs []Spec) error {
	if len(specs) > MaxAgents {
		return fmt.Errorf("agents: %d agents; at most %d fit in one file", len(specs), MaxAgents)
	}
	var errs []error
	seen := map[string]int{}
	for i := range specs {
		s := &specs[i]
		who := s.Name
		if !NamePattern.MatchString(who) {
			who = fmt.Sprintf("agents[%d]", i)
		}
		bad := func(field, format string, args ...any) {
			errs = append(errs, &Error{Agent: who, Field: field, Msg: fmt.Sprintf(format, args...)})
		}
		switch {
		case s.Name == "":
			bad("name", "missing; give each agent a name such as coder")
		case !NamePattern.MatchString(s.Name):
			bad("name", "%q must be 1 to 48 letters, digits, '_' or '-', starting with a letter or digit", s.Name)
		default:
			k := strings.ToLower(s.Name)
			if j, dup := seen[k]; dup {
				bad("name", "%q is used by agents[%d] too; names must differ (ignoring case)", s.Name, j)
			}
			seen[k] = i
		}
		text := func(field, v string, limit int) {
			switch {
			case !utf8.ValidString(v):
				bad(field, "is not valid UTF-8")
			case len(v) > limit:
				bad(field, "is %d bytes; at most %d", len(v), limit)
			case strings.ContainsRune(v, 0):
				bad(field, "holds a NUL byte")
			}
		}
		text("description", s.Description, MaxDescBytes)
		text("system", s.System, MaxSystemBytes)
		switch {
		case strings.TrimSpace(s.Model) == "":
			bad("model", "missing; name the chat model the endpoint serves, such as qwen3:0.6b")
		case len(s.Model) > 256 || strings.ContainsFunc(s.Model, func(r rune) bool { return r < 0x20 || r == 0x7f }) || !utf8.ValidString(s.Model):
			bad("model", "%q is not a model name", s.Model)
		}
		if s.BaseURL != "" {
			if err := checkHTTPURL(s.BaseURL); err != nil {
				bad("base_url", "%v; give a URL such as http://127.0.0.1:11434/v1", err)
			}
		}
		if s.APIKeyEnv != "" && !envName.MatchString(s.APIKeyEnv) {
			bad("api_key_env", "%q is not an environment variable name (letters, digits and '_'); it names the variable that holds the key, not the key", s.APIKeyEnv)
		}
		if t := s.Temperature; t != nil && !(*t >= 0 && *t <= 2) {
			bad("temperature", "%v must be from 0 to 2", *t)
		}
		if s.MaxTokens < 0 {
			bad("max_tokens", "%d must not be negative", s.MaxTokens)
		}
		if !slices.Contains(efforts, s.ReasoningEffort) {
			bad("reasoning_effort", "%q must be low, medium, high or none", s.ReasoningEffort)
		}
		for _, l := range []struct {
			field string
			globs []string
		}{{"tools", s.Tools}, {"exclude_tools", s.ExcludeTools}, {"approve", s.Approve}} {
			if len(l.globs) > MaxPatterns {
				bad(l.field, "%d patterns; at most %d", len(l.globs), MaxPatterns)
				continue
			}
			for _, g := range l.globs {
				if err := checkGlob(g); err != nil {
					bad(l.field, "%q %v", g, err)
				}
			}
		}
		if len(s.Servers) > MaxServers {
			bad("mcp_servers", "%d servers; at most %d", len(s.Servers), MaxServers)
		}
		for _, name := range slices.Sorted(maps.Keys(s.Servers)) {
			if err := checkServer(name, s.Servers[name]); err != nil {
				bad("mcp_servers."+name, "%v", err)
			}
		}
		if s.MaxSteps < 0 || s.MaxSteps > MaxSteps {
			bad("max_steps", "%d must be from 1 to %d (0 means %d)", s.MaxSteps, MaxSteps, DefaultMaxSteps)
		}
		if s.Timeout < 0 {
			bad("timeout", "must not be negative")
		}
		if s.Parallel < 0 {
			bad("parallel", "%d must not be negative (0 means all at once)", s.Parallel)
		}
		if s.Unattended != "" && s.Unattended != Refuse && s.Unattended != Allow {
			bad("unattended", "%q must be refuse (the default) or allow", s.Unattended)
		}
	}
	return errors.Join(errs...)
}

func checkGlob(g string) error {
	g = strings.TrimSpace(g)
	if g == "" {
		return errors.New("is empty")
	}
	if len(g) > 256 {
		return errors.New("is longer than 256 bytes")
	}
	if _, err := path.Match(g, ""); err != nil {
		return errors.New("is not a valid glob (use *, ? and [a-z])")
	}
	return nil
}

func checkHTTPURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", redact(v))
	}
	return nil
}

// redact hides the password of a user:password@ URL.
func redact(v string) string {
	if u, err := url.Parse(v); err == nil {
		return u.Redacted()
	}
	return "(an unparsable URL)"
}

var serverName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func checkServer(name string, s Server) error {
	if !serverName.MatchString(name) {
		return errors.New("a server name must be 1 to 32 letters, digits, '_' or '-' (it prefixes the server's tool names)")
	}
	switch {
	case s.Command == "" && s.URL == "":
		return errors.New("give either command (a stdio server) or url (a streamable HTTP server)")
	case s.Command != "" && s.URL != "":
		return errors.New("give command or url, not both")
	case s.URL != "":
		if len(s.Args) > 0 || len(s.Env) > 0 || s.Cwd != "" {
			return errors.New("args, env and cwd are for a command; a url server takes headers")
		}
		return checkHTTPURL(s.URL)
	case len(s.Headers) > 0:
		return errors.New("headers are for a url server")
	}
	return nil
}
