package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	cfg, _, err := loadConfig("membrane", nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "" || cfg.Sandbox.Mode != "bwrap" || cfg.Log.Level != "info" || cfg.Ollama.Hosts != nil {
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
		{"file over default", nil, nil, func(c *Config) string { return c.Sandbox.Memory.String() }, "256MiB"},
		{"env over file", nil, map[string]string{"MEMBRANE_MEMORY": "512MiB"}, func(c *Config) string { return c.Sandbox.Memory.String() }, "512MiB"},
		{"flag over env", []string{"--memory", "2GiB"}, map[string]string{"MEMBRANE_MEMORY": "512MiB"}, func(c *Config) string { return c.Sandbox.Memory.String() }, "2GiB"},
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
		{"file http", nil, nil, func(c *Config) string { return c.HTTP.MaxBody.String() }, "1MiB"},
		{"config from env", nil, map[string]string{"MEMBRANE_LOG_LEVEL": "debug"}, func(c *Config) string { return c.Log.Level }, "debug"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--config", file}, tc.args...)
			cfg, _, err := loadConfig("membrane", args, env(tc.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.want(cfg); got != tc.is {
				t.Errorf("got %q, want %q", got, tc.is)
			}
		})
	}
	// MEMBRANE_CONFIG names the file when --config does not.
	cfg, _, err := loadConfig("membrane", nil, env(map[string]string{"MEMBRANE_CONFIG": file}), &bytes.Buffer{})
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
	cfg, _, err := loadConfig("membrane", []string{"--config", file}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sandbox.Mode != "rlimit" || cfg.Sandbox.Memory != 1<<20 || time.Duration(cfg.Sandbox.Timeout) != 5*time.Second || cfg.Ollama.Tools[0].Tool != "t1" {
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
			_, _, err := loadConfig("membrane", args, env(tc.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestOllamaHostPassword: a host with user:password@ is accepted, and a
// bad one is refused without printing the password.
func TestOllamaHostPassword(t *testing.T) {
	cfg, _, err := loadConfig("membrane", []string{"--ollama-host", "https://alice:hunter2@ollama.example:443"}, env(nil), &bytes.Buffer{})
	if err != nil || len(cfg.Ollama.Hosts) != 1 {
		t.Fatalf("a host with a password: %v", err)
	}
	_, _, err = loadConfig("membrane", []string{"--ollama-host", "https://alice:hunter2@ollama.example:99999"}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--ollama-host") || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "alice:xxxxx@") {
		t.Errorf("a bad host with a password: %v", err)
	}
}

func TestTokenFile(t *testing.T) {
	tok := writeFile(t, "token", "  s3cret\n")
	cfg, _, err := loadConfig("membrane", []string{"--http", "0.0.0.0:0", "--token-file", tok}, env(nil), &bytes.Buffer{})
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
	cfg, _, err = loadConfig("membrane", []string{"--config", conf}, env(nil), &bytes.Buffer{})
	if err != nil || cfg.HTTP.Token != "s3cret" {
		t.Errorf("relative token file: %q %v", cfg.HTTP.Token, err)
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, _, err := loadConfig("membrane", []string{"--help"}, env(nil), &out)
	if err != errHelp {
		t.Fatalf("err = %v", err)
	}
	for _, s := range settings() {
		if !strings.Contains(out.String(), "--"+s.flag) || !strings.Contains(out.String(), s.env) {
			t.Errorf("--help misses --%s or %s", s.flag, s.env)
		}
	}
	for _, want := range []string{"MEMBRANE_CONFIG", "highest first", "OLLAMA_HOST", "doctor"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help misses %q", want)
		}
	}
}

func TestSizesAndDurations(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "1KiB": 1024, "1k": 1024, "2MiB": 2 << 20, "1.5GiB": 3 << 29, "1MB": 1e6, " 8 mib ": 8 << 20, "0": 0} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err != nil || int64(s) != want {
			t.Errorf("size %q = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1XB", "1e30", "MiB", "NaN"} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("size %q accepted as %d", in, s)
		}
	}
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "1m30s": 90 * time.Second, "2": 2 * time.Second, "0.5": 500 * time.Millisecond} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || time.Duration(d) != want {
			t.Errorf("duration %q = %v, %v", in, d, err)
		}
	}
	for _, in := range []string{"", "soon", "-5s", "-1", "1e12"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("duration %q accepted as %v", in, d)
		}
	}
}

// FuzzConfigFile feeds arbitrary bytes to the config file decoder: it must
// never panic, and what it accepts must survive the checks without panic.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"", "{}", "sandbox:\n  memory: 1GiB\n", `{"http":{"addr":"127.0.0.1:1"}}`,
		"ollama:\n  tools:\n    - {tool: t, model: m, options: {temperature: 0.1}}\n",
		"log: [", "a: &a [*a, *a]", "sandbox: {timeout: 1e400}", "http: {max_body: 99999999999999999999}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := defaults()
		if err := decodeConfig(data, &cfg); err != nil {
			return
		}
		_ = cfg.finish()
		_ = cfg.sandboxConfig()
		_ = cfg.ollamaConfig()
	})
}

// FuzzFlagValues feeds arbitrary strings to every setting, as a flag or an
// environment variable would.
func FuzzFlagValues(f *testing.F) {
	for _, s := range []string{"", "1", "1GiB", "30s", "true", "http://h:1", "a,b", "\x00", "-1", "1e309"} {
		f.Add(s)
	}
	ss := settings()
	f.Fuzz(func(t *testing.T, v string) {
		for _, s := range ss {
			cfg := defaults()
			_ = s.set(&cfg, v)
			_ = s.get(&cfg)
		}
	})
}

type fakeTools struct {
	mu   sync.Mutex
	sets [][]ollama.ToolSpec
}

func (f *fakeTools) SetTools(specs []ollama.ToolSpec) {
	f.mu.Lock()
	f.sets = append(f.sets, specs)
	f.mu.Unlock()
}

func (f *fakeTools) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sets)
}

// TestWatchConfig checks that a changed config file reloads the tools, and
// that a broken one is logged and ignored.
func TestWatchConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.yaml")
	write := func(s string, age time.Duration) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		// Distinct modification times even on coarse file systems.
		mt := time.Now().Add(age)
		os.Chtimes(path, mt, mt)
	}
	write("ollama:\n  tools: [{tool: a, model: m}]\n", -time.Hour)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	fake := &fakeTools{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		watchConfig(ctx, path, []ollama.ToolSpec{{Tool: "a", Model: "m"}}, fake, log, 5*time.Millisecond)
		close(done)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write("ollama:\n  tools: [{tool: a, model: m}, {tool: b, model: n}]\n", -time.Minute)
	waitFor("a reload", func() bool { return fake.count() == 1 })
	write("ollama:\n  tools: [{tool: 'bad name', model: m}]\n", -time.Second)
	waitFor("the bad tool to be refused", func() bool { return strings.Contains(logs.String(), "keeping the tools in use") })
	write("ollama: [\n", 0)
	waitFor("the broken file to be refused", func() bool { return strings.Count(logs.String(), "keeping the tools in use") >= 2 })
	cancel()
	<-done
	if fake.count() != 1 {
		t.Errorf("SetTools called %d times, want 1", fake.count())
	}
	if got := fake.sets[0]; len(got) != 2 || got[1].Tool != "b" {
		t.Errorf("reloaded tools = %+v", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
	cfg, _, err := loadConfig("membrane", []string{"--config", file, "--token-file", token}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.sandboxConfig().Hide
	if !slices.Contains(got, file) || !slices.Contains(got, token) {
		t.Errorf("sandbox Hide = %q, want both %q and %q", got, file, token)
	}
	cfg, _, err = loadConfig("membrane", nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.sandboxConfig().Hide; len(got) != 0 {
		t.Errorf("with no config or token file, Hide = %q, want none", got)
	}
}
