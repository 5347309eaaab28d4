package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/ollama/openaicompat"
)

// Config is everything the orchestrator can be told. Each setting comes from
// its flag, else its environment variable, else the default.
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

	JSON          bool
	Approve       []string
	Yes           bool
	HideReasoning bool
	Verbose       bool
	NoColor       bool
	History       string
}

var errHelp = flag.ErrHelp

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

type repeatFlag []string

func (l *repeatFlag) String() string     { return strings.Join(*l, " ") }
func (l *repeatFlag) Set(s string) error { *l = append(*l, s); return nil }

const usageHead = `orchestrator drives a reasoning model that calls membrane's tools (and any
other MCP server's) in a loop, through an OpenAI-compatible chat API.

Usage:
  orchestrator [flags]                 interactive session (a REPL)
  orchestrator [flags] -e "QUESTION"   answer one question and exit (0 ok, 1 failed)
  orchestrator [flags] QUESTION...     the same

By default it launches the membrane binary found next to itself (else on
PATH) over stdio, and talks to Ollama's /v1 at OLLAMA_HOST.
Each flag may also be set by the environment variable shown; a flag wins.

Flags:
`

const usageTail = `
REPL commands: /tools, /model [NAME], /clear, /help, /exit (or Ctrl-D).
Ctrl-C cancels the running turn and its tool calls, not the session.

Approval: --approve sh,python_run asks before each call of those tools when
stdin is a terminal; without a terminal such calls are denied (the model is
told) unless --yes is given. --approve '*' covers every tool.
`

// parseConfig reads flags, then the environment, into a Config.
func parseConfig(args []string, getenv func(string) string, usageOut io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("orchestrator", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	var (
		cfg                      Config
		temp, maxSteps, parallel string
		timeout, callTimeout     string
		extract                  string
		approve                  listFlag
		serverArgs               repeatFlag
		version                  bool
		tokenFile                string
	)
	fs.StringVar(&cfg.Exec, "e", "", "answer `QUESTION` and exit (\"-\" reads it from stdin)")
	fs.StringVar(&cfg.Model, "model", "", "`NAME` of the chat model (env MEMBRANE_MODEL; default: the endpoint's only model)")
	fs.StringVar(&cfg.BaseURL, "base-url", "", "OpenAI-compatible `URL` ending in /v1 (env OPENAI_BASE_URL; default: Ollama at OLLAMA_HOST, "+openaicompat.RedactURL(openaicompat.DefaultBaseURL())+"); the key comes from OPENAI_API_KEY")
	fs.StringVar(&cfg.System, "system", "", "system `PROMPT` (env MEMBRANE_SYSTEM)")
	fs.StringVar(&maxSteps, "max-steps", "", "model calls per question before giving up (`N`, env MEMBRANE_MAX_STEPS; default 10; 0 = no limit)")
	fs.StringVar(&parallel, "parallel", "", "tool calls of one step run at once (`N`; default all)")
	fs.StringVar(&temp, "temperature", "", "sampling temperature (`T`; default the model's)")
	fs.StringVar(&cfg.ReasoningEffort, "reasoning-effort", "", "`LEVEL` sent as reasoning_effort: low, medium, high or none")
	fs.StringVar(&timeout, "timeout", "", "give up on a question after `DURATION` (default none)")
	fs.StringVar(&extract, "extract-text-calls", "", "run tool calls the model writes as JSON text (`BOOL`; default true for Ollama, false otherwise)")

	fs.StringVar(&cfg.ServerURL, "server-url", "", "reach membrane over streamable HTTP at `URL` (such as http://127.0.0.1:8765/mcp) instead of launching it (env MEMBRANE_SERVER_URL)")
	fs.StringVar(&cfg.Token, "token", "", "bearer `TOKEN` for --server-url (prefer env MEMBRANE_TOKEN or --token-file: flags show in ps)")
	fs.StringVar(&tokenFile, "token-file", "", "read the bearer token for --server-url from `FILE`")
	fs.StringVar(&cfg.Membrane, "membrane", "", "membrane binary to launch (`PATH`, env MEMBRANE_BIN; default: next to this program, else on PATH)")
	fs.Var(&serverArgs, "server-arg", "extra `ARG` for the launched membrane, such as --sandbox=rlimit; repeatable")
	fs.StringVar(&cfg.ConfigFile, "config", "", "membrane config `FILE` passed to the launched membrane (env MEMBRANE_CONFIG)")
	fs.BoolVar(&cfg.NoMembrane, "no-membrane", false, "launch no membrane; use only the servers of --mcp-config")
	fs.StringVar(&cfg.MCPConfig, "mcp-config", "", "also connect to the servers of a Claude-Desktop-style `FILE` ({\"mcpServers\": {...}}); with several servers, tools are named SERVER__TOOL")
	fs.StringVar(&cfg.ServerLog, "server-log", "", "append launched servers' stderr to `FILE` (default: this program's stderr)")
	fs.StringVar(&callTimeout, "call-timeout", "", "limit of one tool call (`DURATION`; default 5m)")

	fs.BoolVar(&cfg.JSON, "json", false, "print one JSON object (answer, tool calls, tokens, durations) instead of text; with the REPL, one per line")
	fs.Var(&approve, "approve", "ask before each call of these `TOOLS` (comma-separated; '*' = all)")
	fs.BoolVar(&cfg.Yes, "yes", false, "approve the --approve tools without asking when there is no terminal")
	fs.BoolVar(&cfg.HideReasoning, "hide-reasoning", false, "do not show the model's reasoning (env MEMBRANE_HIDE_REASONING=1)")
	fs.BoolVar(&cfg.Verbose, "v", false, "verbose: debug logs on stderr")
	fs.BoolVar(&cfg.NoColor, "no-color", false, "no colours or spinner (also NO_COLOR=1)")
	fs.StringVar(&cfg.History, "history", "", "REPL history `FILE` (default $XDG_STATE_HOME/membrane/orchestrator_history; \"off\" for none)")
	fs.BoolVar(&version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(usageOut, usageHead)
		fs.PrintDefaults()
		fmt.Fprint(usageOut, usageTail)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if version {
		return nil, errVersion
	}
	if rest := fs.Args(); len(rest) > 0 {
		if cfg.Exec != "" {
			return nil, fmt.Errorf("give the question either with -e or as arguments, not both (got -e and %q)", strings.Join(rest, " "))
		}
		cfg.Exec = strings.Join(rest, " ")
	}

	env := func(p *string, name string) {
		if *p == "" {
			*p = strings.TrimSpace(getenv(name))
		}
	}
	env(&cfg.Model, "MEMBRANE_MODEL")
	env(&cfg.BaseURL, "OPENAI_BASE_URL")
	env(&cfg.System, "MEMBRANE_SYSTEM")
	env(&maxSteps, "MEMBRANE_MAX_STEPS")
	env(&cfg.ServerURL, "MEMBRANE_SERVER_URL")
	env(&cfg.Token, "MEMBRANE_TOKEN")
	env(&cfg.Membrane, "MEMBRANE_BIN")
	env(&cfg.ConfigFile, "MEMBRANE_CONFIG")
	if getenv("NO_COLOR") != "" {
		cfg.NoColor = true
	}
	if v := getenv("MEMBRANE_HIDE_REASONING"); v != "" && v != "0" && v != "false" {
		cfg.HideReasoning = true
	}
	cfg.Approve = approve
	cfg.ServerArgs = serverArgs

	bad := func(flag, format string, a ...any) error {
		return fmt.Errorf("%s: %s", flag, fmt.Sprintf(format, a...))
	}
	cfg.MaxSteps = 10
	if maxSteps != "" {
		n, err := strconv.Atoi(maxSteps)
		if err != nil || n < 0 {
			return nil, bad("--max-steps", "%q is not a whole number of 0 or more", maxSteps)
		}
		cfg.MaxSteps = n
		if n == 0 {
			cfg.MaxSteps = -1 // no limit
		}
	}
	if parallel != "" {
		n, err := strconv.Atoi(parallel)
		if err != nil || n < 1 {
			return nil, bad("--parallel", "%q is not a whole number of 1 or more", parallel)
		}
		cfg.Parallel = n
	}
	if temp != "" {
		f, err := strconv.ParseFloat(temp, 64)
		if err != nil || f < 0 || f > 2 {
			return nil, bad("--temperature", "%q is not a number from 0 to 2", temp)
		}
		cfg.Temperature = &f
	}
	switch cfg.ReasoningEffort {
	case "", "low", "medium", "high", "none":
	default:
		return nil, bad("--reasoning-effort", "%q is not low, medium, high or none", cfg.ReasoningEffort)
	}
	for _, d := range []struct {
		flag string
		in   string
		out  *time.Duration
	}{{"--timeout", timeout, &cfg.Timeout}, {"--call-timeout", callTimeout, &cfg.CallTimeout}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v < 0 {
			return nil, bad(d.flag, "%q is not a duration such as 90s or 5m", d.in)
		}
		*d.out = v
	}
	if extract != "" {
		b, err := strconv.ParseBool(extract)
		if err != nil {
			return nil, bad("--extract-text-calls", "%q is not true or false", extract)
		}
		cfg.ExtractText = &b
	}
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, bad("--base-url / OPENAI_BASE_URL", "%q is not an http(s) URL such as http://127.0.0.1:11434/v1", openaicompat.RedactURL(cfg.BaseURL))
		}
		cfg.APIKey = strings.TrimSpace(getenv("OPENAI_API_KEY"))
	}
	if cfg.ServerURL != "" {
		u, err := url.Parse(cfg.ServerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, bad("--server-url / MEMBRANE_SERVER_URL", "%q is not an http(s) URL such as http://127.0.0.1:8765/mcp", openaicompat.RedactURL(cfg.ServerURL))
		}
		if cfg.NoMembrane {
			return nil, bad("--no-membrane", "cannot be combined with --server-url")
		}
	}
	if tokenFile != "" {
		if cfg.Token != "" && getenv("MEMBRANE_TOKEN") == "" {
			return nil, bad("--token-file", "set either --token or --token-file, not both")
		}
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, bad("--token-file", "%v", err)
		}
		cfg.Token = strings.TrimSpace(string(b))
	}
	if cfg.NoMembrane && cfg.MCPConfig == "" {
		return nil, bad("--no-membrane", "needs --mcp-config: there would be no tools at all")
	}
	return &cfg, nil
}

var errVersion = errors.New("version")

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
	def, _ := url.Parse(openaicompat.DefaultBaseURL())
	return u.Port() == "11434" || (def != nil && u.Host == def.Host)
}
