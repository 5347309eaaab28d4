package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/sandbox"
	"github.com/membrane-mcp/membrane/sandbox/httpget"
)

// Config is everything membrane can be told. It is filled, lowest
// precedence first, from the defaults, the config file, MEMBRANE_*
// environment variables and the command line.
type Config struct {
	// File is the config file read (--config / MEMBRANE_CONFIG); "" for
	// none.
	File string `json:"-" yaml:"-"`

	HTTP    HTTPConfig    `json:"http" yaml:"http"`
	Log     LogConfig     `json:"log" yaml:"log"`
	Sandbox SandboxConfig `json:"sandbox" yaml:"sandbox"`
	Ollama  OllamaConfig  `json:"ollama" yaml:"ollama"`
	Policy  PolicyConfig  `json:"policy" yaml:"policy"`
	HTTPGet HTTPGetConfig `json:"http_get" yaml:"http_get"`
	// ShutdownTimeout bounds how long running calls get to finish after
	// SIGINT or SIGTERM.
	ShutdownTimeout Duration `json:"shutdown_timeout" yaml:"shutdown_timeout"`
}

// HTTPConfig is the streamable HTTP transport's part of Config.
type HTTPConfig struct {
	Addr               string   `json:"addr" yaml:"addr"`
	Token              string   `json:"token" yaml:"token"`
	TokenFile          string   `json:"token_file" yaml:"token_file"`
	AllowedOrigins     []string `json:"allowed_origins" yaml:"allowed_origins"`
	AllowedHosts       []string `json:"allowed_hosts" yaml:"allowed_hosts"`
	Stateless          bool     `json:"stateless" yaml:"stateless"`
	SessionIdleTimeout Duration `json:"session_idle_timeout" yaml:"session_idle_timeout"`
	MaxBody            ByteSize `json:"max_body" yaml:"max_body"`
	// TokensFile holds scoped tokens (calls/policy); watched.
	TokensFile string `json:"tokens_file" yaml:"tokens_file"`
}

// PolicyConfig selects tools and limits calls.
type PolicyConfig struct {
	Tools        []string `json:"tools" yaml:"tools"`
	ExcludeTools []string `json:"exclude_tools" yaml:"exclude_tools"`
	// RateLimits are shared by every client. The flag form,
	// GLOB=N/min[:BURST], gives each matching tool a bucket of its own.
	RateLimits []RateLimit `json:"rate_limits" yaml:"rate_limits"`
}

// RateLimit is policy.Limit with file-friendly tags.
type RateLimit struct {
	Tools     string  `json:"tools" yaml:"tools"`
	PerMinute float64 `json:"per_minute" yaml:"per_minute"`
	Burst     int     `json:"burst" yaml:"burst"`
	PerTool   bool    `json:"per_tool" yaml:"per_tool"`
}

// HTTPGetConfig configures the http_get tool; it is off while Allow is
// empty.
type HTTPGetConfig struct {
	Allow   []string        `json:"allow" yaml:"allow"`
	Headers []HTTPGetHeader `json:"headers" yaml:"headers"`
	Timeout Duration        `json:"timeout" yaml:"timeout"`
	MaxBody ByteSize        `json:"max_body" yaml:"max_body"`
}

// HTTPGetHeader is a header http_get sends to the URLs For names.
type HTTPGetHeader struct {
	For   string `json:"for" yaml:"for"`
	Name  string `json:"name" yaml:"name"`
	Value string `json:"value" yaml:"value"`
}

// LogConfig says how membrane logs (always to stderr).
type LogConfig struct {
	Level  string `json:"level" yaml:"level"`
	Format string `json:"format" yaml:"format"`
}

// SandboxConfig mirrors sandbox.Config with file-friendly types.
type SandboxConfig struct {
	Mode        string   `json:"mode" yaml:"mode"`
	Network     bool     `json:"network" yaml:"network"`
	Workspace   string   `json:"workspace" yaml:"workspace"`
	Python      string   `json:"python" yaml:"python"`
	Timeout     Duration `json:"timeout" yaml:"timeout"`
	MaxTimeout  Duration `json:"max_timeout" yaml:"max_timeout"`
	CPUSeconds  int      `json:"cpu_seconds" yaml:"cpu_seconds"`
	Memory      ByteSize `json:"memory" yaml:"memory"`
	FileSize    ByteSize `json:"file_size" yaml:"file_size"`
	Output      ByteSize `json:"output" yaml:"output"`
	Tmp         ByteSize `json:"tmp" yaml:"tmp"`
	Procs       int      `json:"procs" yaml:"procs"`
	OpenFiles   int      `json:"open_files" yaml:"open_files"`
	Concurrency int      `json:"concurrency" yaml:"concurrency"`
}

// OllamaConfig mirrors ollama.Config with file-friendly types.
type OllamaConfig struct {
	Hosts            []string          `json:"hosts" yaml:"hosts"`
	RefreshInterval  Duration          `json:"refresh_interval" yaml:"refresh_interval"`
	CallTimeout      Duration          `json:"call_timeout" yaml:"call_timeout"`
	ModelConcurrency int               `json:"model_concurrency" yaml:"model_concurrency"`
	MaxPrompt        ByteSize          `json:"max_prompt" yaml:"max_prompt"`
	MaxResponse      ByteSize          `json:"max_response" yaml:"max_response"`
	Tools            []ollama.ToolSpec `json:"tools" yaml:"tools"`
	ModelTools       string            `json:"model_tools" yaml:"model_tools"`
}

// defaults returns the configuration with nothing set.
func defaults() Config {
	d := sandbox.DefaultConfig()
	return Config{
		HTTP: HTTPConfig{
			SessionIdleTimeout: Duration(30 * time.Minute),
			MaxBody:            4 << 20,
		},
		Log: LogConfig{Level: "info", Format: "text"},
		Sandbox: SandboxConfig{
			Mode:        string(d.Mode),
			Timeout:     Duration(d.Timeout),
			MaxTimeout:  Duration(d.MaxTimeout),
			CPUSeconds:  d.CPUSeconds,
			Memory:      ByteSize(d.MemoryBytes),
			FileSize:    ByteSize(d.FileSizeBytes),
			Output:      ByteSize(d.OutputBytes),
			Tmp:         ByteSize(d.TmpBytes),
			Procs:       d.Procs,
			OpenFiles:   d.OpenFiles,
			Concurrency: d.Concurrency,
		},
		Ollama: OllamaConfig{
			RefreshInterval:  Duration(ollama.DefaultRefreshInterval),
			CallTimeout:      Duration(ollama.DefaultCallTimeout),
			ModelConcurrency: ollama.DefaultModelConcurrency,
			MaxPrompt:        ollama.DefaultMaxPromptBytes,
			MaxResponse:      ollama.DefaultMaxResponseBytes,
			ModelTools:       string(ollama.ModelToolsPerModel),
		},
		HTTPGet: HTTPGetConfig{
			Timeout: Duration(httpget.DefaultTimeout),
			MaxBody: httpget.DefaultMaxBodyBytes,
		},
		ShutdownTimeout: Duration(10 * time.Second),
	}
}

// limits returns the shared rate limits in the policy package's form.
func (c *Config) limits() []policy.Limit {
	var out []policy.Limit
	for _, l := range c.Policy.RateLimits {
		out = append(out, policy.Limit{Tools: l.Tools, PerMinute: l.PerMinute, Burst: l.Burst, PerTool: l.PerTool})
	}
	return out
}

// httpGetOptions returns http_get's options.
func (c *Config) httpGetOptions() httpget.Options {
	o := httpget.Options{
		Allow:        slices.Clone(c.HTTPGet.Allow),
		Timeout:      time.Duration(c.HTTPGet.Timeout),
		MaxBodyBytes: int64(c.HTTPGet.MaxBody),
	}
	for _, h := range c.HTTPGet.Headers {
		o.Headers = append(o.Headers, httpget.Header{For: h.For, Name: h.Name, Value: h.Value})
	}
	return o
}

// parseRateLimit reads the flag form of a shared limit: GLOB=N/min or
// GLOB=N/min:BURST (also /s and /h), each matching tool its own bucket.
func parseRateLimit(v string) (RateLimit, error) {
	glob, spec, ok := strings.Cut(strings.TrimSpace(v), "=")
	if !ok || glob == "" {
		return RateLimit{}, fmt.Errorf("%q: want GLOB=N/min[:BURST], such as sh=10/min:3", v)
	}
	spec, burstStr, hasBurst := strings.Cut(spec, ":")
	num, unit, _ := strings.Cut(spec, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0) {
		return RateLimit{}, fmt.Errorf("%q: the rate %q is not a positive number", v, num)
	}
	switch unit {
	case "s", "sec", "second":
		n *= 60
	case "m", "min", "minute", "":
	case "h", "hour":
		n /= 60
	default:
		return RateLimit{}, fmt.Errorf("%q: the unit %q is not s, min or h", v, unit)
	}
	l := RateLimit{Tools: glob, PerMinute: n, PerTool: true}
	if hasBurst {
		b, err := strconv.Atoi(burstStr)
		if err != nil || b < 1 {
			return RateLimit{}, fmt.Errorf("%q: the burst %q is not a whole number of 1 or more", v, burstStr)
		}
		l.Burst = b
	}
	return l, nil
}

// SandboxConfig returns the sandbox package's form.
func (c *Config) sandboxConfig() sandbox.Config {
	s := c.Sandbox
	return sandbox.Config{
		Mode:          sandbox.Mode(s.Mode),
		Network:       s.Network,
		Workspace:     s.Workspace,
		Python:        s.Python,
		Timeout:       time.Duration(s.Timeout),
		MaxTimeout:    time.Duration(s.MaxTimeout),
		CPUSeconds:    s.CPUSeconds,
		MemoryBytes:   int64(s.Memory),
		FileSizeBytes: int64(s.FileSize),
		OutputBytes:   int64(s.Output),
		TmpBytes:      int64(s.Tmp),
		Procs:         s.Procs,
		OpenFiles:     s.OpenFiles,
		Concurrency:   s.Concurrency,
		// membrane's own secrets stay out of every sandbox, even where
		// they sit under a directory sandboxes see (/usr/local/etc, say).
		Hide: nonEmpty(c.File, c.HTTP.TokenFile, c.HTTP.TokensFile),
	}
}

// nonEmpty returns the arguments that are not "".
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *Config) ollamaConfig() ollama.Config {
	o := c.Ollama
	return ollama.Config{
		Hosts:            slices.Clone(o.Hosts),
		RefreshInterval:  time.Duration(o.RefreshInterval),
		CallTimeout:      time.Duration(o.CallTimeout),
		ModelConcurrency: o.ModelConcurrency,
		MaxPromptBytes:   int64(o.MaxPrompt),
		MaxResponseBytes: int64(o.MaxResponse),
		Tools:            slices.Clone(o.Tools),
		ModelTools:       ollama.ModelTools(o.ModelTools),
	}
}

// setting is one thing that can be set by flag and environment variable.
type setting struct {
	flag  string // flag name without dashes
	env   string // environment variable
	usage string
	list  bool // repeatable flag; comma-separated in the environment
	bool  bool
	set   func(c *Config, v string) error
	get   func(c *Config) string // the default, for --help
}

func envName(flag string) string {
	return "MEMBRANE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// settings lists every flag. Their order is the order of --help.
func settings() []setting {
	str := func(p func(*Config) *string) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error { *p(c) = v; return nil }, func(c *Config) string { return *p(c) }
	}
	boolean := func(p func(*Config) *bool) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("%q is not true or false", v)
				}
				*p(c) = b
				return nil
			}, func(c *Config) string {
				return strconv.FormatBool(*p(c))
			}
	}
	integer := func(p func(*Config) *int) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil || n < 0 {
					return fmt.Errorf("%q is not a whole number of 0 or more", v)
				}
				*p(c) = n
				return nil
			}, func(c *Config) string {
				return strconv.Itoa(*p(c))
			}
	}
	dur := func(p func(*Config) *Duration) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error { return p(c).UnmarshalText([]byte(v)) },
			func(c *Config) string { return p(c).String() }
	}
	size := func(p func(*Config) *ByteSize) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error { return p(c).UnmarshalText([]byte(v)) },
			func(c *Config) string { return p(c).String() }
	}
	list := func(p func(*Config) *[]string) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error {
				*p(c) = append(*p(c), v)
				return nil
			}, func(c *Config) string {
				return strings.Join(*p(c), ",")
			}
	}
	mk := func(name, usage string, f func(*Config, string) error, g func(*Config) string) setting {
		return setting{flag: name, env: envName(name), usage: usage, set: f, get: g}
	}
	mkList := func(name, env, usage string, f func(*Config, string) error, g func(*Config) string) setting {
		return setting{flag: name, env: env, usage: usage, set: f, get: g, list: true}
	}
	mkBool := func(name, usage string, f func(*Config, string) error, g func(*Config) string) setting {
		s := mk(name, usage, f, g)
		s.bool = true
		return s
	}
	var out []setting

	f, g := str(func(c *Config) *string { return &c.HTTP.Addr })
	out = append(out, mk("http", "serve streamable HTTP on `ADDR` (host:port) instead of stdio; a non-loopback address needs a token", f, g))
	f, g = str(func(c *Config) *string { return &c.HTTP.Token })
	out = append(out, mk("token", "bearer `TOKEN` every HTTP request must carry (prefer MEMBRANE_TOKEN or --token-file: flags show in ps)", f, g))
	f, g = str(func(c *Config) *string { return &c.HTTP.TokenFile })
	out = append(out, mk("token-file", "read the bearer token from `FILE` (surrounding whitespace ignored)", f, g))
	f, g = list(func(c *Config) *[]string { return &c.HTTP.AllowedOrigins })
	out = append(out, mkList("allowed-origin", "MEMBRANE_ALLOWED_ORIGINS", "browser `ORIGIN` (https://host[:port]) allowed to call the HTTP endpoint; repeatable", f, g))
	f, g = list(func(c *Config) *[]string { return &c.HTTP.AllowedHosts })
	out = append(out, mkList("allowed-host", "MEMBRANE_ALLOWED_HOSTS", "`HOST` header value accepted (default: loopback names on a loopback address, any otherwise); repeatable", f, g))
	f, g = str(func(c *Config) *string { return &c.HTTP.TokensFile })
	out = append(out, mk("tokens-file", "scoped bearer tokens from `FILE` (JSON: names, tool globs, rate limits, caps); watched and reloaded whole", f, g))
	f, g = boolean(func(c *Config) *bool { return &c.HTTP.Stateless })
	out = append(out, mkBool("stateless", "HTTP without sessions, for several replicas behind a load balancer", f, g))
	f, g = dur(func(c *Config) *Duration { return &c.HTTP.SessionIdleTimeout })
	out = append(out, mk("session-idle-timeout", "close an HTTP session idle this long (`DURATION`; 0 = never)", f, g))
	f, g = size(func(c *Config) *ByteSize { return &c.HTTP.MaxBody })
	out = append(out, mk("max-body", "largest HTTP request body (`SIZE`, such as 4MiB); larger gets 413", f, g))

	f, g = str(func(c *Config) *string { return &c.Log.Level })
	out = append(out, mk("log-level", "`LEVEL` of the logs on stderr: debug, info, warn or error", f, g))
	f, g = str(func(c *Config) *string { return &c.Log.Format })
	out = append(out, mk("log-format", "`FORMAT` of the logs on stderr: text or json", f, g))
	f, g = dur(func(c *Config) *Duration { return &c.ShutdownTimeout })
	out = append(out, mk("shutdown-timeout", "how long running calls get to finish on SIGINT/SIGTERM (`DURATION`)", f, g))

	f, g = str(func(c *Config) *string { return &c.Sandbox.Mode })
	out = append(out, mk("sandbox", "isolation of sh and python_run: `bwrap` (namespaces, no network) or rlimit (limits only; use inside a container)", f, g))
	f, g = boolean(func(c *Config) *bool { return &c.Sandbox.Network })
	out = append(out, mkBool("sandbox-network", "give sandboxed code the host's network", f, g))
	f, g = str(func(c *Config) *string { return &c.Sandbox.Workspace })
	out = append(out, mk("workspace", "host `DIR` mounted read-write at /workspace for every session (default: a fresh dir per session, removed at its end)", f, g))
	f, g = str(func(c *Config) *string { return &c.Sandbox.Python })
	out = append(out, mk("python", "`PATH` of the interpreter python_run uses (default: the first real python3 found)", f, g))
	f, g = dur(func(c *Config) *Duration { return &c.Sandbox.Timeout })
	out = append(out, mk("timeout", "wall-clock limit of a sandboxed call that asks for none (`DURATION`)", f, g))
	f, g = dur(func(c *Config) *Duration { return &c.Sandbox.MaxTimeout })
	out = append(out, mk("max-timeout", "largest timeout a sandboxed call may ask for (`DURATION`)", f, g))
	f, g = integer(func(c *Config) *int { return &c.Sandbox.CPUSeconds })
	out = append(out, mk("cpu-seconds", "CPU time limit of each sandboxed process (`N` seconds)", f, g))
	f, g = size(func(c *Config) *ByteSize { return &c.Sandbox.Memory })
	out = append(out, mk("memory", "address-space limit of each sandboxed process (`SIZE`)", f, g))
	f, g = size(func(c *Config) *ByteSize { return &c.Sandbox.FileSize })
	out = append(out, mk("file-size", "largest file a sandboxed process may write (`SIZE`)", f, g))
	f, g = size(func(c *Config) *ByteSize { return &c.Sandbox.Output })
	out = append(out, mk("output-limit", "stdout and stderr kept per sandboxed call, each (`SIZE`)", f, g))
	f, g = size(func(c *Config) *ByteSize { return &c.Sandbox.Tmp })
	out = append(out, mk("tmp-size", "size of the sandbox's private /tmp (`SIZE`)", f, g))
	f, g = integer(func(c *Config) *int { return &c.Sandbox.Procs })
	out = append(out, mk("procs", "processes one sandboxed call may run at once (`N`)", f, g))
	f, g = integer(func(c *Config) *int { return &c.Sandbox.OpenFiles })
	out = append(out, mk("open-files", "open files per sandboxed process (`N`)", f, g))
	f, g = integer(func(c *Config) *int { return &c.Sandbox.Concurrency })
	out = append(out, mk("concurrency", "calls of sh (and of python_run) running at once; more get a busy error (`N`)", f, g))

	f, g = list(func(c *Config) *[]string { return &c.Policy.Tools })
	out = append(out, mkList("tools", "MEMBRANE_TOOLS", "serve only the tools matching `GLOB` (such as 'ollama_*'); repeatable (default: all)", f, g))
	f, g = list(func(c *Config) *[]string { return &c.Policy.ExcludeTools })
	out = append(out, mkList("exclude-tools", "MEMBRANE_EXCLUDE_TOOLS", "do not serve the tools matching `GLOB`; repeatable", f, g))
	out = append(out, mkList("rate-limit", "MEMBRANE_RATE_LIMITS", "limit the calls to each tool matching a glob, over all clients (`GLOB=N/min[:BURST]`, such as sh=10/min:3); repeatable",
		func(c *Config, v string) error {
			l, err := parseRateLimit(v)
			if err != nil {
				return err
			}
			c.Policy.RateLimits = append(c.Policy.RateLimits, l)
			return nil
		}, func(c *Config) string { return "" }))
	f, g = list(func(c *Config) *[]string { return &c.HTTPGet.Allow })
	out = append(out, mkList("http-get-allow", "MEMBRANE_HTTP_GET_ALLOW", "turn on http_get for `PATTERN`: a host, *.domain, host:port, a URL prefix, or * (every public host); repeatable", f, g))
	f, g = dur(func(c *Config) *Duration { return &c.HTTPGet.Timeout })
	out = append(out, mk("http-get-timeout", "limit of one http_get fetch, redirects included (`DURATION`)", f, g))
	f, g = size(func(c *Config) *ByteSize { return &c.HTTPGet.MaxBody })
	out = append(out, mk("http-get-max-body", "largest body http_get reads; longer is cut (`SIZE`)", f, g))

	f, g = list(func(c *Config) *[]string { return &c.Ollama.Hosts })
	out = append(out, mkList("ollama-host", "MEMBRANE_OLLAMA_HOSTS", "Ollama server (`HOST`: host:port or http(s)://host:port); repeatable (default: OLLAMA_HOST, else 127.0.0.1:11434)", f, g))
	f, g = dur(func(c *Config) *Duration { return &c.Ollama.RefreshInterval })
	out = append(out, mk("ollama-refresh", "how often the model list is read again (`DURATION`)", f, g))
	f, g = dur(func(c *Config) *Duration { return &c.Ollama.CallTimeout })
	out = append(out, mk("ollama-timeout", "limit of one model call, loading included (`DURATION`)", f, g))
	f, g = integer(func(c *Config) *int { return &c.Ollama.ModelConcurrency })
	out = append(out, mk("model-concurrency", "calls running at once against one model; later ones queue (`N`)", f, g))
	f, g = size(func(c *Config) *ByteSize { return &c.Ollama.MaxPrompt })
	out = append(out, mk("max-prompt", "largest prompt (text and images) of one model call (`SIZE`)", f, g))
	f, g = str(func(c *Config) *string { return &c.Ollama.ModelTools })
	out = append(out, mk("model-tools", "how models become tools: `per-model` (one each, plus the generic ones), generic (only ollama_chat, ollama_embed, ollama_models, with a model enum) or off", f, g))
	f, g = size(func(c *Config) *ByteSize { return &c.Ollama.MaxResponse })
	out = append(out, mk("max-response", "largest answer of one chat call; longer is cut (`SIZE`)", f, g))
	return out
}

// errHelp is returned by loadConfig when --help was asked for.
var errHelp = flag.ErrHelp

// loadConfig builds the Config from args (without the program name and
// subcommand), the environment (getenv) and the config file they name. The
// error names the setting that was wrong.
func loadConfig(name string, args []string, getenv func(string) string, usageOut io.Writer) (*Config, *flag.FlagSet, error) {
	cfg := defaults()
	ss := settings()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)

	type seen struct {
		s    *setting
		vals []string
	}
	fromFlags := map[string]*seen{}
	for i := range ss {
		s := &ss[i]
		v := &recorder{bool: s.bool, record: func(v string) {
			e := fromFlags[s.flag]
			if e == nil {
				e = &seen{s: s}
				fromFlags[s.flag] = e
			}
			e.vals = append(e.vals, v)
		}}
		fs.Var(v, s.flag, s.usage)
	}
	var configPath string
	fs.StringVar(&configPath, "config", "", "read settings from `FILE` (YAML or JSON); watched, and its tools reloaded on change")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {} // printed below for --help only, not on every error
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(usageOut, name, fs, ss)
			return nil, fs, errHelp
		}
		return nil, fs, fmt.Errorf("%v (see %s --help)", err, name)
	}
	if *version {
		return nil, fs, errVersion
	}
	if fs.NArg() > 0 {
		return nil, fs, fmt.Errorf("unexpected argument %q (see %s --help)", fs.Arg(0), name)
	}

	if configPath == "" {
		configPath = getenv("MEMBRANE_CONFIG")
	}
	if configPath != "" {
		if err := readConfigFile(configPath, &cfg); err != nil {
			return nil, fs, err
		}
		cfg.File = configPath
	}
	for i := range ss {
		s := &ss[i]
		v, ok := lookupEnv(getenv, s.env)
		if !ok {
			continue
		}
		if s.list {
			cfg.clearList(s)
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					if err := s.set(&cfg, part); err != nil {
						return nil, fs, fmt.Errorf("%s: %v", s.env, err)
					}
				}
			}
			continue
		}
		if err := s.set(&cfg, v); err != nil {
			return nil, fs, fmt.Errorf("%s: %v", s.env, err)
		}
	}
	for i := range ss {
		s := &ss[i]
		e := fromFlags[s.flag]
		if e == nil {
			continue
		}
		if s.list {
			cfg.clearList(s)
		}
		for _, v := range e.vals {
			if err := s.set(&cfg, v); err != nil {
				return nil, fs, fmt.Errorf("--%s: %v", s.flag, err)
			}
		}
	}
	if err := cfg.finish(); err != nil {
		return nil, fs, err
	}
	return &cfg, fs, nil
}

var errVersion = errors.New("version requested")

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// clearList empties the list setting s, so that a higher layer replaces
// rather than extends a lower one.
func (c *Config) clearList(s *setting) {
	switch s.flag {
	case "allowed-origin":
		c.HTTP.AllowedOrigins = nil
	case "allowed-host":
		c.HTTP.AllowedHosts = nil
	case "ollama-host":
		c.Ollama.Hosts = nil
	case "tools":
		c.Policy.Tools = nil
	case "exclude-tools":
		c.Policy.ExcludeTools = nil
	case "rate-limit":
		c.Policy.RateLimits = nil
	case "http-get-allow":
		c.HTTPGet.Allow = nil
	}
}

// readConfigFile decodes path into cfg, strictly: an unknown key is an
// error, so that a typo does not silently leave a default in place.
func readConfigFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if err := decodeConfig(data, cfg); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	// A relative token file is relative to the config file.
	if cfg.HTTP.TokenFile != "" && !filepath.IsAbs(cfg.HTTP.TokenFile) {
		cfg.HTTP.TokenFile = filepath.Join(filepath.Dir(path), cfg.HTTP.TokenFile)
	}
	if cfg.HTTP.TokensFile != "" && !filepath.IsAbs(cfg.HTTP.TokensFile) {
		cfg.HTTP.TokensFile = filepath.Join(filepath.Dir(path), cfg.HTTP.TokensFile)
	}
	return nil
}

// maxConfigBytes caps a config file; anything larger is a mistake.
const maxConfigBytes = 4 << 20

// decodeConfig decodes a YAML or JSON document over cfg.
func decodeConfig(data []byte, cfg *Config) error {
	if len(data) > maxConfigBytes {
		return fmt.Errorf("%d bytes is too large for a config file (limit %d)", len(data), maxConfigBytes)
	}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		// JSON is YAML, but for tabs: valid JSON has tabs only between
		// tokens (a tab in a string must be escaped), so they can become
		// spaces. Going through YAML keeps line numbers and field names in
		// the errors.
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return cleanYAMLError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document; keep the settings in one")
	}
	// Decode again strictly: an unknown key is an error, so that a
	// typo does not silently leave a default in place.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nameKeys(&doc, cleanYAMLError(err))
	}
	return nil
}

// nameKeys adds the setting's dotted name (sandbox.memory) to each "line
// N:" of err, found in doc.
func nameKeys(doc *yaml.Node, err error) error {
	paths := map[int]string{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if prefix != "" {
					p = prefix + "." + k.Value
				}
				if _, ok := paths[v.Line]; !ok || v.Kind == yaml.ScalarNode {
					paths[v.Line] = p
				}
				if _, ok := paths[k.Line]; !ok {
					paths[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", prefix, i))
			}
		}
	}
	walk(doc, "")
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		var n int
		if _, e := fmt.Sscanf(strings.TrimSpace(l), "line %d:", &n); e == nil {
			if p, ok := paths[n]; ok {
				lines[i] = strings.Replace(l, fmt.Sprintf("line %d:", n), fmt.Sprintf("line %d: %s:", n, p), 1)
			}
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = strings.ReplaceAll(msg, " in type main.", " in ")
	return errors.New(msg)
}

// finish checks the values that no type checks, reads the token file, and
// names the setting that is wrong.
func (c *Config) finish() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level / MEMBRANE_LOG_LEVEL", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("--log-format / MEMBRANE_LOG_FORMAT", "%q is not text or json", c.Log.Format)
	}
	switch c.Sandbox.Mode {
	case string(sandbox.ModeBwrap), string(sandbox.ModeRlimit):
	default:
		bad("--sandbox / MEMBRANE_SANDBOX", "%q is not bwrap or rlimit", c.Sandbox.Mode)
	}
	if c.Sandbox.Workspace != "" {
		if fi, err := os.Stat(c.Sandbox.Workspace); err != nil || !fi.IsDir() {
			bad("--workspace / MEMBRANE_WORKSPACE", "%q is not a directory", c.Sandbox.Workspace)
		} else if abs, err := filepath.Abs(c.Sandbox.Workspace); err == nil {
			c.Sandbox.Workspace = abs
		}
	}
	if c.Sandbox.Python != "" {
		if fi, err := os.Stat(c.Sandbox.Python); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			bad("--python / MEMBRANE_PYTHON", "%q is not an executable file", c.Sandbox.Python)
		}
	}
	positive := func(setting string, d Duration) {
		if d <= 0 {
			bad(setting, "must be more than 0")
		}
	}
	positive("--timeout / MEMBRANE_TIMEOUT", c.Sandbox.Timeout)
	positive("--max-timeout / MEMBRANE_MAX_TIMEOUT", c.Sandbox.MaxTimeout)
	positive("--ollama-refresh / MEMBRANE_OLLAMA_REFRESH", c.Ollama.RefreshInterval)
	positive("--ollama-timeout / MEMBRANE_OLLAMA_TIMEOUT", c.Ollama.CallTimeout)
	positive("--shutdown-timeout / MEMBRANE_SHUTDOWN_TIMEOUT", c.ShutdownTimeout)
	if c.Sandbox.Timeout > c.Sandbox.MaxTimeout && c.Sandbox.MaxTimeout > 0 {
		bad("--timeout / MEMBRANE_TIMEOUT", "%s is longer than --max-timeout %s", c.Sandbox.Timeout, c.Sandbox.MaxTimeout)
	}
	if c.HTTP.SessionIdleTimeout < 0 {
		bad("--session-idle-timeout / MEMBRANE_SESSION_IDLE_TIMEOUT", "must not be negative")
	}
	for name, v := range map[string]int{"--cpu-seconds / MEMBRANE_CPU_SECONDS": c.Sandbox.CPUSeconds, "--procs / MEMBRANE_PROCS": c.Sandbox.Procs,
		"--open-files / MEMBRANE_OPEN_FILES": c.Sandbox.OpenFiles, "--concurrency / MEMBRANE_CONCURRENCY": c.Sandbox.Concurrency, "--model-concurrency / MEMBRANE_MODEL_CONCURRENCY": c.Ollama.ModelConcurrency} {
		if v <= 0 {
			bad(name, "must be at least 1")
		}
	}
	for name, v := range map[string]ByteSize{"--max-body / MEMBRANE_MAX_BODY": c.HTTP.MaxBody, "--memory / MEMBRANE_MEMORY": c.Sandbox.Memory,
		"--file-size / MEMBRANE_FILE_SIZE": c.Sandbox.FileSize, "--output-limit / MEMBRANE_OUTPUT_LIMIT": c.Sandbox.Output, "--tmp-size / MEMBRANE_TMP_SIZE": c.Sandbox.Tmp,
		"--max-prompt / MEMBRANE_MAX_PROMPT": c.Ollama.MaxPrompt, "--max-response / MEMBRANE_MAX_RESPONSE": c.Ollama.MaxResponse} {
		if v <= 0 {
			bad(name, "must be more than 0 bytes")
		}
	}
	for _, h := range c.Ollama.Hosts {
		if _, err := ollama.ParseHost(h); err != nil {
			bad("--ollama-host / MEMBRANE_OLLAMA_HOSTS", "%v", err)
		}
	}
	if _, err := ollama.ParseModelTools(c.Ollama.ModelTools); err != nil {
		bad("--model-tools / MEMBRANE_MODEL_TOOLS", "%q is not per-model, generic or off", c.Ollama.ModelTools)
	}
	if err := checkToolSpecs(c.Ollama.Tools); err != nil {
		bad("ollama.tools", "%v", err)
	}
	if c.HTTP.Token != "" && c.HTTP.TokenFile != "" {
		bad("--token-file / MEMBRANE_TOKEN_FILE", "set either a token or a token file, not both")
	}
	if c.HTTP.TokenFile != "" {
		data, err := os.ReadFile(c.HTTP.TokenFile)
		switch {
		case err != nil:
			bad("--token-file / MEMBRANE_TOKEN_FILE", "%v", err)
		case strings.TrimSpace(string(data)) == "":
			bad("--token-file / MEMBRANE_TOKEN_FILE", "%s is empty", c.HTTP.TokenFile)
		default:
			c.HTTP.Token = strings.TrimSpace(string(data))
		}
	}
	if c.HTTP.Token != "" && strings.ContainsAny(c.HTTP.Token, " \t\r\n") {
		bad("--token / MEMBRANE_TOKEN", "must not contain whitespace")
	}
	for _, o := range c.HTTP.AllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad("--allowed-origin / MEMBRANE_ALLOWED_ORIGIN", "%q must look like https://host[:port]", o)
		}
	}
	if _, err := policy.NewSelector(c.Policy.Tools, c.Policy.ExcludeTools); err != nil {
		bad("--tools / --exclude-tools (MEMBRANE_TOOLS / MEMBRANE_EXCLUDE_TOOLS)", "%v", err)
	}
	if _, err := policy.New(policy.Options{Limits: c.limits()}); err != nil {
		bad("--rate-limit / MEMBRANE_RATE_LIMITS", "%v", err)
	}
	if c.HTTP.TokensFile != "" {
		if abs, err := filepath.Abs(c.HTTP.TokensFile); err == nil {
			c.HTTP.TokensFile = abs
		}
		if _, err := policy.LoadTokens(c.HTTP.TokensFile); err != nil {
			bad("--tokens-file / MEMBRANE_TOKENS_FILE", "%v", err)
		}
	}
	if len(c.HTTPGet.Allow) > 0 {
		if _, err := httpget.New(c.httpGetOptions()); err != nil {
			bad("--http-get-allow / MEMBRANE_HTTP_GET_ALLOW", "%v", strings.TrimPrefix(err.Error(), "httpget: "))
		}
	} else if len(c.HTTPGet.Headers) > 0 {
		bad("http_get.headers", "http_get is off: set --http-get-allow (http_get.allow) to name what it may fetch")
	}
	positive("--http-get-timeout / MEMBRANE_HTTP_GET_TIMEOUT", c.HTTPGet.Timeout)
	if c.HTTPGet.MaxBody <= 0 {
		bad("--http-get-max-body / MEMBRANE_HTTP_GET_MAX_BODY", "must be more than 0 bytes")
	}
	if c.HTTP.Addr != "" {
		// Scoped tokens authenticate as well as the single token does.
		auth := c.HTTP.Token
		if auth == "" && c.HTTP.TokensFile != "" {
			auth = "(tokens file)"
		}
		if err := mcp.CheckListen(c.HTTP.Addr, auth); err != nil {
			bad("--http / MEMBRANE_HTTP", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// checkToolSpecs checks logical tools before they reach the ollama
// package, so that a bad config file reload can be refused whole.
func checkToolSpecs(specs []ollama.ToolSpec) error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range specs {
		switch {
		case !calls.NamePattern.MatchString(s.Tool):
			errs = append(errs, fmt.Errorf("tools[%d]: tool name %q must match %s", i, s.Tool, calls.NamePattern))
		case seen[s.Tool]:
			errs = append(errs, fmt.Errorf("tools[%d]: tool %q is defined twice", i, s.Tool))
		case strings.TrimSpace(s.Model) == "":
			errs = append(errs, fmt.Errorf("tools[%d] (%s): model is empty", i, s.Tool))
		}
		seen[s.Tool] = true
	}
	return errors.Join(errs...)
}

// recorder is a flag.Value that records each value it is given.
type recorder struct {
	bool   bool
	record func(string)
}

func (r *recorder) String() string     { return "" }
func (r *recorder) Set(v string) error { r.record(v); return nil }
func (r *recorder) IsBoolFlag() bool   { return r.bool }

// Duration is a time.Duration written as "30s", "5m" or "1h30m" (a bare
// number is seconds).
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if !(n >= 0) || n > 1e9 {
			return fmt.Errorf("%q seconds is out of range", s)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 30s, 5m or 1h", s)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML accepts a string or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a string such as 30s", n.Line)
	}
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	return nil
}

// UnmarshalJSON accepts a string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		s = string(b)
	}
	return d.UnmarshalText([]byte(s))
}

func (d Duration) String() string { return time.Duration(d).String() }

// ByteSize is a size in bytes written as 1048576, "64KiB", "1MiB", "2GB".
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *ByteSize) UnmarshalText(b []byte) error {
	str := strings.ToLower(strings.TrimSpace(string(b)))
	mult := int64(1)
	num := str
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || !(f >= 0) || math.IsInf(f, 0) || num == "" {
		return fmt.Errorf("%q is not a size such as 1048576, 512KiB, 64MiB or 1GiB", string(b))
	}
	v := f * float64(mult)
	if v >= 1<<62 {
		return fmt.Errorf("%q is too large", string(b))
	}
	*s = ByteSize(v)
	return nil
}

// UnmarshalYAML accepts a string or a number.
func (s *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a number or a string such as 64MiB", n.Line)
	}
	if err := s.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	return nil
}

// UnmarshalJSON accepts a string or a number of bytes.
func (s *ByteSize) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		str = string(b)
	}
	return s.UnmarshalText([]byte(str))
}

func (s ByteSize) String() string {
	v := int64(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.mult && v%u.mult == 0 {
			return strconv.FormatInt(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

// usage prints --help: every flag with its environment variable and default.
func usage(w io.Writer, name string, fs *flag.FlagSet, ss []setting) {
	d := defaults()
	fmt.Fprintf(w, `%[1]s serves local models (Ollama) and sandboxed sh and python_run as MCP tools.

Usage:
  %[1]s [flags]              serve MCP on stdio (what Claude Desktop launches)
  %[1]s --http ADDR [flags]  serve streamable HTTP at http://ADDR/mcp
  %[1]s doctor [flags]       check the set-up and explain what is wrong
  %[1]s --version

Settings come from, highest first: flags, MEMBRANE_* environment variables,
the config file (--config or MEMBRANE_CONFIG, YAML or JSON), then defaults.
A list given by a flag or variable replaces the file's.

Flags:
  --config FILE
        read settings from FILE (YAML or JSON); watched, and its ollama
        tools reloaded on change  [MEMBRANE_CONFIG]
`, name)
	for _, s := range ss {
		f := fs.Lookup(s.flag)
		arg, text := flag.UnquoteUsage(f)
		if s.bool {
			arg = ""
		}
		line := "  --" + s.flag
		if arg != "" {
			line += " " + arg
		}
		def := s.get(&d)
		extra := "  [" + s.env
		if def != "" && def != "false" && def != "0" {
			extra += ", default " + def
		}
		extra += "]"
		fmt.Fprintf(w, "%s\n        %s%s\n", line, text, extra)
	}
	fmt.Fprintf(w, `  --version
        print the version and exit

Other variables: OLLAMA_HOST (the default Ollama server), NO_COLOR (plain
logs). Logs go to stderr; stdout carries the MCP protocol on stdio.
`)
}
