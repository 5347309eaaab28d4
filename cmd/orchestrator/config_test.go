package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/cmd/internal/settings/settingstest"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	cfg, _, err := parseConfig([]string{"--model", "flag-model", "--max-steps", "3", "--approve", "sh, python_run", "--approve", "x",
		"--server-arg", "--sandbox=rlimit", "--server-arg", "--timeout=5s", "--timeout", "90s", "--temperature", "0.2", "what", "is", "up"},
		envOf(map[string]string{"MEMBRANE_MODEL": "env-model", "MEMBRANE_SYSTEM": "be brief", "NO_COLOR": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model != "flag-model" || cfg.System != "be brief" || cfg.MaxSteps != 3 || cfg.Exec != "what is up" || !cfg.NoColor ||
		cfg.Timeout != 90*time.Second || *cfg.Temperature != 0.2 {
		t.Errorf("cfg = %+v", cfg)
	}
	if !slices.Equal(cfg.Approve, []string{"sh", "python_run", "x"}) || !slices.Equal(cfg.ServerArgs, []string{"--sandbox=rlimit", "--timeout=5s"}) {
		t.Errorf("approve %v, server args %v", cfg.Approve, cfg.ServerArgs)
	}

	cfg, _, err = parseConfig(nil, envOf(map[string]string{"MEMBRANE_MAX_STEPS": "0", "OPENAI_API_KEY": "sk-x"}))
	if err != nil || cfg.MaxSteps != -1 || cfg.APIKey != "" {
		t.Errorf("max-steps 0 means no limit, and the OpenAI key is not sent to the default Ollama endpoint: %+v, %v", cfg, err)
	}
	cfg, _, err = parseConfig([]string{"--base-url", "https://api.openai.com/v1"}, envOf(map[string]string{"OPENAI_API_KEY": "sk-x"}))
	if err != nil || cfg.APIKey != "sk-x" || cfg.extractText() {
		t.Errorf("a --base-url endpoint gets OPENAI_API_KEY and no text extraction by default: %+v, %v", cfg, err)
	}

	tok := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tok, []byte("  secret\n"), 0o600)
	cfg, _, err = parseConfig([]string{"--server-url", "http://127.0.0.1:8765/mcp", "--token-file", tok}, envOf(nil))
	if err != nil || cfg.Token != "secret" {
		t.Errorf("token file: %+v, %v", cfg, err)
	}
}

func TestParseConfigErrorsNameTheFlag(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--max-steps", "-1"}, nil, `--max-steps: "-1" must be at least 0`},
		{nil, map[string]string{"MEMBRANE_MAX_STEPS": "many"}, `MEMBRANE_MAX_STEPS: "many" is not a whole number`},
		{[]string{"--parallel", "-2"}, nil, "--parallel"},
		{[]string{"--temperature", "hot"}, nil, "--temperature"},
		{[]string{"--reasoning-effort", "max"}, nil, "--reasoning-effort"},
		{[]string{"--timeout", "soon"}, nil, "--timeout: \"soon\" is not a duration"},
		{[]string{"--call-timeout", "-1s"}, nil, "--call-timeout"},
		{[]string{"--extract-text-calls", "maybe"}, nil, "--extract-text-calls"},
		{[]string{"--base-url", "localhost:11434"}, nil, `--base-url: "localhost:11434" is not an http(s) URL`},
		{[]string{"--server-url", "ftp://x"}, nil, `--server-url: "ftp://x" is not an http(s) URL`},
		{[]string{"--server-url", "http://h/mcp", "--no-membrane", "--mcp-config", "f"}, nil, "--no-membrane: cannot be combined"},
		{[]string{"--no-membrane"}, nil, "--no-membrane: needs --mcp-config"},
		{[]string{"--token-file", "/nonexistent/tok"}, nil, "--token-file"},
		{[]string{"-e", "q", "more"}, nil, "either with -e or as arguments"},
		// The REPL's history file was --history FILE before --history meant
		// the stored turns: the old form says where the file setting went.
		{[]string{"--history", "/tmp/hist"}, nil, "--history takes no value: it prints the stored turns and exits (got \"/tmp/hist\"); the REPL's input history file is --history-file FILE"},
		{[]string{"--bogus"}, nil, "--bogus: unknown flag"},
	}
	for _, tt := range tests {
		_, _, err := parseConfig(tt.args, envOf(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseConfig(%q, %v) = %v, want %q", tt.args, tt.env, err, tt.want)
		}
	}
	if _, _, err := parseConfig([]string{"--help"}, envOf(nil)); !errors.Is(err, settings.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

// TestEverySetting sets each setting by its flag and its variable, and
// checks that a bad value of each is refused by name.
func TestEverySetting(t *testing.T) {
	settingstest.Run(t, settingstest.Program{
		New: func() *settings.Set { return define(&Config{}, &rawConfig{}) },
		Good: map[string]string{
			"base-url": "https://api.example/v1", "server-url": "http://127.0.0.1:1/mcp", "reasoning-effort": "low",
			"temperature": "0.5", "max-steps": "3", "parallel": "2", "http": "127.0.0.1:0", "allowed-origin": "https://chat.example.com", "images": "save",
			"capabilities-card": "off", "capabilities-card-tokens": "200",
		},
		Bad: map[string]string{
			"base-url": "localhost:11434", "server-url": "ftp://x", "reasoning-effort": "max", "temperature": "3",
			"max-steps": "-1", "parallel": "-1", "timeout": "-1s", "tools": "[oops", "exclude-tools": "[oops",
			"http": "localhost", "allowed-origin": "chat.example.com", "max-request": "0", "turns-per-token": "0", "max-turns": "0",
			"conversation-ttl": "0s", "max-conversations": "0", "max-conversation-size": "0",
			"images":            "inline",
			"capabilities-card": "sometimes", "capabilities-card-tokens": "0",
		},
		NoBad: []string{"e", "model", "system", "token", "token-file", "membrane", "server-arg", "config", "mcp-config",
			"server-log", "approve", "history-file", "agents", "agent", "api-token", "api-token-file", "allowed-host", "store", "image-dir"},
	})
}

// --help shows every flag in the double-dash form (one-letter ones with one
// dash) and every variable, on stdout; a bad flag is one line on stderr.
func TestHelpAndUnknownFlag(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"--help"}, envOf(nil), nil, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, errb.String())
	}
	settingstest.Help(t, define(&Config{}, &rawConfig{}), out.String())
	for _, want := range []string{"\n  --max-steps N\n", "\n  -e QUESTION\n", "\n  -v\n", "REPL commands"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help misses %q", want)
		}
	}
	out.Reset()
	if code := run([]string{"--modle", "x"}, envOf(nil), nil, &out, &errb); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
	if got := errb.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "--modle") || !strings.Contains(got, "did you mean --model?") || out.Len() != 0 {
		t.Errorf("unknown flag: stderr %q, stdout %q; want one line naming it and suggesting --model", got, out.String())
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"--max-steps", "x"}, envOf(nil), nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "orchestrator: --max-steps") {
		t.Errorf("bad flag: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"--membrane", "/nonexistent/membrane", "-e", "q"}, envOf(nil), nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--membrane /nonexistent/membrane") {
		t.Errorf("missing membrane: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"--version"}, envOf(nil), nil, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "orchestrator ") {
		t.Errorf("--version: exit %d, %q", code, out.String())
	}
}

func TestExtractTextDefault(t *testing.T) {
	t.Setenv("OLLAMA_HOST", "10.0.0.5:9999")
	yes, no := true, false
	for _, tt := range []struct {
		cfg  Config
		want bool
	}{
		{Config{}, true},
		{Config{BaseURL: "http://gpu-box:11434/v1"}, true},
		{Config{BaseURL: "http://10.0.0.5:9999/v1"}, true},
		{Config{BaseURL: "https://api.openai.com/v1"}, false},
		{Config{BaseURL: "https://api.openai.com/v1", ExtractText: &yes}, true},
		{Config{ExtractText: &no}, false},
	} {
		if got := tt.cfg.extractText(); got != tt.want {
			t.Errorf("%+v: %v, want %v", tt.cfg, got, tt.want)
		}
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "MEMBRANE_HTTP=:8080", "MEMBRANE_TOKEN=t", "HOME=/h"}, false, true)
	want := []string{"PATH=/bin", "HOME=/h", "MEMBRANE_LOG_LEVEL=warn", "NO_COLOR=1"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %v, want %v", got, want)
	}
	got = childEnv([]string{"MEMBRANE_LOG_LEVEL=info"}, true, false)
	if !slices.Equal(got, []string{"MEMBRANE_LOG_LEVEL=info"}) {
		t.Errorf("a level the user set is kept: %v", got)
	}
}

// TestDefaultBaseURL: the default endpoint is OLLAMA_HOST's /v1, read as
// membrane reads its Ollama hosts.
func TestDefaultBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"":            "http://127.0.0.1:11434/v1",
		"myhost:1234": "http://myhost:1234/v1",
		"myhost":      "http://myhost:11434/v1",
	} {
		t.Setenv("OLLAMA_HOST", in)
		if got := defaultBaseURL(); got != want {
			t.Errorf("OLLAMA_HOST=%q: %s, want %s", in, got, want)
		}
	}
}

// --agent NAME takes the agent's settings where no flag or variable gave
// one; a flag given still wins.
func TestUseAgent(t *testing.T) {
	f := filepath.Join(t.TempDir(), "agents.yaml")
	os.WriteFile(f, []byte(`agents:
  - name: coder
    model: qwen3:0.6b
    system: be terse
    tools: [sh]
    max_steps: 3
    timeout: 30s
    approve: [sh]
    unattended: allow
    extract_text_calls: false
`), 0o600)
	load := func(args ...string) (*Config, error) {
		cfg, set, err := parseConfig(args, envOf(nil))
		if err != nil {
			return nil, err
		}
		specs, _, err := cfg.loadAgents()
		if err != nil {
			return nil, err
		}
		return cfg, cfg.useAgent(set, specs)
	}
	cfg, err := load("--agents", f, "--agent", "coder")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model != "qwen3:0.6b" || cfg.System != "be terse" || len(cfg.Tools) != 1 || cfg.MaxSteps != 3 || cfg.Timeout != 30*time.Second ||
		len(cfg.Approve) != 1 || !cfg.Yes || cfg.extractText() {
		t.Errorf("the agent's settings were not taken: %+v", cfg)
	}
	cfg, err = load("--agents", f, "--agent", "coder", "--model", "other", "--max-steps", "7")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model != "other" || cfg.MaxSteps != 7 || cfg.System != "be terse" {
		t.Errorf("flags must win over the agent: %+v", cfg)
	}
	if _, err := load("--agents", f, "--agent", "codr"); err == nil || !strings.Contains(err.Error(), "did you mean coder?") || !strings.Contains(err.Error(), "--agent") {
		t.Errorf("unknown agent: %v", err)
	}
	if _, err := load("--agent", "coder"); err == nil || !strings.Contains(err.Error(), "needs --agents") {
		t.Errorf("--agent without --agents: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("agents:\n  - {name: x}\n"), 0o600)
	if _, err := load("--agents", bad); err == nil || !strings.Contains(err.Error(), "--agents "+bad) || !strings.Contains(err.Error(), "model: missing") {
		t.Errorf("bad agents file: %v", err)
	}
}
