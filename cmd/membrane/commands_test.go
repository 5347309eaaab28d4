package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// The subcommands, each through the built binary as a new user runs it.

func runBin(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "MEMBRANE_CONFIG=", "MEMBRANE_SANDBOX=")
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

func TestSubcommandHelp(t *testing.T) {
	bin := binary(t)
	t.Parallel()
	out, _, code := runBin(t, bin, "doctor", "--help")
	if code != 0 || strings.Contains(out, "doctor doctor") || !strings.HasPrefix(out, "membrane doctor checks") || !strings.Contains(out, "--json") {
		t.Errorf("doctor --help (exit %d):\n%s", code, out)
	}
	// The server's own help lists the subcommands.
	out, _, _ = runBin(t, bin, "--help")
	for _, want := range []string{"membrane doctor", "membrane version", "membrane completion bash|zsh|fish", "membrane config claude-desktop|cursor|vscode"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestVersionSubcommand(t *testing.T) {
	bin := binary(t)
	t.Parallel()
	a, _, code1 := runBin(t, bin, "version")
	b, _, code2 := runBin(t, bin, "--version")
	if code1 != 0 || code2 != 0 || a != b || !strings.HasPrefix(a, "membrane ") || strings.TrimSpace(a) == "membrane" {
		t.Errorf("version = %q (exit %d), --version = %q (exit %d)", a, code1, b, code2)
	}
}

func TestFlagsBeforeSubcommand(t *testing.T) {
	bin := binary(t)
	t.Parallel()
	cfg := writeFile(t, "membrane.yaml", "ollama:\n  hosts: [\"127.0.0.1:1\"]\n")
	for _, args := range [][]string{
		{"--config", cfg, "doctor", "--json"},
		{"doctor", "--config", cfg, "--json"},
		{"--config=" + cfg, "--log-level", "warn", "doctor", "--json"},
	} {
		out, stderr, code := runBin(t, bin, args...)
		var doc struct {
			OK     bool
			Checks []struct{ Name, Status, Detail, Fix string }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v: not JSON (%v): %s %s", args, err, out, stderr)
		}
		// The config file was read: its host is the one checked.
		found := false
		for _, c := range doc.Checks {
			if c.Name == "ollama http://127.0.0.1:1" && c.Status == "fail" && c.Fix != "" {
				found = true
			}
		}
		if !found || doc.OK || code != 1 {
			t.Errorf("%v: exit %d, ok %v, checks %+v", args, code, doc.OK, doc.Checks)
		}
	}
	// An unknown subcommand-like word is still an error, not a server.
	_, stderr, code := runBin(t, bin, "--log-level", "warn", "doctorr")
	if code != 2 || !strings.Contains(stderr, `unexpected argument "doctorr"`) {
		t.Errorf("doctorr: exit %d, %s", code, stderr)
	}
}

func TestCompletion(t *testing.T) {
	bin := binary(t)
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, _, code := runBin(t, bin, "completion", shell)
		if code != 0 {
			t.Fatalf("completion %s: exit %d", shell, code)
		}
		// Every flag is in it, from the settings list.
		for _, x := range define("membrane", &Config{}).All() {
			want := x.FlagName()
			if shell == "fish" {
				want = "-l " + x.Flag
			}
			if x.Flag != "" && !strings.Contains(out, want) {
				t.Errorf("%s completion lacks %s", shell, want)
			}
		}
		if !strings.Contains(out, "doctor") || !strings.Contains(out, "completion") {
			t.Errorf("%s completion lacks the subcommands", shell)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		out, _, _ := runBin(t, bin, "completion", "bash")
		script := filepath.Join(t.TempDir(), "c.bash")
		os.WriteFile(script, []byte(out+"\nCOMP_WORDS=(membrane --ollama-h); COMP_CWORD=1; _membrane; echo \"${COMPREPLY[@]}\"\n"), 0o644)
		got, err := exec.Command(bash, "--norc", script).Output()
		if err != nil || strings.TrimSpace(string(got)) != "--ollama-host" {
			t.Errorf("bash completes --ollama-h to %q (%v)", got, err)
		}
	}
	_, stderr, code := runBin(t, bin, "completion", "tcsh")
	if code != 2 || !strings.Contains(stderr, "bash, zsh, fish") {
		t.Errorf("completion tcsh: exit %d, %s", code, stderr)
	}
}

func TestClientConfig(t *testing.T) {
	bin := binary(t)
	t.Parallel()
	abs, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	for client, top := range map[string]string{"claude-desktop": "mcpServers", "cursor": "mcpServers", "vscode": "servers"} {
		out, stderr, code := runBin(t, bin, "config", client, "--ollama-host", "127.0.0.1:1")
		var doc map[string]map[string]struct {
			Command string
			Args    []string
			Type    string
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
			t.Fatalf("config %s: exit %d, %v: %s %s", client, code, err, out, stderr)
		}
		e, ok := doc[top]["membrane"]
		if !ok || e.Command != abs || !filepath.IsAbs(e.Command) || strings.Join(e.Args, " ") != "--ollama-host 127.0.0.1:1" {
			t.Errorf("config %s = %s", client, out)
		}
		if (client == "vscode") != (e.Type == "stdio") {
			t.Errorf("config %s: type %q", client, e.Type)
		}
	}
	_, stderr, code := runBin(t, bin, "config", "emacs")
	if code != 2 || !strings.Contains(stderr, "claude-desktop") {
		t.Errorf("config emacs: exit %d, %s", code, stderr)
	}
}

// TestDoctorChecksLogicalTools is the README's own example: num_ctx 8192
// on a model of 2048 tokens fails in doctor, not at the first call.
func TestDoctorChecksLogicalTools(t *testing.T) {
	bin := binary(t)
	srv := ollamatest.Start(t)
	srv.Create(t, "doc-tiny", ollamatest.ChatModel())
	cfg := writeFile(t, "membrane.yaml", `ollama:
  hosts: ["`+srv.URL+`"]
  tools:
    - tool: fits
      model: doc-tiny
      options: {num_ctx: 1024}
    - tool: too_big
      model: doc-tiny
      options: {num_ctx: 8192}
    - tool: absent
      model: no-such-model
`)
	out, _, code := runBin(t, bin, "doctor", "--json", "--config", cfg)
	var doc struct {
		Checks []struct{ Name, Status, Detail, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := map[string]string{}
	for _, c := range doc.Checks {
		got[c.Name] = c.Status + ": " + c.Detail + " / " + c.Fix
	}
	want := map[string][]string{
		"tool fits":    {"ok: ", "doc-tiny", "2048"},
		"tool too_big": {"fail: ", "num_ctx 8192", "2048"},
		"tool absent":  {"warn: ", "no-such-model", "ollama pull no-such-model"},
	}
	for name, parts := range want {
		for _, p := range parts {
			if !strings.Contains(got[name], p) {
				t.Errorf("%s = %q, want %q in it", name, got[name], p)
			}
		}
	}
	if code != 1 {
		t.Errorf("doctor exit %d with a tool that cannot work, want 1", code)
	}
}
