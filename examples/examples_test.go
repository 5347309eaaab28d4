package examples

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpServers is a Claude Desktop config file, decoded strictly: Claude
// Desktop wants string env values and nothing it does not know.
type mcpServers struct {
	MCPServers map[string]struct {
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Env     map[string]string `json:"env"`
	} `json:"mcpServers"`
}

func readConfig(t *testing.T, name string) mcpServers {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/claude-desktop", name))
	if err != nil {
		t.Fatal(err)
	}
	var c mcpServers
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(c.MCPServers) != 1 {
		t.Fatalf("%s: %d servers, want one entry to paste", name, len(c.MCPServers))
	}
	return c
}

// TestClaudeDesktopConfigs checks both entries against what Claude Desktop
// accepts, and that the README shows exactly the files.
func TestClaudeDesktopConfigs(t *testing.T) {
	stdio := readConfig(t, "claude_desktop_config.json").MCPServers["membrane"]
	if !filepath.IsAbs(stdio.Command) {
		t.Errorf("stdio command %q is not an absolute path (Claude Desktop does not search PATH)", stdio.Command)
	}
	if stdio.Env["OLLAMA_HOST"] == "" {
		t.Errorf("stdio entry does not set OLLAMA_HOST")
	}

	http := readConfig(t, "claude_desktop_config.http.json").MCPServers["membrane"]
	args := strings.Join(http.Args, " ")
	if !strings.Contains(args, "http://127.0.0.1:8765/mcp") {
		t.Errorf("HTTP entry args %q do not reach membrane's default endpoint", args)
	}
	if !regexp.MustCompile(`mcp-remote@\d+\.\d+\.\d+`).MatchString(args) {
		t.Errorf("HTTP entry args %q do not pin mcp-remote's version", args)
	}
	for _, a := range http.Args {
		if strings.Contains(a, " ") {
			t.Errorf("HTTP entry argument %q has a space (Claude Desktop on Windows splits it)", a)
		}
	}
	if !strings.HasPrefix(http.Env["MEMBRANE_AUTH_HEADER"], "Bearer ") || !strings.Contains(args, "Authorization:${MEMBRANE_AUTH_HEADER}") {
		t.Errorf("HTTP entry does not send Authorization: Bearer from its env")
	}
	// The version pinned here is the one CI runs.
	lock, err := os.ReadFile(filepath.Join(repoRoot(t), ".ci/clients/package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Dependencies map[string]string }
	if err := json.Unmarshal(lock, &pkg); err != nil {
		t.Fatal(err)
	}
	if want := "mcp-remote@" + pkg.Dependencies["mcp-remote"]; !slices.Contains(http.Args, want) {
		t.Errorf("HTTP entry args %q, want %s as .ci/clients pins it", http.Args, want)
	}

	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/claude-desktop/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"claude_desktop_config.json", "claude_desktop_config.http.json"} {
		file, _ := os.ReadFile(filepath.Join(repoRoot(t), "examples/claude-desktop", name))
		if !bytes.Contains(readme, bytes.TrimSpace(file)) {
			t.Errorf("README.md does not show %s exactly as the file has it", name)
		}
	}
}

// TestClaudeDesktopStdio launches the stdio entry exactly as Claude Desktop
// would (its args and env, a small environment of its own; only the
// command's path is this test's binary) with the Go MCP SDK's client, then
// lists and calls tools.
func TestClaudeDesktopStdio(t *testing.T) {
	needBwrap(t)
	entry := readConfig(t, "claude_desktop_config.json").MCPServers["membrane"]
	cmd := exec.Command(membraneBinary(t), entry.Args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir()}
	for k, v := range entry.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "claude-desktop-like", Version: "test"}, nil)
	cs, err := client.Connect(t.Context(), &sdk.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, nil)
	if err != nil {
		t.Fatalf("launch %v: %v\n%s", cmd.Args, err, stderr.String())
	}
	defer cs.Close()

	var names []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	for _, want := range []string{"sh", "python_run"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools %q lack %s", names, want)
		}
	}
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "echo hello from claude"}})
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); res.IsError || !strings.Contains(text, "hello from claude") {
		t.Errorf("sh: isError=%v text=%q", res.IsError, text)
	}
	if t.Failed() {
		t.Logf("membrane stderr:\n%s", stderr.String())
	}
}

func resultText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

var goClientBin struct {
	once sync.Once
	path string
	err  error
}

// buildGoClient builds examples/go-client once per test process.
func buildGoClient(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	goClientBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "membrane-go-client")
		if err != nil {
			goClientBin.err = err
			return
		}
		goClientBin.path = filepath.Join(dir, "go-client")
		cmd := exec.Command("go", "build", "-o", goClientBin.path, "./examples/go-client")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			goClientBin.err = errors.New(string(out))
		}
	})
	if goClientBin.err != nil {
		t.Fatalf("go build ./examples/go-client: %v", goClientBin.err)
	}
	return goClientBin.path
}

// TestGoClient builds examples/go-client and runs it as its README says,
// against a built membrane, over stdio and over HTTP with a token.
func TestGoClient(t *testing.T) {
	needBwrap(t)
	client := buildGoClient(t)
	mb := membraneBinary(t)
	srv := startMembraneHTTP(t, nil, "go-client-token")

	tests := []struct {
		name     string
		args     []string
		env      []string
		wantExit int
		want     []string // in stdout, or stderr when wantExit != 0
	}{
		{"stdio sh", []string{"-membrane", mb}, nil, 0,
			[]string{"server: membrane", "sh ", "python_run ", "hello from membrane"}},
		{"stdio python_run", []string{"-membrane", mb, "-tool", "python_run", "-args", `{"code": "print(6*7)"}`}, nil, 0,
			[]string{"python_run:\n", "42"}},
		{"stdio list only", []string{"-membrane", mb, "-tool", ""}, nil, 0,
			[]string{"tools:", "sh "}},
		{"tool error", []string{"-membrane", mb, "-args", `{"cmd": "echo oops >&2; exit 3"}`}, nil, 1,
			[]string{"sh reported an error", "oops"}},
		{"bad args", []string{"-membrane", mb, "-args", `{"cmd":`}, nil, 2,
			[]string{"-args must be a JSON object"}},
		{"membrane missing", []string{"-membrane", filepath.Join(t.TempDir(), "nope")}, nil, 2,
			[]string{"nope"}},
		{"http with token", []string{"-url", srv.URL}, []string{"MEMBRANE_TOKEN=go-client-token"}, 0,
			[]string{"server: membrane", "hello from membrane"}},
		{"http wrong token", []string{"-url", srv.URL, "-timeout", "20s"}, []string{"MEMBRANE_TOKEN=wrong"}, 2,
			[]string{"connect to membrane"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), client, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantExit, stdout.String(), stderr.String())
			}
			out := stdout.String()
			if tt.wantExit != 0 {
				out = stderr.String()
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestOpenAIAgentsPython compiles the Python example (the SDK itself cannot
// be installed here: no PyPI) and checks it uses both connectors.
func TestOpenAIAgentsPython(t *testing.T) {
	py := pythonBinary(t)
	file := filepath.Join(repoRoot(t), "examples/openai-agents-python/agent.py")
	cmd := exec.CommandContext(t.Context(), py, "-c", "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("py_compile %s: %v\n%s", file, err, out)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MCPServerStdio(", "MCPServerStreamableHttp(", "OpenAIChatCompletionsModel(", "Authorization"} {
		if !bytes.Contains(src, []byte(want)) {
			t.Errorf("agent.py does not use %s", want)
		}
	}
}

// TestOpenAIAgentsJSPackage: the example's package.json pins what CI runs.
func TestOpenAIAgentsJSPackage(t *testing.T) {
	var example, ci struct{ Dependencies map[string]string }
	for file, v := range map[string]any{"examples/openai-agents-js/package.json": &example, ".ci/clients/package.json": &ci} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), file))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if len(example.Dependencies) == 0 {
		t.Fatal("the example has no dependencies")
	}
	for name, v := range example.Dependencies {
		if ci.Dependencies[name] != v {
			t.Errorf("example pins %s@%s, CI runs %q", name, v, ci.Dependencies[name])
		}
	}
}
