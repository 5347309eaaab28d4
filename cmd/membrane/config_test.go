package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/cmd/internal/settings/settingstest"
	"github.com/membrane-mcp/membrane/ollama"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig("membrane", nil, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "" || cfg.SandboxMode != "bwrap" || cfg.Log.Level != "info" || cfg.Ollama.Hosts != nil {
		t.Errorf("defaults = %+v", cfg)
	}
	sc := cfg.sandboxConfig()
	if sc.Timeout != 30*time.Second || sc.MemoryBytes != 1<<30 || sc.Network {
		t.Errorf("sandbox defaults = %+v", sc)
	}
}

// TestConfigPrecedence checks flags > env > file > defaults, for a plain
// value, a list and a bool.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "membrane.yaml", `
log:
  level: warn
sandbox:
  memory: 256MiB
  timeout: 10s
  procs: 7
  network: true
ollama:
  hosts: [file-host:11434]
  tools:
    - tool: summarize
      model: qwen3:0.6b
      system: Summarize.
      options: {temperature: 0}
http:
  max_body: 1MiB
`)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want func(c *Config) string
		is   string
	}{
		{"file over default", nil, nil, func(c *Config) string { return settings.FormatSize(c.Sandbox.MemoryBytes) }, "256MiB"},
		{"env over file", nil, map[string]string{"MEMBRANE_MEMORY": "512MiB"}, func(c *Config) string { return settings.FormatSize(c.Sandbox.MemoryBytes) }, "512MiB"},
		{"flag over env", []string{"--memory", "2GiB"}, map[string]string{"MEMBRANE_MEMORY": "512MiB"}, func(c *Config) string { return settings.FormatSize(c.Sandbox.MemoryBytes) }, "2GiB"},
		{"file list", nil, nil, func(c *Config) string { return strings.Join(c.Ollama.Hosts, ",") }, "file-host:11434"},
		{"env list replaces", nil, map[string]string{"MEMBRANE_OLLAMA_HOSTS": "a:1, b:2"}, func(c *Config) string { return strings.Join(c.Ollama.Hosts, ",") }, "a:1,b:2"},
		{"flags list replaces", []string{"--ollama-host", "c:3", "--ollama-host=d:4"}, map[string]string{"MEMBRANE_OLLAMA_HOSTS": "a:1"}, func(c *Config) string { return strings.Join(c.Ollama.Hosts, ",") }, "c:3,d:4"},
		{"file bool", nil, nil, func(c *Config) string { return boolStr(c.Sandbox.Network) }, "true"},
		{"env bool", nil, map[string]string{"MEMBRANE_SANDBOX_NETWORK": "false"}, func(c *Config) string { return boolStr(c.Sandbox.Network) }, "false"},
		{"flag bool", []string{"--sandbox-network=false"}, map[string]string{"MEMBRANE_SANDBOX_NETWORK": "true"}, func(c *Config) string { return boolStr(c.Sandbox.Network) }, "false"},
		{"duration", []string{"--timeout", "45"}, nil, func(c *Config) string { return c.Sandbox.Timeout.String() }, "45s"},
		{"tools from file", nil, nil, func(c *Config) string {
			s := c.Ollama.Tools[0]
			return s.Tool + "/" + s.Model + "/" + s.System
		}, "summarize/qwen3:0.6b/Summarize."},
		{"file http", nil, nil, func(c *Config) string { return settings.FormatSize(c.HTTP.MaxBody) }, "1MiB"},
		{"config from env", nil, map[string]string{"MEMBRANE_LOG_LEVEL": "debug"}, func(c *Config) string { return c.Log.Level }, "debug"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--config", file}, tc.args...)
			cfg, err := loadConfig("membrane", args, env(tc.env), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.want(cfg); got != tc.is {
				t.Errorf("got %q, want %q", got, tc.is)
			}
		})
	}
	// MEMBRANE_CONFIG names the file when --config does not.
	cfg, err := loadConfig("membrane", nil, env(map[string]string{"MEMBRANE_CONFIG": file}), nil)
	if err != nil || cfg.Log.Level != "warn" {
		t.Errorf("MEMBRANE_CONFIG: %v %v", cfg, err)
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestConfigJSON(t *testing.T) {
	file := writeFile(t, "membrane.json", `{
	"sandbox": {"mode": "rlimit", "memory": 1048576, "timeout": 5},
	"ollama": {"tools": [{"tool": "t1", "model": "m"}]}
}`)
	cfg, err := loadConfig("membrane", []string{"--config", file}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SandboxMode != "rlimit" || cfg.Sandbox.MemoryBytes != 1<<20 || cfg.Sandbox.Timeout != 5*time.Second || cfg.Ollama.Tools[0].Tool != "t1" {
		t.Errorf("json config = %+v", cfg)
	}
}

// TestConfigErrors checks that each bad value is a startup error naming the
// setting.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{"unknown flag", []string{"--nope"}, nil, "", "-nope"},
		{"stray argument", []string{"serve"}, nil, "", `"serve"`},
		{"bad size flag", []string{"--memory", "lots"}, nil, "", "--memory"},
		{"bad size env", nil, map[string]string{"MEMBRANE_MEMORY": "-1"}, "", "MEMBRANE_MEMORY"},
		{"bad duration", []string{"--timeout", "soon"}, nil, "", "--timeout"},
		{"zero timeout", []string{"--timeout", "0"}, nil, "", "--timeout"},
		{"timeout over max", []string{"--timeout", "10m"}, nil, "", "--max-timeout"},
		{"bad int", []string{"--procs", "many"}, nil, "", "--procs"},
		{"zero procs", []string{"--procs", "0"}, nil, "", "--procs"},
		{"bad bool env", nil, map[string]string{"MEMBRANE_STATELESS": "maybe"}, "", "MEMBRANE_STATELESS"},
		{"bad mode", []string{"--sandbox", "docker"}, nil, "", "--sandbox"},
		{"bad level", []string{"--log-level", "loud"}, nil, "", "--log-level"},
		{"bad format", []string{"--log-format", "xml"}, nil, "", "--log-format"},
		{"bad workspace", []string{"--workspace", "/no/such/dir"}, nil, "", "--workspace"},
		{"bad python", []string{"--python", "/no/such/python"}, nil, "", "--python"},
		{"bad ollama host", []string{"--ollama-host", "ftp://x"}, nil, "", "--ollama-host"},
		{"zero max sessions", []string{"--max-sessions", "0"}, nil, "", "--max-sessions"},
		{"bad idle timeout", []string{"--idle-timeout", "0s"}, nil, "", "--idle-timeout"},
		{"bad origin", []string{"--allowed-origin", "example.com"}, nil, "", "--allowed-origin"},
		{"public bind without token", []string{"--http", "0.0.0.0:8765"}, nil, "", "without a token"},
		{"public bind names the token flags", []string{"--http", "0.0.0.0:8765"}, nil, "", "set --token"},
		{"public metrics without token", []string{"--metrics-addr", "0.0.0.0:9464"}, nil, "", "refusing to serve metrics"},
		{"token and token file", []string{"--token", "a", "--token-file", "/etc/hostname"}, nil, "", "--token-file"},
		{"missing token file", []string{"--token-file", "/no/such/token"}, nil, "", "--token-file"},
		{"unknown file key", nil, nil, "sandbox:\n  memroy: 1GiB\n", "memroy"},
		{"bad file value", nil, nil, "sandbox:\n  memory: lots\n", "line 2"},
		{"bad file syntax", nil, nil, "sandbox: [\n", "config file"},
		{"bad file tool name", nil, nil, "ollama:\n  tools:\n    - tool: has space\n      model: m\n", "ollama.tools"},
		{"file tool without model", nil, nil, "ollama:\n  tools:\n    - tool: t\n", "model is empty"},
		{"duplicate tool", nil, nil, "ollama:\n  tools:\n    - {tool: t, model: m}\n    - {tool: t, model: m}\n", "defined twice"},
		{"two documents", nil, nil, "log: {level: info}\n---\nlog: {level: debug}\n", "more than one"},
		{"bad json", nil, nil, `{"sandbox": {"memory": "x"}}`, "memory"},
		{"json unknown key", nil, nil, `{"sandbx": {}}`, "sandbx"},
		{"missing config file", []string{"--config", "/no/such/membrane.yaml"}, nil, "", "config file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, "c.yaml", tc.file)}, args...)
			}
			_, err := loadConfig("membrane", args, env(tc.env), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestOllamaHostPassword: a host with user:password@ is accepted, and a
// bad one is refused without printing the password.
func TestOllamaHostPassword(t *testing.T) {
	cfg, err := loadConfig("membrane", []string{"--ollama-host", "https://alice:hunter2@ollama.example:443"}, env(nil), nil)
	if err != nil || len(cfg.Ollama.Hosts) != 1 {
		t.Fatalf("a host with a password: %v", err)
	}
	_, err = loadConfig("membrane", []string{"--ollama-host", "https://alice:hunter2@ollama.example:99999"}, env(nil), nil)
	if err == nil || !strings.Contains(err.Error(), "--ollama-host") || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "alice:xxxxx@") {
		t.Errorf("a bad host with a password: %v", err)
	}
}

func TestTokenFile(t *testing.T) {
	tok := writeFile(t, "token", "  s3cret\n")
	cfg, err := loadConfig("membrane", []string{"--http", "0.0.0.0:0", "--token-file", tok}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Token != "s3cret" {
		t.Errorf("token = %q", cfg.HTTP.Token)
	}
	// A relative token_file in the config file is relative to that file.
	dir := filepath.Dir(tok)
	conf := filepath.Join(dir, "m.yaml")
	os.WriteFile(conf, []byte("http:\n  token_file: token\n"), 0o600)
	cfg, err = loadConfig("membrane", []string{"--config", conf}, env(nil), nil)
	if err != nil || cfg.HTTP.Token != "s3cret" {
		t.Errorf("relative token file: %q %v", cfg.HTTP.Token, err)
	}
}

// TestEverySetting sets each setting by its flag, its variable and its
// file key, and checks that a bad value of each is refused by name.
func TestEverySetting(t *testing.T) {
	dir := t.TempDir()
	settingstest.Run(t, settingstest.Program{
		New: func() *settings.Set { return define("membrane", &Config{}) },
		Good: map[string]string{
			"config": filepath.Join(dir, "m.yaml"), "http": "127.0.0.1:0", "log-level": "debug", "log-format": "json",
			"sandbox": "rlimit", "workspace": dir, "python": "/bin/sh", "allowed-origin": "https://app.example",
			"ollama-host": "gpu-box:11434", "metrics-addr": "127.0.0.1:0", "ollama.tools": "[{tool: t, model: m, timeout: 30}]", "output-limit": "2MiB",
			"tokens-file": writeFile(t, "tokens.json", `{"tokens":[{"name":"a","token":"a-token-0123456789ab"}]}`),
			"tools":       "ollama_*", "exclude-tools": "sh", "rate-limit": "sh=10/min:3", "model-tools": "generic",
			"http-get-allow": "docs.python.org", "scrub-output": "false", "secret-env": "DEPLOY_KEY", "lens": "off", "http_get.headers": "[{for: x.com, name: A, value: b}]",
			"context-budget": "2GiB", "ollama.num_ctx": "{qwen3: 8192}",
			"openai-backend": "vllm=http://gpu1:8000/v1", "openai.backends": "[{name: lms, url: 'http://127.0.0.1:1234/v1', models: {'*': {vision: true}}}]",
			"agents":      writeFile(t, "agents.yaml", "agents: [{name: coder, model: qwen3:0.6b}]"),
			"agent-depth": "2", "capabilities-card": "on", "capabilities-card-tokens": "300",
		},
		Bad: map[string]string{
			"token": "has space", "allowed-origin": "app.example", "log-level": "loud", "log-format": "xml",
			"sandbox": "docker", "workspace": "/no/such/dir", "python": "/no/such/python", "ollama-host": "ftp://x",
			"procs": "0", "timeout": "-5s", "metrics-addr": "no-port",
			"tools": "[oops", "exclude-tools": "[oops", "rate-limit": "sh=0/min", "secret-env": "1BAD-NAME",
			"model-tools": "all", "http-get-allow": "example.com/path", "lens": "sometimes",
			"openai-backend": "http://gpu1:8000/v1", "openai.backends": "[{name: Bad, url: x}]",
			"context-budget": "-1", "ollama.num_ctx": "{qwen3: 10}",
			"agent-depth":       "0",
			"capabilities-card": "maybe", "capabilities-card-tokens": "0",
		},
		NoBad: []string{"config", "http", "token-file", "tokens-file", "allowed-host", "audit-log", "store", "agents"},
	})
}

func TestHelpListsEverySetting(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, env(nil), nil, &out, &errb); code != 0 {
		t.Fatalf("--help: exit %d, %s", code, errb.String())
	}
	settingstest.Help(t, define("membrane", &Config{}), out.String())
	for _, want := range []string{"highest first", "OLLAMA_HOST", "doctor", "a bare number is seconds"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help misses %q", want)
		}
	}
}

// A bare number is seconds in every section: the sandbox's, the ollama
// section's and a logical tool's timeout.
func TestBareSecondsEverywhere(t *testing.T) {
	file := writeFile(t, "m.yaml", "sandbox: {timeout: 30}\nollama:\n  call_timeout: 30\n  tools: [{tool: t, model: m, timeout: 30}]\nhttp: {session_idle_timeout: 30}\n")
	cfg, err := loadConfig("membrane", []string{"--config", file}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	for what, d := range map[string]time.Duration{"sandbox.timeout": cfg.Sandbox.Timeout, "ollama.call_timeout": cfg.Ollama.CallTimeout,
		"tool timeout": time.Duration(cfg.Ollama.Tools[0].Timeout), "http.session_idle_timeout": cfg.HTTP.SessionIdleTimeout} {
		if d != 30*time.Second {
			t.Errorf("%s: 30 read as %v, want 30s", what, d)
		}
	}
}

// FuzzConfigFile feeds arbitrary bytes to the config file. Whatever is
// accepted must pass every check again when written back out and read
// (a round trip that changes nothing).
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"", "{}", "sandbox:\n  memory: 1GiB\n", `{"http":{"addr":"127.0.0.1:1"}}`,
		"ollama:\n  tools:\n    - {tool: t, model: m, options: {temperature: 0.1}, timeout: 30}\n",
		"log: [", "a: &a [*a, *a]", "sandbox: {timeout: 1e400}", "http: {max_body: 99999999999999999999}",
		"ollama: {hosts: a:1}", "sandbox: {timeout: 10m}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(string) ([]byte, error) { return data, nil }
		cfg, err := loadConfig("membrane", []string{"--config", "f.yaml"}, env(nil), read)
		if err != nil {
			if cfg == nil || err.Error() == "" {
				t.Fatalf("refused without a message: %v", err)
			}
			return
		}
		if err := ollama.ValidateTools(cfg.Ollama.Tools); err != nil {
			t.Fatalf("accepted tools that fail their check: %v", err)
		}
		if cfg.HTTP.TokenFile != "" {
			return // the token read from it is not a file setting
		}
		out, err := cfg.set.Encode()
		if err != nil {
			t.Fatalf("encode an accepted config: %v", err)
		}
		again, err := loadConfig("membrane", []string{"--config", "f.yaml"}, env(nil), func(string) ([]byte, error) { return out, nil })
		if err != nil {
			t.Fatalf("accepted %q, but not its own encoding %q: %v", data, out, err)
		}
		out2, _ := again.set.Encode()
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\n%s\n---\n%s", out, out2)
		}
	})
}

// FuzzFlagValues feeds arbitrary strings to every setting as a flag: what
// is accepted reads back the same from its own text.
func FuzzFlagValues(f *testing.F) {
	for _, s := range []string{"", "1", "1GiB", "30s", "true", "http://h:1", "a,b", "\x00", "-1", "1e309", "0.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, x := range define("membrane", &Config{}).All() {
			if x.Flag == "" || x.Kind == settings.KindList {
				continue
			}
			s := define("membrane", &Config{})
			if err := s.Load([]string{x.FlagName() + "=" + v}, env(nil), nil); err != nil {
				continue
			}
			text := s.Lookup(x.Flag).Value()
			s2 := define("membrane", &Config{})
			if err := s2.Load([]string{x.FlagName() + "=" + text}, env(nil), nil); err != nil {
				t.Fatalf("%s: accepted %q but not its own text %q: %v", x.FlagName(), v, text, err)
			}
			if again := s2.Lookup(x.Flag).Value(); again != text {
				t.Fatalf("%s: %q reads back as %q, then %q", x.FlagName(), v, text, again)
			}
		}
	})
}

// The config file and the token file hold membrane's secrets: the sandbox
// must be told to hide them.
func TestSandboxHidesSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "membrane.yaml")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("log: {level: warn}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig("membrane", []string{"--config", file, "--token-file", token}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.sandboxConfig().Hide
	if !slices.Contains(got, file) || !slices.Contains(got, token) {
		t.Errorf("sandbox Hide = %q, want both %q and %q", got, file, token)
	}
	cfg, err = loadConfig("membrane", nil, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.sandboxConfig().Hide; len(got) != 0 {
		t.Errorf("with no config or token file, Hide = %q, want none", got)
	}
}

func TestOpenAIBackendsMerge(t *testing.T) {
	file := writeFile(t, "m.yaml", `openai:
  backends:
    - name: vllm
      url: http://old:8000/v1
      models: {"*": {vision: true}}
    - name: lms
      url: http://127.0.0.1:1234/v1
`)
	cfg, err := loadConfig("membrane", []string{"--config", file, "--openai-backend", "vllm=http://gpu1:8000/v1,key-env=VLLM_KEY", "--openai-backend", "lite=http://proxy:4000"}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	bs := cfg.ollamaConfig().Backends
	if len(bs) != 3 {
		t.Fatalf("backends: %+v", bs)
	}
	if b := bs[0]; b.Name != "vllm" || b.URL != "http://gpu1:8000/v1" || b.KeyEnv != "VLLM_KEY" || !b.Models["*"].Vision {
		t.Errorf("the flag did not take over the file's vllm keeping its models: %+v", b)
	}
	if bs[1].Name != "lms" || bs[2].Name != "lite" {
		t.Errorf("order or names: %+v", bs)
	}
	// Two flags of one name both land, and the pair is refused.
	cfg, err = loadConfig("membrane", []string{"--openai-backend", "vllm=http://a:1/v1", "--openai-backend", "vllm=http://b:1/v1"}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ollama.ValidateBackends(cfg.ollamaConfig().Backends); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("two backends named vllm: %v", err)
	}
}

// TestOpenAIBackendsFromEnv: MEMBRANE_OPENAI_BACKENDS takes backends with
// their keys, as a compose file's environment gives them (the comma before
// key-env= is part of the backend, not a separator), by spaces or commas.
func TestOpenAIBackendsFromEnv(t *testing.T) {
	for _, v := range []string{
		"vllm=http://gpu1:8000/v1,key-env=VLLM_KEY lms=http://127.0.0.1:1234/v1,key-file=/run/secrets/lms lite=http://proxy:4000",
		"vllm=http://gpu1:8000/v1,key-env=VLLM_KEY,lms=http://127.0.0.1:1234/v1,key-file=/run/secrets/lms,lite=http://proxy:4000",
		"  vllm=http://gpu1:8000/v1,key-env=VLLM_KEY\n lms=http://127.0.0.1:1234/v1,key-file=/run/secrets/lms,\n lite=http://proxy:4000 ",
	} {
		cfg, err := loadConfig("membrane", nil, env(map[string]string{"MEMBRANE_OPENAI_BACKENDS": v}), nil)
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		bs := cfg.ollamaConfig().Backends
		if len(bs) != 3 || bs[0].Name != "vllm" || bs[0].KeyEnv != "VLLM_KEY" || bs[1].Name != "lms" || bs[1].KeyFile != "/run/secrets/lms" ||
			bs[2].Name != "lite" || bs[2].KeyEnv != "" || bs[2].KeyFile != "" {
			t.Errorf("%q: backends %+v", v, bs)
		}
	}
	// The control: a bad entry is still refused, naming the variable.
	_, err := loadConfig("membrane", nil, env(map[string]string{"MEMBRANE_OPENAI_BACKENDS": "vllm=http://gpu1:8000/v1,token=abc"}), nil)
	if err == nil || !strings.Contains(err.Error(), "MEMBRANE_OPENAI_BACKENDS") || !strings.Contains(err.Error(), "unknown part") {
		t.Errorf("a bad backend in the variable: %v", err)
	}
}
