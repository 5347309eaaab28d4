package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/images"
	"github.com/membrane-mcp/membrane/ollama"
)

// Config is everything the orchestrator can be told; define says where each
// part comes from: its flag, else its environment variable, else the
// default.
type Config struct {
	Exec  string // -e: one-shot prompt ("-" reads it from stdin)
	Model string

	BaseURL         string
	APIKey          string // from OPENAI_API_KEY, only for a --base-url endpoint
	System          string
	MaxSteps        int
	Parallel        int
	Temperature     *float64
	ReasoningEffort string
	Timeout         time.Duration
	// ExtractText is whether tool calls written as text are run; nil means
	// "on for Ollama".
	ExtractText *bool

	ServerURL   string
	Token       string
	Membrane    string   // the membrane binary to launch
	ServerArgs  []string // extra arguments for the launched membrane
	ConfigFile  string   // passed to the launched membrane as --config
	NoMembrane  bool
	MCPConfig   string
	ServerLog   string
	CallTimeout time.Duration

	// Tools and ExcludeTools are globs over the tool names the model sees:
	// it is offered only the tools Tools matches (all when empty) and
	// ExcludeTools does not.
	Tools, ExcludeTools []string
	// Card is auto, on or off: whether the system prompt lists the
	// tools (agent.RenderCard); CardTokens is its budget.
	Card       string
	CardTokens int

	// AgentsFile holds named agents; Agent picks the one the REPL and
	// one-shot run. agentServers are that agent's MCP servers.
	AgentsFile   string
	Agent        string
	agentServers map[string]agents.Server
	// Serve configures `orchestrator serve`.
	Serve ServeConfig

	JSON          bool
	Approve       []string
	Yes           bool
	HideReasoning bool
	Verbose       bool
	NoColor       bool
	// HistoryFile keeps the REPL's input lines ("off": none; "": the
	// default path).
	HistoryFile string

	// Store is the SQLite trace store the turns are kept in ("off": none;
	// "": the default path, shared with membrane's). History lists the
	// stored turns and exits.
	Store   string
	History bool

	// Images says how images that tools return are shown: images.Auto,
	// images.Save or images.Off. ImageDir is where they are saved; empty
	// means a new temporary directory.
	Images   string
	ImageDir string
}

// ServeConfig is what `orchestrator serve` is told.
type ServeConfig struct {
	Addr          string
	Token         string
	Origins       []string
	Hosts         []string
	MaxRequest    int64
	TurnsPerToken int
	MaxTurns      int
	// Conversations kept in the store for clients that name one.
	ConversationTTL  time.Duration
	MaxConversations int
	ConversationSize int64
}

// define lists the orchestrator's settings, in the order of --help and the
// README, each bound to its field of c (or to a raw value parseConfig
// turns into one) and set to its default. See the settings package for how
// to add one.
func define(c *Config, r *rawConfig) *settings.Set {
	s := settings.New("orchestrator")
	s.Head, s.Tail = usageHead, usageTail
	type D = settings.Def
	s.String(&c.Exec, "", D{Flag: "e", Arg: "QUESTION", Doc: `answer QUESTION and exit ("-" reads it from stdin)`})
	s.String(&c.Model, "", D{Flag: "model", Env: "MEMBRANE_MODEL", Arg: "NAME", Doc: "NAME of the chat model (default: the endpoint's only model)"})
	s.String(&c.BaseURL, "", D{Flag: "base-url", Env: "OPENAI_BASE_URL", Arg: "URL",
		Doc: "OpenAI-compatible URL ending in /v1 (default: Ollama at OLLAMA_HOST, " + openaicompat.RedactURL(defaultBaseURL()) + "); the key comes from OPENAI_API_KEY"},
		settings.HTTPURL("http://127.0.0.1:11434/v1"))
	s.String(&c.System, "", D{Flag: "system", Env: "MEMBRANE_SYSTEM", Arg: "PROMPT", Doc: "system PROMPT"})
	s.Int(&r.maxSteps, 10, D{Flag: "max-steps", Env: "MEMBRANE_MAX_STEPS", Doc: "model calls per question before giving up (N; 0 = no limit)"}, settings.AtLeast(0))
	s.Int(&c.Parallel, 0, D{Flag: "parallel", Doc: "tool calls of one step run at once (N; 0 = all, the default)"}, settings.AtLeast(0))
	s.Float(&r.temperature, 0, D{Flag: "temperature", Arg: "T", Doc: "sampling temperature (T, from 0 to 2; default the model's)"}, settings.Between(0.0, 2.0))
	s.String(&c.ReasoningEffort, "", D{Flag: "reasoning-effort", Env: "MEMBRANE_REASONING_EFFORT", Arg: "LEVEL",
		Doc: "LEVEL sent as reasoning_effort: low, medium, high or none (none turns a thinking model's reasoning off; Ollama takes the levels for gpt-oss models only; default: the model's own)"},
		settings.OneOf("", "low", "medium", "high", "none"))
	s.Duration(&c.Timeout, 0, D{Flag: "timeout", Doc: "give up on a question after DURATION (default none; a turn of serve: 5m, unless its agent sets a timeout)"})
	s.Bool(&r.extract, false, D{Flag: "extract-text-calls", Arg: "BOOL", Doc: "run tool calls the model writes as JSON text (BOOL; default true for Ollama, false otherwise)"})

	s.String(&c.ServerURL, "", D{Flag: "server-url", Env: "MEMBRANE_SERVER_URL", Arg: "URL",
		Doc: "reach membrane over streamable HTTP at URL (such as http://127.0.0.1:8765/mcp) instead of launching it"},
		settings.HTTPURL("http://127.0.0.1:8765/mcp"))
	s.String(&c.Token, "", D{Flag: "token", Env: "MEMBRANE_TOKEN", Arg: "TOKEN", Doc: "bearer TOKEN for --server-url (prefer MEMBRANE_TOKEN or --token-file: flags show in ps)"})
	s.String(&r.tokenFile, "", D{Flag: "token-file", Arg: "FILE", Doc: "read the bearer token for --server-url from FILE"})
	s.String(&c.Membrane, "", D{Flag: "membrane", Env: "MEMBRANE_BIN", Arg: "PATH", Doc: "membrane binary to launch (PATH; default: next to this program, else on PATH)"})
	s.List(&c.ServerArgs, nil, D{Flag: "server-arg", Arg: "ARG", Doc: "extra ARG for the launched membrane, such as --sandbox=rlimit; repeatable"})
	s.String(&c.ConfigFile, "", D{Flag: "config", Env: "MEMBRANE_CONFIG", Arg: "FILE", Doc: "membrane config FILE passed to the launched membrane"})
	s.Bool(&c.NoMembrane, false, D{Flag: "no-membrane", Doc: "launch no membrane; use only the servers of --mcp-config"})
	s.String(&c.MCPConfig, "", D{Flag: "mcp-config", Arg: "FILE",
		Doc: `also connect to the servers of a Claude-Desktop-style FILE ({"mcpServers": {...}}); with several servers, tools are named SERVER__TOOL`})
	s.String(&c.ServerLog, "", D{Flag: "server-log", Arg: "FILE", Doc: "append launched servers' stderr to FILE (default: this program's stderr)"})
	s.Duration(&c.CallTimeout, 0, D{Flag: "call-timeout", Doc: "limit of one tool call (DURATION; default 5m)"})

	globs := func(g string) error { _, err := policy.NewSelector([]string{g}, nil); return err }
	s.List(&c.Tools, nil, D{Flag: "tools", Arg: "GLOB",
		Doc: "offer the model only the tools whose names (as /tools shows them) match GLOB, such as 'ollama_*'; repeatable (default: all)"}, globs)
	s.List(&c.ExcludeTools, nil, D{Flag: "exclude-tools", Arg: "GLOB", Doc: "do not offer the model the tools matching GLOB; repeatable"}, globs)
	s.String(&c.Card, string(agent.CardModeAuto), D{Flag: "capabilities-card", Env: "MEMBRANE_CAPABILITIES_CARD", Arg: "MODE",
		Doc: "list the model's tools in its system prompt, refreshed as they change: auto (for small or local models), on or off"},
		settings.OneOf(agent.CardModes...))
	s.Int(&c.CardTokens, agent.DefaultCardChars/agent.CharsPerToken, D{Flag: "capabilities-card-tokens", Env: "MEMBRANE_CAPABILITIES_CARD_TOKENS", Arg: "N",
		Doc: "budget of the capabilities card (N tokens, counted as 4 bytes each)"}, settings.Positive[int])

	// Named agents, and the API of `orchestrator serve`.
	s.String(&c.AgentsFile, "", D{Flag: "agents", Env: "MEMBRANE_AGENTS", Arg: "FILE",
		Doc: "read named agents from the agents key of FILE (YAML or JSON; membrane's config file may hold them); serve reloads it on change"})
	s.String(&c.Agent, "", D{Flag: "agent", Env: "MEMBRANE_AGENT", Arg: "NAME",
		Doc: "run the agent NAME of --agents: its model, endpoint, prompt, tools, approvals and limits; flags given still win"})
	sv := &c.Serve
	s.String(&sv.Addr, "127.0.0.1:8766", D{Flag: "http", Env: "MEMBRANE_SERVE_HTTP", Arg: "ADDR",
		Doc: "serve: listen on ADDR (host:port; beyond loopback only with an API token)"}, func(v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("want host:port, such as 127.0.0.1:8766")
		}
		return nil
	})
	s.String(&sv.Token, "", D{Flag: "api-token", Env: "MEMBRANE_API_TOKEN", Arg: "TOKEN",
		Doc: "serve: bearer TOKEN every API request must carry (prefer the variable or --api-token-file: flags show in ps)"})
	s.String(&r.apiTokenFile, "", D{Flag: "api-token-file", Arg: "FILE", Doc: "serve: read the API token from FILE"})
	s.List(&sv.Origins, nil, D{Flag: "allowed-origin", Arg: "ORIGIN", Doc: "serve: a browser ORIGIN (scheme://host[:port]) allowed to call the API; repeatable"}, func(v string) error {
		if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("want scheme://host[:port], such as https://chat.example.com")
		}
		return nil
	})
	s.List(&sv.Hosts, nil, D{Flag: "allowed-host", Arg: "HOST", Doc: "serve: a Host header accepted besides loopback names (DNS rebinding guard); repeatable"})
	s.Size(&sv.MaxRequest, openaicompat.DefaultMaxRequestBytes, D{Flag: "max-request", Env: "MEMBRANE_MAX_REQUEST", Doc: "serve: largest request body (SIZE)"}, settings.Positive[int64])
	s.Int(&sv.TurnsPerToken, openaicompat.DefaultTurnsPerToken, D{Flag: "turns-per-token", Env: "MEMBRANE_TURNS_PER_TOKEN", Doc: "serve: turns one token runs at once (N); more get 429"}, settings.AtLeast(1))
	s.Int(&sv.MaxTurns, openaicompat.DefaultMaxTurns, D{Flag: "max-turns", Env: "MEMBRANE_MAX_TURNS", Doc: "serve: turns running at once, all clients together (N); more get 503"}, settings.AtLeast(1))
	s.Duration(&sv.ConversationTTL, 24*time.Hour, D{Flag: "conversation-ttl", Env: "MEMBRANE_CONVERSATION_TTL",
		Doc: "serve: forget a conversation_id's history after DURATION without a turn (kept in --store)"}, settings.Positive[time.Duration])
	s.Int(&sv.MaxConversations, store.DefaultMaxConversations, D{Flag: "max-conversations", Env: "MEMBRANE_MAX_CONVERSATIONS",
		Doc: "serve: conversations kept at once (N); past it the least recent go"}, settings.AtLeast(1))
	s.Size(&sv.ConversationSize, openaicompat.DefaultConversationSize, D{Flag: "max-conversation-size", Env: "MEMBRANE_MAX_CONVERSATION_SIZE",
		Doc: "serve: history kept per conversation (SIZE); past it the oldest messages go"}, settings.Positive[int64])

	s.Bool(&c.JSON, false, D{Flag: "json", Doc: "print one JSON object (answer, tool calls, tokens, durations) instead of text; with the REPL, one per line"})
	s.List(&c.Approve, nil, D{Flag: "approve", Arg: "TOOLS", Split: true, Doc: "ask before each call of these TOOLS (comma-separated, repeatable; '*' = all)"})
	s.Bool(&c.Yes, false, D{Flag: "yes", Doc: "approve the --approve tools without asking when there is no terminal"})
	s.Bool(&c.HideReasoning, false, D{Flag: "hide-reasoning", Env: "MEMBRANE_HIDE_REASONING", Doc: "do not show the model's reasoning"})
	s.Bool(&c.Verbose, false, D{Flag: "v", Doc: "verbose: debug logs on stderr"})
	s.Bool(&c.NoColor, false, D{Flag: "no-color", Doc: "no colours or spinner (also NO_COLOR=1)"})
	s.String(&c.Images, images.Auto, D{Flag: "images", Env: "MEMBRANE_IMAGES", Arg: "MODE",
		Doc: "images tools return: auto saves each and prints its path, and draws it in kitty and iTerm2 terminals; save only saves; off shows none (MODE)"},
		settings.OneOf(images.Auto, images.Save, images.Off))
	s.String(&c.ImageDir, "", D{Flag: "image-dir", Arg: "DIR", Doc: "save the images tools return in DIR (default: a new temporary directory)"})
	s.String(&c.HistoryFile, "", D{Flag: "history-file", Arg: "FILE", Doc: `keep the REPL's input lines in FILE (default $XDG_STATE_HOME/membrane/orchestrator_history; "off" for none)`})
	s.String(&c.Store, "", D{Flag: "store", Env: "MEMBRANE_STORE", Arg: "FILE",
		Doc: `keep each turn (question, steps, model calls with tokens and timings, tool calls) in the SQLite FILE membrane's trace store uses, or off (default $XDG_STATE_HOME/membrane/membrane.db)`})
	s.Bool(&c.History, false, D{Flag: "history", Doc: "print the latest stored turns with their steps (as /history does) and exit; with --json, one JSON object per turn"})
	s.Bool(&r.version, false, D{Flag: "version", Doc: "print the version and exit", Stop: true})
	return s
}

// rawConfig holds the settings that parseConfig turns into another form.
type rawConfig struct {
	maxSteps    int
	temperature float64
	extract     bool
	tokenFile   string
	version     bool

	apiTokenFile string
}

const usageHead = `orchestrator drives a reasoning model that calls membrane's tools (and any
other MCP server's) in a loop, through an OpenAI-compatible chat API.

Usage:
  orchestrator [flags]                 interactive session (a REPL)
  orchestrator [flags] -e "QUESTION"   answer one question and exit (0 ok, 1 failed)
  orchestrator [flags] QUESTION...     the same
  orchestrator serve [flags]           serve the agents of --agents over an
                                       OpenAI-compatible API at --http

By default it launches the membrane binary found next to itself (else on
PATH) over stdio, and talks to Ollama's /v1 at OLLAMA_HOST. A setting's
environment variable, shown beside it, is used when the flag is not given.
A DURATION is 90s, 5m or 1h30m; a bare number is seconds.

Flags:
`

const usageTail = `
REPL commands: /tools, /model [NAME], /history [all], /clear, /help, /exit (or Ctrl-D).
Ctrl-C cancels the running turn and its tool calls, not the session.

Approval: --approve sh,python_run asks before each call of those tools when
stdin is a terminal; without a terminal such calls are denied (the model is
told) unless --yes is given. --approve '*' covers every tool.
`

// parseConfig reads flags, then the environment, into a Config. With
// settings.ErrHelp it returns the settings too, to print their usage.
func parseConfig(args []string, getenv func(string) string) (*Config, *settings.Set, error) {
	var (
		cfg Config
		raw rawConfig
	)
	s := define(&cfg, &raw)
	if err := s.Load(args, getenv, nil); err != nil {
		return nil, s, err
	}
	if rest := s.Args(); len(rest) > 0 {
		if cfg.Exec != "" {
			return nil, s, fmt.Errorf("give the question either with -e or as arguments, not both (got -e and %q)", strings.Join(rest, " "))
		}
		if cfg.History {
			return nil, s, fmt.Errorf("--history takes no value: it prints the stored turns and exits (got %q); the REPL's input history file is --history-file FILE", strings.Join(rest, " "))
		}
		cfg.Exec = strings.Join(rest, " ")
	}
	if getenv("NO_COLOR") != "" {
		cfg.NoColor = true
	}
	cfg.MaxSteps = raw.maxSteps
	if cfg.MaxSteps == 0 {
		cfg.MaxSteps = -1 // no limit
	}
	if s.IsSet("temperature") {
		cfg.Temperature = &raw.temperature
	}
	if s.IsSet("extract-text-calls") {
		cfg.ExtractText = &raw.extract
	}
	if cfg.BaseURL != "" {
		cfg.APIKey = strings.TrimSpace(getenv("OPENAI_API_KEY"))
	}
	if cfg.ServerURL != "" && cfg.NoMembrane {
		return nil, s, s.Errorf("no-membrane", "cannot be combined with %s", s.NameOf("server-url"))
	}
	if raw.tokenFile != "" {
		if s.SourceOf("token") == settings.FromFlag {
			return nil, s, s.Errorf("token-file", "set either --token or --token-file, not both")
		}
		b, err := os.ReadFile(raw.tokenFile)
		if err != nil {
			return nil, s, s.Errorf("token-file", "%v", err)
		}
		cfg.Token = strings.TrimSpace(string(b))
	}
	if raw.apiTokenFile != "" {
		if s.SourceOf("api-token") == settings.FromFlag {
			return nil, s, s.Errorf("api-token-file", "set either --api-token or --api-token-file, not both")
		}
		b, err := os.ReadFile(raw.apiTokenFile)
		if err != nil {
			return nil, s, s.Errorf("api-token-file", "%v", err)
		}
		cfg.Serve.Token = strings.TrimSpace(string(b))
		if cfg.Serve.Token == "" {
			return nil, s, s.Errorf("api-token-file", "%s is empty", raw.apiTokenFile)
		}
	}
	if cfg.NoMembrane && cfg.MCPConfig == "" {
		return nil, s, s.Errorf("no-membrane", "needs --mcp-config: there would be no tools at all")
	}
	return &cfg, s, nil
}

// extractText says whether to run tool calls written as text: as set, else
// on when the endpoint is Ollama (the default endpoint, or port 11434).
func (c *Config) extractText() bool {
	if c.ExtractText != nil {
		return *c.ExtractText
	}
	if c.BaseURL == "" {
		return true
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return false
	}
	def, _ := url.Parse(defaultBaseURL())
	return u.Port() == "11434" || (def != nil && u.Host == def.Host)
}

// defaultBaseURL is Ollama's OpenAI-compatible endpoint at OLLAMA_HOST,
// read as membrane reads it (ollama.ParseHost).
func defaultBaseURL() string {
	u, err := ollama.ParseHost("")
	if err != nil {
		return openaicompat.LocalBaseURL
	}
	return strings.TrimSuffix(u.String(), "/") + "/v1"
}
