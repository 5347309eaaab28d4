// Command demo shows the whole chain on a machine with no models: it starts
// the pinned test Ollama (building it once, about two minutes), loads a
// scripted model that thinks, calls the sandboxed sh tool and answers, then
// runs the orchestrator once against it. The orchestrator launches membrane
// over stdio; membrane runs the command in bubblewrap.
//
//	make demo            # or: go run ./cmd/orchestrator/demo
//
// The binaries are taken from bin/ (what `make build` writes) or built into
// a temporary directory.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

const modelName = "membrane-demo"

// script: the model calls sh once, then, given the result, thinks aloud
// (a <think> block the orchestrator shows as reasoning) and answers.
var script = ollamatest.Script{
	Calls:  []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo hello from the sandbox; uname -s; id -u"}`}},
	Answer: " <think>The tool ran in the sandbox and printed its greeting.</think> The sandbox says hello: the command ran inside bubblewrap and printed its output.",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, ""); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, a ...any) {
	line := "▸ " + fmt.Sprintf(format, a...)
	if term.IsTerminal(int(os.Stderr.Fd())) && os.Getenv("NO_COLOR") == "" {
		line = "\x1b[1m" + line + "\x1b[0m"
	}
	fmt.Fprintf(os.Stderr, "\n%s\n", line)
}

// run runs the demo; orch names the orchestrator binary to use, or "" to
// find or build one.
func run(ctx context.Context, orch string) error {
	start := time.Now()
	step("1/4 the test Ollama (%s, pinned; no model downloads)", ollamatest.Version)
	bin, err := ollamatest.FindBinary()
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "  not built yet: building it from the Go module proxy, once (about 2 minutes)…")
		bin, err = ollamatest.EnsureBinary(ctx)
	}
	if err != nil {
		return err
	}
	srv, err := ollamatest.StartServer(ctx, &ollamatest.Options{Binary: bin})
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Fprintf(os.Stderr, "  ollama serve on %s\n", srv.URL)

	step("2/4 a scripted model %q: a real GGUF file that makes a tool call, then answers", modelName)
	if err := srv.CreateModel(ctx, modelName, ollamatest.ScriptedModel(script)); err != nil {
		return err
	}

	step("3/4 the binaries")
	if orch == "" {
		if orch, err = binaries(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "  %s (launches membrane next to it over stdio)\n", orch)

	question := "Run a command in the sandbox and tell me what it printed."
	args := []string{"--model", modelName, "--base-url", srv.URL + "/v1", "-e", question}
	step("4/4 orchestrator %s", strings.Join(quote(args), " "))
	fmt.Fprintf(os.Stderr, "  chain: model (Ollama /v1) → tool call → membrane (MCP over stdio) → bubblewrap sh → result → answer\n\n")
	cmd := exec.CommandContext(ctx, orch, args...)
	// membrane serves the test Ollama's models as tools too.
	cmd.Env = append(os.Environ(), "OLLAMA_HOST="+srv.Host)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("orchestrator: %w", err)
	}
	fmt.Fprintf(os.Stderr, "\ndemo done in %s. With your own Ollama and a model that can call tools:\n  %s --model qwen3            # a session; /help inside\n  %s --model qwen3 -e \"...\"   # one question\n",
		time.Since(start).Round(100*time.Millisecond), orch, orch)
	return nil
}

// binaries returns the orchestrator to run, with membrane next to it: bin/
// when `make build` made both, else a fresh build in a temporary directory.
func binaries(ctx context.Context) (string, error) {
	if root, err := moduleRoot(); err == nil {
		orch := filepath.Join(root, "bin", "orchestrator")
		if isExec(orch) && isExec(filepath.Join(root, "bin", "membrane")) {
			return orch, nil
		}
	}
	dir, err := os.MkdirTemp("", "membrane-demo-")
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "  building membrane and orchestrator into %s…\n", dir)
	b := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/membrane", "./cmd/orchestrator")
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	if root, err := moduleRoot(); err == nil {
		b.Dir = root
	}
	if err := b.Run(); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	return filepath.Join(dir, "orchestrator"), nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not in a module")
	}
	return filepath.Dir(mod), nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func quote(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}
