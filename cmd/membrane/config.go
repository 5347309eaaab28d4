package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/sandbox"
	"github.com/membrane-mcp/membrane/sandbox/httpget"
)

// Config is everything membrane can be told; define says where each part
// comes from.
type Config struct {
	// File is the config file read (--config / MEMBRANE_CONFIG); "" for
	// none. FileData is what was read of it.
	File     string
	FileData []byte

	HTTP struct {
		Addr               string
		Token              string
		TokenFile          string
		AllowedOrigins     []string
		AllowedHosts       []string
		Stateless          bool
		SessionIdleTimeout time.Duration
		MaxBody            int64
		MaxSessions        int
		MaxSessionsToken   int
		IdleTimeout        time.Duration
		MaxConns           int
		// Workspace handles (calls.Workspaces), for clients without a
		// session.
		WorkspaceIdle      time.Duration
		MaxWorkspaces      int
		MaxWorkspacesToken int
		// ConformanceFixtures serves the conformance suite's fixture
		// tools and resources (tests only).
		ConformanceFixtures bool
		// TokensFile holds scoped tokens (calls/policy); watched.
		TokensFile string
	}
	// Policy selects tools and limits calls.
	Policy struct {
		Tools, ExcludeTools []string
		// RateLimits are GLOB=N/min[:BURST], shared by every client,
		// each matching tool a bucket of its own.
		RateLimits []string
		// ScrubOutput hides secrets in what calls answer.
		ScrubOutput bool
		// SecretEnv names environment variables whose values are secrets
		// to hide wherever they show up.
		SecretEnv []string
	}
	// HTTPGet configures http_get; it is off while Allow is empty.
	HTTPGet struct {
		Allow   []string
		Headers []HTTPGetHeader
		Timeout time.Duration
		MaxBody int64
	}
	// ModelTools is Ollama.ModelTools as text.
	ModelTools string
	// OpenAIBackends are the --openai-backend values, NAME=URL[,key-...];
	// ollamaConfig merges them with Ollama.Backends from the file.
	OpenAIBackends []string
	Log            struct {
		Level, Format string
	}
	// SandboxMode is Sandbox.Mode as text.
	SandboxMode string
	Sandbox     sandbox.Config
	Ollama      ollama.Config
	// Observe says where calls are recorded and exported.
	Observe struct {
		// AuditLog is the JSONL audit ledger's file, "-" for stderr, ""
		// for none.
		AuditLog        string
		AuditLogMaxSize int64
		// MetricsAddr, when set, serves /metrics on a listener of its
		// own.
		MetricsAddr string
		// Store is the trace store's file, "off" for none, "" for the
		// default ($XDG_STATE_HOME/membrane/membrane.db).
		Store string
		// Lens is "auto", "on" or "off": the web view at /lens/ on the
		// HTTP listener.
		Lens string
	}
	// Queue is how calls past a tool's concurrency wait (calls.RouterOptions).
	Queue struct {
		Length  int
		Timeout time.Duration
	}
	// MaxResult bounds one tool result as encoded (mcp.ServerOptions).
	MaxResult int64
	// Agents are served as tools agent_NAME (calls/agent).
	Agents struct {
		// File holds the agents (calls/agent/agents); watched.
		File string
		// Specs and Data are what File held at start-up.
		Specs []agents.Spec
		Data  []byte
		// Depth bounds how deep agent tools nest.
		Depth int
		// Card is auto, on or off; CardTokens is its budget.
		Card       string
		CardTokens int
	}
	// ShutdownTimeout bounds how long running calls get to finish after
	// SIGINT or SIGTERM.
	ShutdownTimeout time.Duration
	Version         bool

	set *settings.Set
}

// define lists membrane's settings, in the order of --help and the
// README, each bound to its field of c and set to its default. See the
// settings package for how to add one.
func define(name string, c *Config) *settings.Set {
	s := settings.New(name)
	s.Head = commandHeads[name]
	if s.Head == "" {
		s.Head = fmt.Sprintf(usageHead, "membrane")
	}
	s.Tail = usageTail
	type D = settings.Def
	pos := settings.Positive[int]
	posSize := settings.Positive[int64]
	posDur := settings.Positive[time.Duration]

	s.ConfigFile(&c.File, D{Flag: "config", Env: "MEMBRANE_CONFIG", Arg: "FILE",
		Doc: "read settings from FILE (YAML or JSON); watched, and its ollama tools reloaded on change"})

	h := &c.HTTP
	s.String(&h.Addr, "", D{Flag: "http", Env: "MEMBRANE_HTTP", Key: "http.addr", Arg: "ADDR",
		Doc: "serve streamable HTTP on ADDR (host:port) instead of stdio; a non-loopback address needs a token"})
	s.String(&h.Token, "", D{Flag: "token", Env: "MEMBRANE_TOKEN", Key: "http.token", Arg: "TOKEN",
		Doc: "bearer TOKEN every HTTP request must carry (prefer MEMBRANE_TOKEN or --token-file: flags show in ps)"}, settings.NoSpace)
	s.String(&h.TokenFile, "", D{Flag: "token-file", Env: "MEMBRANE_TOKEN_FILE", Key: "http.token_file", Arg: "FILE",
		Doc: "read the bearer token from FILE (surrounding whitespace ignored)"})
	s.List(&h.AllowedOrigins, nil, D{Flag: "allowed-origin", Env: "MEMBRANE_ALLOWED_ORIGINS", Key: "http.allowed_origins", Arg: "ORIGIN",
		Doc: "browser ORIGIN (https://host[:port]) allowed to call the HTTP endpoint; repeatable"}, settings.HTTPURL("https://host[:port]"))
	s.List(&h.AllowedHosts, nil, D{Flag: "allowed-host", Env: "MEMBRANE_ALLOWED_HOSTS", Key: "http.allowed_hosts", Arg: "HOST",
		Doc: "HOST header value accepted (default: loopback names on a loopback address, any otherwise); repeatable"})
	s.String(&h.TokensFile, "", D{Flag: "tokens-file", Env: "MEMBRANE_TOKENS_FILE", Key: "http.tokens_file", Arg: "FILE",
		Doc: "scoped bearer tokens from FILE (JSON: names, tool globs, rate limits, caps); watched and reloaded whole"})
	s.Bool(&h.Stateless, false, D{Flag: "stateless", Env: "MEMBRANE_STATELESS", Key: "http.stateless",
		Doc: "HTTP without sessions, for several replicas behind a load balancer"})
	s.Duration(&h.SessionIdleTimeout, 30*time.Minute, D{Flag: "session-idle-timeout", Env: "MEMBRANE_SESSION_IDLE_TIMEOUT", Key: "http.session_idle_timeout",
		Doc: "close an HTTP session idle this long (DURATION; 0 = never)"})
	s.Size(&h.MaxBody, 4<<20, D{Flag: "max-body", Env: "MEMBRANE_MAX_BODY", Key: "http.max_body",
		Doc: "largest HTTP request body (SIZE, such as 4MiB); larger gets 413"}, posSize)
	s.Int(&h.MaxSessions, mcp.DefaultMaxSessions, D{Flag: "max-sessions", Env: "MEMBRANE_MAX_SESSIONS", Key: "http.max_sessions", Arg: "N",
		Doc: "HTTP sessions open at once (N); an initialize past it gets 503"}, pos)
	s.Int(&h.MaxSessionsToken, mcp.DefaultMaxSessionsPerToken, D{Flag: "max-sessions-per-token", Env: "MEMBRANE_MAX_SESSIONS_PER_TOKEN", Key: "http.max_sessions_per_token", Arg: "N",
		Doc: "HTTP sessions one token holds at once (N); past it gets 429"}, pos)
	s.Duration(&h.IdleTimeout, mcp.DefaultIdleTimeout, D{Flag: "idle-timeout", Env: "MEMBRANE_IDLE_TIMEOUT", Key: "http.idle_timeout",
		Doc: "close a keep-alive HTTP connection idle this long (DURATION)"}, posDur)
	s.Int(&h.MaxConns, mcp.DefaultMaxConns, D{Flag: "max-conns", Env: "MEMBRANE_MAX_CONNS", Key: "http.max_conns", Arg: "N",
		Doc: "HTTP connections served at once (N); more wait to be accepted"}, pos)
	s.Duration(&h.WorkspaceIdle, calls.DefaultWorkspaceIdle, D{Flag: "workspace-idle-timeout", Env: "MEMBRANE_WORKSPACE_IDLE_TIMEOUT", Key: "http.workspace_idle_timeout",
		Doc: "remove a workspace handle's files after no call used it this long (DURATION)"}, posDur)
	s.Int(&h.MaxWorkspaces, calls.DefaultWorkspacesTotal, D{Flag: "max-workspaces", Env: "MEMBRANE_MAX_WORKSPACES", Key: "http.max_workspaces", Arg: "N",
		Doc: "workspace handles open at once, for clients without a session (N); a call that would make one more is refused"}, pos)
	s.Int(&h.MaxWorkspacesToken, calls.DefaultWorkspacesPerOwner, D{Flag: "max-workspaces-per-token", Env: "MEMBRANE_MAX_WORKSPACES_PER_TOKEN", Key: "http.max_workspaces_per_token", Arg: "N",
		Doc: "workspace handles one token holds at once (N)"}, pos)
	s.Bool(&h.ConformanceFixtures, false, D{Flag: "conformance-fixtures", Env: "MEMBRANE_CONFORMANCE_FIXTURES", Key: "http.conformance_fixtures",
		Doc: "for tests only: also serve the MCP conformance suite's fixture tools (test_*) and test:// resources"})

	s.String(&c.Log.Level, "info", D{Flag: "log-level", Env: "MEMBRANE_LOG_LEVEL", Key: "log.level", Arg: "LEVEL",
		Doc: "LEVEL of the logs on stderr: debug, info, warn or error"}, settings.OneOf("debug", "info", "warn", "error"))
	s.String(&c.Log.Format, "text", D{Flag: "log-format", Env: "MEMBRANE_LOG_FORMAT", Key: "log.format", Arg: "FORMAT",
		Doc: "FORMAT of the logs on stderr: text or json"}, settings.OneOf("text", "json"))
	ob := &c.Observe
	s.String(&ob.AuditLog, "", D{Flag: "audit-log", Env: "MEMBRANE_AUDIT_LOG", Key: "observe.audit_log", Arg: "FILE",
		Doc: "append one JSON line per call (secrets scrubbed) to FILE, or - for stderr; rotated by size"})
	s.Size(&ob.AuditLogMaxSize, ledger.DefaultMaxFileBytes, D{Flag: "audit-log-max-size", Env: "MEMBRANE_AUDIT_LOG_MAX_SIZE", Key: "observe.audit_log_max_size",
		Doc: "rotate the audit log past this SIZE, keeping 3 old files"}, posSize)
	s.String(&ob.MetricsAddr, "", D{Flag: "metrics-addr", Env: "MEMBRANE_METRICS_ADDR", Key: "observe.metrics_addr", Arg: "ADDR",
		Doc: "serve Prometheus /metrics on ADDR (host:port) of its own; with --http it is also at /metrics there, behind the token"},
		settings.HostPort("127.0.0.1:9464"))
	s.String(&ob.Store, "", D{Flag: "store", Env: "MEMBRANE_STORE", Key: "observe.store", Arg: "FILE",
		Doc: "keep sessions and calls in the SQLite FILE that `membrane calls` reads, or off (default $XDG_STATE_HOME/membrane/membrane.db)"})
	s.String(&ob.Lens, "auto", D{Flag: "lens", Env: "MEMBRANE_LENS", Key: "observe.lens", Arg: "MODE",
		Doc: "the live web view at /lens/ on the --http listener, behind its token: auto (on unless --stateless), on (also stateless, for a shared store) or off"},
		settings.OneOf("auto", "on", "off"))
	s.Duration(&c.ShutdownTimeout, 10*time.Second, D{Flag: "shutdown-timeout", Env: "MEMBRANE_SHUTDOWN_TIMEOUT", Key: "shutdown_timeout",
		Doc: "how long running calls get to finish on SIGINT/SIGTERM (DURATION)"}, posDur)

	b := &c.Sandbox
	s.String(&c.SandboxMode, string(sandbox.ModeBwrap), D{Flag: "sandbox", Env: "MEMBRANE_SANDBOX", Key: "sandbox.mode", Arg: "MODE",
		Doc: "isolation of sh and python_run: bwrap (namespaces, no network) or rlimit (limits only; use inside a container)"},
		settings.OneOf(string(sandbox.ModeBwrap), string(sandbox.ModeRlimit)))
	s.Bool(&b.Network, false, D{Flag: "sandbox-network", Env: "MEMBRANE_SANDBOX_NETWORK", Key: "sandbox.network",
		Doc: "give sandboxed code the host's network"})
	s.String(&b.Workspace, "", D{Flag: "workspace", Env: "MEMBRANE_WORKSPACE", Key: "sandbox.workspace", Arg: "DIR",
		Doc: "host DIR mounted read-write at /workspace for every session (default: a fresh dir per session, removed at its end)"}, settings.Dir)
	s.String(&b.Python, "", D{Flag: "python", Env: "MEMBRANE_PYTHON", Key: "sandbox.python", Arg: "PATH",
		Doc: "PATH of the interpreter python_run uses (default: the first real python3 found)"}, settings.Executable)
	s.Duration(&b.Timeout, sandbox.DefaultTimeout, D{Flag: "timeout", Env: "MEMBRANE_TIMEOUT", Key: "sandbox.timeout",
		Doc: "wall-clock limit of a sandboxed call that asks for none (DURATION)"}, posDur)
	s.Duration(&b.MaxTimeout, sandbox.DefaultMaxTimeout, D{Flag: "max-timeout", Env: "MEMBRANE_MAX_TIMEOUT", Key: "sandbox.max_timeout",
		Doc: "largest timeout a sandboxed call may ask for (DURATION)"}, posDur)
	s.Int(&b.CPUSeconds, sandbox.DefaultCPUSeconds, D{Flag: "cpu-seconds", Env: "MEMBRANE_CPU_SECONDS", Key: "sandbox.cpu_seconds",
		Doc: "CPU time limit of each sandboxed process (N seconds)"}, pos)
	s.Size(&b.MemoryBytes, sandbox.DefaultMemoryBytes, D{Flag: "memory", Env: "MEMBRANE_MEMORY", Key: "sandbox.memory",
		Doc: "address-space limit of each sandboxed process, and memory cap of each call's cgroup (SIZE)"}, posSize)
	s.Size(&b.FileSizeBytes, sandbox.DefaultFileSizeBytes, D{Flag: "file-size", Env: "MEMBRANE_FILE_SIZE", Key: "sandbox.file_size",
		Doc: "largest file a sandboxed process may write (SIZE)"}, posSize)
	s.Size(&b.OutputBytes, sandbox.DefaultOutputBytes, D{Flag: "output-limit", Env: "MEMBRANE_OUTPUT_LIMIT", Key: "sandbox.output",
		Doc: "stdout and stderr kept per sandboxed call, each, counted as encoded in JSON; at most 4MiB (SIZE)"}, posSize,
		func(n int64) error {
			if n > sandbox.MaxOutputBytes {
				return errors.New("must be at most 4MiB: a larger result could pass the 16 MiB message limit of MCP clients")
			}
			return nil
		})
	s.Size(&b.TmpBytes, sandbox.DefaultTmpBytes, D{Flag: "tmp-size", Env: "MEMBRANE_TMP_SIZE", Key: "sandbox.tmp",
		Doc: "size of the sandbox's private /tmp (SIZE)"}, posSize)
	s.Int(&b.Procs, sandbox.DefaultProcs, D{Flag: "procs", Env: "MEMBRANE_PROCS", Key: "sandbox.procs",
		Doc: "processes one sandboxed call may run at once (N)"}, pos)
	s.Int(&b.OpenFiles, sandbox.DefaultOpenFiles, D{Flag: "open-files", Env: "MEMBRANE_OPEN_FILES", Key: "sandbox.open_files",
		Doc: "open files per sandboxed process (N)"}, pos)
	s.Int(&b.Concurrency, 0, D{Flag: "concurrency", Env: "MEMBRANE_CONCURRENCY", Key: "sandbox.concurrency",
		Doc: "calls of sh (and of python_run) running at once, a quarter kept for other sessions than the one holding the rest; more wait in the queue (N; 0 = 8 per core, as many as the free memory holds at --memory each, 2 to 64)"},
		settings.AtLeast(0))
	s.Int(&b.Warm, 0, D{Flag: "warm", Env: "MEMBRANE_WARM", Key: "sandbox.warm",
		Doc: "pre-started sandboxes kept waiting for a session's next sh or python_run call (or a new session's first), each used for one call only (N; 0 = one per core, -1 = none)"},
		settings.AtLeast(-1))
	s.Size(&b.WorkspaceBytes, sandbox.DefaultWorkspaceBytes, D{Flag: "workspace-quota", Env: "MEMBRANE_WORKSPACE_QUOTA", Key: "sandbox.workspace_quota",
		Doc: "disk space a per-session workspace may take; a call that passes it is killed (SIZE)"}, posSize)
	s.Int(&b.WorkspaceFiles, sandbox.DefaultWorkspaceFiles, D{Flag: "workspace-files", Env: "MEMBRANE_WORKSPACE_FILES", Key: "sandbox.workspace_files",
		Doc: "files and directories a per-session workspace may hold; a call that passes it is killed (N)"}, pos)
	s.Bool(&b.NoCgroup, false, D{Flag: "sandbox-no-cgroup", Env: "MEMBRANE_SANDBOX_NO_CGROUP", Key: "sandbox.no_cgroup",
		Doc: "do not give each sandboxed call a cgroup capping its memory and tasks"})
	s.Bool(&b.AllowMemfd, false, D{Flag: "sandbox-allow-memfd", Env: "MEMBRANE_SANDBOX_ALLOW_MEMFD", Key: "sandbox.allow_memfd",
		Doc: "allow memfd_create and System V shared memory where no cgroup counts them (the memory cap then no longer holds)"})
	s.Int(&c.Queue.Length, 0, D{Flag: "queue-length", Env: "MEMBRANE_QUEUE_LENGTH", Key: "queue.length",
		Doc: "calls of one tool that may wait for a slot, half of them from one session; one more gets busy (N; 0 = 4 per slot, at least 32, -1 = no queue)"},
		settings.AtLeast(-1))
	s.Duration(&c.Queue.Timeout, calls.DefaultQueueTimeout, D{Flag: "queue-timeout", Env: "MEMBRANE_QUEUE_TIMEOUT", Key: "queue.timeout",
		Doc: "longest a call waits in the queue before it gets busy (DURATION)"}, posDur)
	s.Size(&c.MaxResult, mcp.DefaultMaxResultBytes, D{Flag: "max-result", Env: "MEMBRANE_MAX_RESULT", Key: "max_result",
		Doc: "largest tool result as sent (SIZE); a larger one is cut with a marker, well under the 16 MiB line of go-sdk clients"}, posSize)

	o := &c.Ollama
	s.List(&o.Hosts, nil, D{Flag: "ollama-host", Env: "MEMBRANE_OLLAMA_HOSTS", Key: "ollama.hosts", Arg: "HOST",
		Doc: "Ollama server (HOST: host:port or http(s)://host:port); repeatable (default: OLLAMA_HOST, else 127.0.0.1:11434)"},
		func(h string) error { _, err := ollama.ParseHost(h); return err })
	s.Duration(&o.RefreshInterval, ollama.DefaultRefreshInterval, D{Flag: "ollama-refresh", Env: "MEMBRANE_OLLAMA_REFRESH", Key: "ollama.refresh_interval",
		Doc: "how often the model list is read again (DURATION)"}, posDur)
	s.Duration(&o.CallTimeout, ollama.DefaultCallTimeout, D{Flag: "ollama-timeout", Env: "MEMBRANE_OLLAMA_TIMEOUT", Key: "ollama.call_timeout",
		Doc: "limit of one model call, loading included (DURATION)"}, posDur)
	s.Int(&o.ModelConcurrency, ollama.DefaultModelConcurrency, D{Flag: "model-concurrency", Env: "MEMBRANE_MODEL_CONCURRENCY", Key: "ollama.model_concurrency",
		Doc: "calls running at once against one model; later ones queue (N)"}, pos)
	s.Int(&o.MaxLoadedModels, 0, D{Flag: "max-loaded-models", Env: "MEMBRANE_MAX_LOADED_MODELS", Key: "ollama.max_loaded_models",
		Doc: "models one Ollama host keeps loaded at once, for the order of calls across models (N; 0 = learn it from /api/ps, -1 = no ordering)"},
		settings.AtLeast(-1))
	s.Duration(&o.SwitchWait, ollama.DefaultSwitchWait, D{Flag: "switch-wait", Env: "MEMBRANE_SWITCH_WAIT", Key: "ollama.switch_wait",
		Doc: "longest a call waits while the models running on its host keep taking calls before it (DURATION)"}, posDur)
	s.Size(&o.MaxPromptBytes, ollama.DefaultMaxPromptBytes, D{Flag: "max-prompt", Env: "MEMBRANE_MAX_PROMPT", Key: "ollama.max_prompt",
		Doc: "largest prompt (text and images) of one model call (SIZE)"}, posSize)
	s.Size(&o.MaxResponseBytes, ollama.DefaultMaxResponseBytes, D{Flag: "max-response", Env: "MEMBRANE_MAX_RESPONSE", Key: "ollama.max_response",
		Doc: "largest answer of one chat call; longer is cut (SIZE)"}, posSize)
	s.String(&c.ModelTools, string(ollama.ModelToolsPerModel), D{Flag: "model-tools", Env: "MEMBRANE_MODEL_TOOLS", Key: "ollama.model_tools", Arg: "MODE",
		Doc: "how models become tools: per-model (one each, plus the generic ones), generic (only ollama_chat, ollama_embed, ollama_models, with a model enum) or off"},
		settings.OneOf(string(ollama.ModelToolsPerModel), string(ollama.ModelToolsGeneric), string(ollama.ModelToolsOff)))
	s.List(&c.OpenAIBackends, nil, D{Flag: "openai-backend", Env: "MEMBRANE_OPENAI_BACKENDS", Key: "openai.backend_urls", Arg: "NAME=URL",
		Doc:      "also serve the models of an OpenAI-compatible server (vLLM, llama-server, LM Studio, LiteLLM) at URL, such as vllm=http://gpu1:8000/v1; add ,key-env=VAR or ,key-file=PATH for its API key; repeatable (the variable: separated by spaces or commas)",
		EnvSplit: ollama.SplitBackends},
		func(v string) error { _, err := ollama.ParseBackend(v); return err })
	s.Size(&o.ContextBudget, 0, D{Flag: "context-budget", Env: "MEMBRANE_CONTEXT_BUDGET", Key: "ollama.context_budget",
		Doc: "memory one call's context window (KV cache) may take on a host; num_ctx is capped to fit (SIZE; 0 = the model's context length)"},
		settings.AtLeast[int64](0))
	settings.Value(s, &o.NumCtx, D{Key: "ollama.num_ctx",
		Doc: "num_ctx per model, instead of the size membrane picks for each input: {MODEL: TOKENS}"},
		ollama.ValidateNumCtx)
	settings.Value(s, &o.Backends, D{Key: "openai.backends",
		Doc: "OpenAI-compatible servers with per-model capabilities: [{name, url, key_env, key_file, models: {ID or '*': {vision, tools, thinking, embedding, context_length}}}] (see OpenAI-compatible backends)"},
		ollama.ValidateBackends)

	p := &c.Policy
	globs := func(g string) error { _, err := policy.NewSelector([]string{g}, nil); return err }
	s.List(&p.Tools, nil, D{Flag: "tools", Env: "MEMBRANE_TOOLS", Key: "policy.tools", Arg: "GLOB",
		Doc: "serve only the tools matching GLOB (such as 'ollama_*'); repeatable (default: all)"}, globs)
	s.List(&p.ExcludeTools, nil, D{Flag: "exclude-tools", Env: "MEMBRANE_EXCLUDE_TOOLS", Key: "policy.exclude_tools", Arg: "GLOB",
		Doc: "do not serve the tools matching GLOB; repeatable"}, globs)
	s.List(&p.RateLimits, nil, D{Flag: "rate-limit", Env: "MEMBRANE_RATE_LIMITS", Key: "policy.rate_limits", Arg: "GLOB=N/min[:BURST]",
		Doc: "limit the calls to each tool matching a glob, over all clients (such as sh=10/min:3); repeatable"},
		func(v string) error { _, err := policy.ParseLimit(v); return err })
	s.Bool(&p.ScrubOutput, true, D{Flag: "scrub-output", Env: "MEMBRANE_SCRUB_OUTPUT", Key: "policy.scrub_output",
		Doc: "hide secrets (membrane's tokens, http_get header values, credential shapes) in what tools answer the model; false turns it off"})
	s.List(&p.SecretEnv, nil, D{Flag: "secret-env", Env: "MEMBRANE_SECRET_ENV", Key: "policy.secret_env", Arg: "NAME",
		Doc: "hide the value of environment variable NAME in tool answers, logs, the audit log and the store; repeatable"},
		settings.EnvName)
	g := &c.HTTPGet
	s.List(&g.Allow, nil, D{Flag: "http-get-allow", Env: "MEMBRANE_HTTP_GET_ALLOW", Key: "http_get.allow", Arg: "PATTERN",
		Doc: "turn on http_get for PATTERN: a host, *.domain, host:port, a URL prefix, or * (every public host); repeatable"},
		func(v string) error {
			_, err := httpget.New(httpget.Options{Allow: []string{v}})
			if err != nil {
				return errors.New(strings.TrimPrefix(err.Error(), "httpget: "))
			}
			return nil
		})
	settings.Value(s, &g.Headers, D{Key: "http_get.headers",
		Doc: "headers http_get sends, each only to the URLs its `for` pattern names: [{for, name, value}]"})
	s.Duration(&g.Timeout, httpget.DefaultTimeout, D{Flag: "http-get-timeout", Env: "MEMBRANE_HTTP_GET_TIMEOUT", Key: "http_get.timeout",
		Doc: "limit of one http_get fetch, redirects included (DURATION)"}, posDur)
	s.Size(&g.MaxBody, httpget.DefaultMaxBodyBytes, D{Flag: "http-get-max-body", Env: "MEMBRANE_HTTP_GET_MAX_BODY", Key: "http_get.max_body",
		Doc: "largest body http_get reads; longer is cut (SIZE)"}, posSize)

	ag := &c.Agents
	s.String(&ag.File, "", D{Flag: "agents", Env: "MEMBRANE_AGENTS", Key: "agents_file", Arg: "FILE",
		Doc: "serve each agent of FILE (YAML or JSON, its agents key) as a tool agent_NAME that runs the agent's loop with membrane's tools; watched"})
	s.Int(&ag.Depth, agent.DefaultMaxDepth, D{Flag: "agent-depth", Env: "MEMBRANE_AGENT_DEPTH", Key: "agent_depth", Arg: "N",
		Doc: "how deep agent tools nest (N): at 1 an agent is offered no agent tools; an agent never calls itself"}, pos)
	s.String(&ag.Card, string(agent.CardModeAuto), D{Flag: "capabilities-card", Env: "MEMBRANE_CAPABILITIES_CARD", Key: "capabilities_card", Arg: "MODE",
		Doc: "list an agent's tools in its system prompt: auto (for small or local models), on or off"}, settings.OneOf(agent.CardModes...))
	s.Int(&ag.CardTokens, agent.DefaultCardChars/agent.CharsPerToken, D{Flag: "capabilities-card-tokens", Env: "MEMBRANE_CAPABILITIES_CARD_TOKENS", Key: "capabilities_card_tokens", Arg: "N",
		Doc: "budget of the capabilities card (N tokens, counted as 4 bytes each)"}, pos)

	settings.Value(s, &o.Tools, D{Key: "ollama.tools",
		Doc: "logical tools: a model under a name of its own, with a system prompt, options and a timeout (see Models as tools); reloaded on change"},
		ollama.ValidateTools)

	s.Bool(&c.Version, false, D{Flag: "version", Doc: "print the version and exit", Stop: true})
	return s
}

const usageHead = `%[1]s serves local models (Ollama) and sandboxed sh and python_run as MCP tools.

Usage:
  %[1]s [flags]              serve MCP on stdio (what Claude Desktop launches)
  %[1]s --http ADDR [flags]  serve streamable HTTP at http://ADDR/mcp
  %[1]s doctor [--json] [flags]        check the set-up and explain what is wrong
  %[1]s config claude-desktop|cursor|vscode [flags]
                                       print a client entry that launches this binary
  %[1]s completion bash|zsh|fish       print a shell completion script
  %[1]s version                        print the version (also --version)

Flags may come before or after the subcommand.

Settings come from, highest first: flags, MEMBRANE_* environment variables,
the config file (--config or MEMBRANE_CONFIG, YAML or JSON), then defaults.
A list given by a flag or variable replaces the file's. A DURATION is 90s,
5m or 1h30m; a bare number is seconds. A SIZE is 1048576, 64KiB or 1GiB.

Flags:
`

const usageTail = `
Other variables: OLLAMA_HOST (the default Ollama server), NO_COLOR (plain
logs). Logs go to stderr; stdout carries the MCP protocol on stdio.
`

// loadConfig builds the Config from args (without the program name and
// subcommand), the environment and the config file they name, read through
// readFile (nil: from disk). Every setting is checked, each on its own and
// against the others; the error names each bad one as the user gave it.
// With settings.ErrHelp the Config is returned too, to print its usage.
func loadConfig(name string, args []string, getenv func(string) string, readFile func(string) ([]byte, error)) (*Config, error) {
	c := &Config{}
	s := define(name, c)
	c.set = s
	if err := s.Load(args, getenv, readFile); err != nil {
		return c, err
	}
	if rest := s.Args(); len(rest) > 0 {
		return c, fmt.Errorf("unexpected argument %q (see %s --help)", rest[0], name)
	}
	c.File, c.FileData = s.File()
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

// validate checks what no one setting can check alone, and reads the token
// file.
func (c *Config) validate() error {
	s := c.set
	var errs []error
	// A relative path in the config file is relative to that file.
	s.ResolvePath("token-file", &c.HTTP.TokenFile)
	s.ResolvePath("tokens-file", &c.HTTP.TokensFile)
	s.ResolvePath("agents", &c.Agents.File)
	if abs, err := filepath.Abs(c.Sandbox.Workspace); err == nil && c.Sandbox.Workspace != "" {
		c.Sandbox.Workspace = abs // checked (settings.Dir) from the working directory
	}
	if c.Sandbox.Timeout > c.Sandbox.MaxTimeout {
		errs = append(errs, s.Errorf("timeout", "%s is longer than %s %s", c.Sandbox.Timeout, s.NameOf("max-timeout"), c.Sandbox.MaxTimeout))
	}
	if c.HTTP.Token != "" && c.HTTP.TokenFile != "" {
		errs = append(errs, s.Errorf("token-file", "set either a token (%s) or a token file, not both", s.NameOf("token")))
	}
	if c.HTTP.TokenFile != "" {
		data, err := os.ReadFile(c.HTTP.TokenFile)
		switch {
		case err != nil:
			errs = append(errs, s.Errorf("token-file", "%v", err))
		case strings.TrimSpace(string(data)) == "":
			errs = append(errs, s.Errorf("token-file", "%s is empty", c.HTTP.TokenFile))
		default:
			c.HTTP.Token = strings.TrimSpace(string(data))
		}
	}
	if c.HTTP.TokensFile != "" {
		if _, err := policy.LoadTokens(c.HTTP.TokensFile); err != nil {
			errs = append(errs, s.Errorf("tokens-file", "%v", err))
		}
	}
	if c.Agents.File != "" {
		specs, data, err := loadAgents(c.Agents.File)
		if err != nil {
			errs = append(errs, s.Errorf("agents", "%v", err))
		}
		c.Agents.Specs, c.Agents.Data = specs, data
	}
	if len(c.HTTPGet.Allow) > 0 {
		if _, err := httpget.New(c.httpGetOptions()); err != nil {
			errs = append(errs, s.Errorf("http-get-allow", "%v", strings.TrimPrefix(err.Error(), "httpget: ")))
		}
	}
	if c.HTTP.Addr != "" {
		// Scoped tokens authenticate as well as the single token does.
		auth := c.HTTP.Token
		if auth == "" && c.HTTP.TokensFile != "" {
			auth = "(tokens file)"
		}
		if err := mcp.CheckListen(c.HTTP.Addr, auth); err != nil {
			errs = append(errs, s.Errorf("http", "%s", listenAdvice(s, err)))
		}
	}
	if a := c.Observe.MetricsAddr; a != "" {
		// The same rule as the MCP listener's: no token, loopback only.
		if err := mcp.CheckListen(a, c.HTTP.Token); err != nil {
			errs = append(errs, s.Errorf("metrics-addr", "refusing to serve metrics on %s without a token (they name every tool and model); set %s or listen on 127.0.0.1", a, s.NameOf("token")))
		}
	}
	return errors.Join(errs...)
}

// sandboxConfig returns the sandbox package's form.
func (c *Config) sandboxConfig() sandbox.Config {
	sc := c.Sandbox
	sc.Mode = sandbox.Mode(c.SandboxMode)
	sc = sc.SizedToMachine()
	// membrane's own secrets stay out of every sandbox, even where they
	// sit under a directory sandboxes see (/usr/local/etc, say).
	sc.Hide = slices.DeleteFunc([]string{c.File, c.HTTP.TokenFile, c.HTTP.TokensFile, c.Agents.File}, func(s string) bool { return s == "" })
	return sc
}

func (c *Config) ollamaConfig() ollama.Config {
	oc := c.Ollama
	oc.Hosts = slices.Clone(oc.Hosts)
	oc.Tools = slices.Clone(oc.Tools)
	oc.ModelTools = ollama.ModelTools(c.ModelTools)
	// A flag naming a backend of the file gives its URL and key.
	oc.Backends = ollama.MergeBackends(oc.Backends, c.OpenAIBackends)
	return oc
}

// HTTPGetHeader is a header http_get sends to the URLs For names.
type HTTPGetHeader struct {
	For   string `yaml:"for"`
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// limits returns the shared rate limits in the policy package's form.
func (c *Config) limits() []policy.Limit { return policy.ParseLimits(c.Policy.RateLimits) }

// httpGetOptions returns http_get's options.
func (c *Config) httpGetOptions() httpget.Options {
	o := httpget.Options{
		Allow:        slices.Clone(c.HTTPGet.Allow),
		Timeout:      c.HTTPGet.Timeout,
		MaxBodyBytes: c.HTTPGet.MaxBody,
	}
	for _, h := range c.HTTPGet.Headers {
		o.Headers = append(o.Headers, httpget.Header{For: h.For, Name: h.Name, Value: h.Value})
	}
	return o
}

// secrets are the configured values to hide wherever they show up: the
// server's token, the header values http_get sends, and the values of the
// --secret-env variables (from membrane's own environment); the scrubber
// leaves out values too short to hide (scrub.MinSecretLen).
func (c *Config) secrets() []string {
	out := []string{c.HTTP.Token}
	for _, h := range c.HTTPGet.Headers {
		out = append(out, h.Value)
	}
	for _, name := range c.Policy.SecretEnv {
		out = append(out, os.Getenv(name))
	}
	return out
}

// listenAdvice is mcp.CheckListen's error with the settings that give a
// token named: the library knows none of them.
func listenAdvice(s *settings.Set, err error) string {
	var nt *mcp.NoTokenError
	if !errors.As(err, &nt) {
		return err.Error()
	}
	return fmt.Sprintf("refusing to serve on %s (%s) without a token: anyone who can reach it could run commands in the sandbox; "+
		"set %s or %s, or listen on 127.0.0.1", nt.Addr, nt.Host, s.NameOf("token"), s.NameOf("token-file"))
}
