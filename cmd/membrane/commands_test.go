package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
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
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			srv := v.Start(t)
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
		})
	}
}

// hangingHost is an "Ollama" that accepts connections and never answers,
// so that a listing is still running when membrane stops.
func hangingHost(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestNoFalseHostDown: stopping while a listing runs (a busy port, stdin
// closed at once) is not news about the Ollama server; the busy port says
// what to do.
func TestNoFalseHostDown(t *testing.T) {
	bin := binary(t)
	t.Parallel()
	host := hangingHost(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cmd := exec.Command(bin, "--ollama-host", host, "--http", busy.Addr().String())
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TMPDIR="+privateTmp(t))
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "ADDR=HOST:PORT make run") || !strings.Contains(string(out), "already listens") {
		t.Errorf("busy port: exit %d:\n%s", cmd.ProcessState.ExitCode(), out)
	}
	if strings.Contains(string(out), "host down") || strings.Contains(string(out), "context canceled") {
		t.Errorf("busy port logs a false warning:\n%s", out)
	}

	cmd = exec.Command(bin, "--ollama-host", host)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TMPDIR="+privateTmp(t))
	cmd.Stdin = strings.NewReader("")
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 0 || strings.Contains(string(out), "host down") || strings.Contains(string(out), "context canceled") {
		t.Errorf("stdin EOF: exit %d:\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

// TestMissingModelLogged: a logical tool whose model no host has is said
// once in the log, not silently absent.
func TestMissingModelLogged(t *testing.T) {
	bin := binary(t)
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			srv := v.Start(t)
			cfg := writeFile(t, "membrane.yaml", "ollama:\n  tools:\n    - tool: helper\n      model: not-pulled:1b\n")
			cmd := exec.Command(bin, "--config", cfg, "--ollama-host", srv.URL, "--ollama-refresh", "100ms")
			cmd.Env = append(os.Environ(), "NO_COLOR=1", "TMPDIR="+privateTmp(t))
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var logs mcptest.SyncBuffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			const line = "no host has its model"
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(logs.String(), line) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			// Several refreshes later, still said once.
			for n := strings.Count(logs.String(), "ollama host up"); n == 0 && time.Now().Before(deadline); n = strings.Count(logs.String(), "ollama host up") {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // several refresh intervals, to see the line is not repeated
			stdin.Close()
			cmd.Wait()
			got := logs.String()
			if n := strings.Count(got, line); n != 1 || !strings.Contains(got, "not-pulled:1b") || !strings.Contains(got, "tool=helper") {
				t.Errorf("%q logged %d times, want once with the tool and model:\n%s", line, n, got)
			}
		})
	}
}
