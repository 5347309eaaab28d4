// Command peers times membrane side by side with its peers on this machine
// (`make bench-peers`, off the test path and off CI): ollama-mcp and
// mcp-server-commands (Node MCP servers over stdio) and Anthropic's srt
// (@anthropic-ai/sandbox-runtime, a command line sandbox), installed from
// npm into -peers. It measures process start to the first tools/list reply,
// sequential no-op commands (`true`), and embeddings against the real test
// Ollama, interleaving the contenders round by round so that a machine
// loaded by other work weighs on each alike, and prints a Markdown table of
// medians.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

func main() {
	bin := flag.String("membrane", "", "the membrane binary")
	peers := flag.String("peers", "", "the npm prefix the peers are installed under")
	rounds := flag.Int("n", 5, "cold starts of each server")
	calls := flag.Int("calls", 20, "sequential calls of each")
	flag.Parse()
	if err := run(*bin, *peers, *rounds, *calls); err != nil {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(1)
	}
}

type server struct {
	name string
	cmd  func() *exec.Cmd
	// The no-op command and the embedding call, as tool and arguments;
	// empty tool: the server has none.
	shTool  string
	shArgs  map[string]any
	embTool string
	embArgs map[string]any
}

func run(bin, peers string, rounds, ncalls int) error {
	if bin == "" || peers == "" {
		return errors.New("-membrane and -peers are required")
	}
	ctx := context.Background()
	ol, err := ollamatest.StartServer(ctx, nil)
	if err != nil {
		return fmt.Errorf("test Ollama: %w", err)
	}
	defer ol.Stop()
	if err := ol.CreateModel(ctx, "embed", ollamatest.EmbedModel(8)); err != nil {
		return fmt.Errorf("embedding model: %w", err)
	}
	nodeBin := func(name string) string { return filepath.Join(peers, "node_modules", ".bin", name) }
	host := strings.TrimPrefix(ol.URL, "http://")
	embArgs := map[string]any{"model": "embed", "input": "the quick brown fox"}
	servers := []server{
		{name: "membrane", cmd: func() *exec.Cmd {
			c := exec.Command(bin, "--ollama-host", host)
			c.Env = append(os.Environ(), "NO_COLOR=1", "MEMBRANE_LOG_LEVEL=warn")
			return c
		}, shTool: "sh", shArgs: map[string]any{"cmd": "true"}, embTool: "ollama_embed", embArgs: embArgs},
		{name: "ollama-mcp", cmd: func() *exec.Cmd {
			c := exec.Command(nodeBin("ollama-mcp"))
			c.Env = append(os.Environ(), "OLLAMA_HOST="+ol.URL)
			return c
		}, embTool: "ollama_embed", embArgs: embArgs},
		{name: "mcp-server-commands", cmd: func() *exec.Cmd { return exec.Command(nodeBin("mcp-server-commands")) },
			shTool: "run_command", shArgs: map[string]any{"command": "true"}},
	}
	cold := map[string][]time.Duration{}
	for range rounds {
		for _, s := range servers {
			d, err := coldList(ctx, s.cmd())
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			cold[s.name] = append(cold[s.name], d)
		}
	}
	sh := map[string][]time.Duration{}
	emb := map[string][]time.Duration{}
	sessions := map[string]*sdk.ClientSession{}
	for _, s := range servers {
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench-peers", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: s.cmd()}, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		defer cs.Close()
		if _, err := cs.ListTools(ctx, nil); err != nil { // membrane lists once its tools are in
			return fmt.Errorf("%s: %w", s.name, err)
		}
		sessions[s.name] = cs
	}
	srt := nodeBin("srt")
	for i := range ncalls + 2 { // two warm-up rounds, not counted
		for _, s := range servers {
			cs := sessions[s.name]
			if s.shTool != "" {
				d, err := call(ctx, cs, s.shTool, s.shArgs)
				if err != nil {
					return fmt.Errorf("%s %s: %w", s.name, s.shTool, err)
				}
				if i >= 2 {
					sh[s.name] = append(sh[s.name], d)
				}
			}
			if s.embTool != "" {
				d, err := call(ctx, cs, s.embTool, s.embArgs)
				if err != nil {
					return fmt.Errorf("%s %s: %w", s.name, s.embTool, err)
				}
				if i >= 2 {
					emb[s.name] = append(emb[s.name], d)
				}
			}
		}
		t0 := time.Now()
		if out, err := exec.Command(srt, "-c", "true").CombinedOutput(); err != nil {
			return fmt.Errorf("srt -c true: %v: %s", err, out)
		}
		if i >= 2 {
			sh["srt"] = append(sh["srt"], time.Since(t0))
		}
	}

	host, _ = os.Hostname()
	fmt.Printf("Measured %s on %s (%s/%s, %d cores), %d cold starts and %d sequential calls each, interleaved; medians.\n\n",
		time.Now().UTC().Format("2006-01-02"), host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), rounds, ncalls)
	names := []string{"membrane", "ollama-mcp", "mcp-server-commands", "srt"}
	fmt.Println("| what | " + strings.Join(names, " | ") + " |")
	fmt.Println("|---" + strings.Repeat("|---", len(names)) + "|")
	for _, row := range []struct {
		what string
		m    map[string][]time.Duration
	}{
		{"start to first `tools/list`", cold},
		{"`true`, sequential", sh},
		{"`ollama_embed`, one input", emb},
	} {
		cells := []string{row.what}
		for _, n := range names {
			cells = append(cells, median(row.m[n]))
		}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
	return nil
}

// coldList starts cmd, initializes and lists its tools, and returns the
// time from the start to the list.
func coldList(ctx context.Context, cmd *exec.Cmd) (time.Duration, error) {
	t0 := time.Now()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench-peers", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return 0, err
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func call(ctx context.Context, cs *sdk.ClientSession, tool string, args map[string]any) (time.Duration, error) {
	t0 := time.Now()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if res.IsError {
		text := ""
		for _, c := range res.Content {
			if t, ok := c.(*sdk.TextContent); ok {
				text += t.Text
			}
		}
		return 0, fmt.Errorf("tool error: %.300s", text)
	}
	return d, nil
}

func median(ds []time.Duration) string {
	if len(ds) == 0 {
		return "—"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	d := s[len(s)/2]
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1e3)
}
