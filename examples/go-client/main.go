// Command go-client launches membrane over stdio with the Go MCP SDK's
// CommandTransport, as any agent written in Go would, lists its tools and
// calls one. With -url it reaches a running membrane over streamable HTTP
// instead, with the bearer token from $MEMBRANE_TOKEN.
//
//	go run ./examples/go-client                      # membrane from PATH, sh: echo
//	go run ./examples/go-client -membrane ./bin/membrane \
//	    -tool python_run -args '{"code": "print(6*7)"}'
//	MEMBRANE_TOKEN=... go run ./examples/go-client -url http://127.0.0.1:8765/mcp
//
// It exits 0 when the call succeeds, 1 when the tool reports an error (the
// error text is printed), and 2 when it cannot run at all.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	membrane := flag.String("membrane", "membrane", "the membrane binary to launch (a path, or a name on PATH)")
	tool := flag.String("tool", "sh", "the tool to call; empty lists the tools only")
	args := flag.String("args", `{"cmd": "echo hello from membrane"}`, "the tool's arguments, a JSON object")
	url := flag.String("url", "", "reach membrane over streamable HTTP at this URL instead of launching it (token: $MEMBRANE_TOKEN)")
	timeout := flag.Duration("timeout", 2*time.Minute, "how long the whole run may take")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go-client [flags] [-- membrane-args...]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var t mcp.Transport
	if *url != "" {
		t = &mcp.StreamableClientTransport{Endpoint: *url, HTTPClient: &http.Client{
			Transport: bearer{token: os.Getenv("MEMBRANE_TOKEN"), next: http.DefaultTransport},
		}}
	} else {
		// The child gets our environment (OLLAMA_HOST, MEMBRANE_*), and its
		// log goes to our stderr: its stdout is the MCP stream.
		cmd := exec.Command(*membrane, flag.Args()...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		cmd.Stderr = os.Stderr
		t = &mcp.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}
	}
	err := run(ctx, os.Stdout, t, *tool, *args)
	var toolErr *toolError
	switch {
	case err == nil:
	case errors.As(err, &toolErr):
		fmt.Fprintln(os.Stderr, "go-client:", err)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "go-client:", err)
		os.Exit(2)
	}
}

// toolError is a call the tool answered with isError: the server worked,
// the command did not.
type toolError struct{ tool, text string }

func (e *toolError) Error() string { return fmt.Sprintf("%s reported an error:\n%s", e.tool, e.text) }

// bearer adds "Authorization: Bearer <token>" to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token == "" {
		return b.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func run(ctx context.Context, out io.Writer, t mcp.Transport, tool, rawArgs string) error {
	var args map[string]any
	if tool != "" {
		if err := json.Unmarshal([]byte(rawArgs), &args); err != nil {
			return fmt.Errorf("-args must be a JSON object: %v", err)
		}
	}

	client := mcp.NewClient(&mcp.Implementation{Name: "go-client", Version: "v0.1.0"}, nil)
	cs, err := client.Connect(ctx, t, nil)
	if err != nil {
		return fmt.Errorf("connect to membrane: %w", err)
	}
	// Over stdio, Close ends membrane's stdin; membrane exits and kills
	// whatever it still runs. Over HTTP it ends the session.
	defer cs.Close()

	info := cs.InitializeResult()
	fmt.Fprintf(out, "server: %s %s (MCP %s)\n", info.ServerInfo.Name, info.ServerInfo.Version, info.ProtocolVersion)

	fmt.Fprintln(out, "tools:")
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("list tools: %w", err)
		}
		desc, _, _ := strings.Cut(t.Description, "\n")
		fmt.Fprintf(out, "  %-24s %s\n", t.Name, desc)
	}
	if tool == "" {
		return nil
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return fmt.Errorf("call %s: %w", tool, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			text.WriteString(c.Text)
		case *mcp.ImageContent:
			fmt.Fprintf(&text, "[image %s, %d bytes]", c.MIMEType, len(c.Data))
		}
	}
	if res.IsError {
		return &toolError{tool: tool, text: text.String()}
	}
	fmt.Fprintf(out, "%s:\n%s\n", tool, strings.TrimRight(text.String(), "\n"))
	return nil
}
