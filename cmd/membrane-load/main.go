// Command membrane-load drives an MCP server over streamable HTTP with many
// concurrent sessions and reports throughput, latency percentiles and
// errors. It sends a fixed number of requests and stops.
//
//	membrane --http 127.0.0.1:8765 &
//	membrane-load -url http://127.0.0.1:8765/mcp -c 50 -n 20000 -method tools/call -tool sh -args '{"nope":1}'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/mcp/mcpload"
)

func main() {
	var (
		target  = flag.String("url", "http://127.0.0.1:8765/mcp", "MCP endpoint `URL`")
		token   = flag.String("token", os.Getenv("MEMBRANE_TOKEN"), "bearer `TOKEN` (default $MEMBRANE_TOKEN)")
		conc    = flag.Int("c", 50, "concurrent sessions")
		total   = flag.Int("n", 10000, "requests in all")
		method  = flag.String("method", "tools/list", "`METHOD` to send: tools/list, tools/call or ping")
		tool    = flag.String("tool", "sh", "tool to call with -method tools/call")
		args    = flag.String("args", `{"nope":1}`, "tool arguments, a JSON object (the default is a no-op: sh refuses it at once)")
		timeout = flag.Duration("timeout", 2*time.Minute, "stop after this long whatever is left")
		remote  = flag.Bool("allow-remote", false, "allow a URL that is not on this machine")
	)
	flag.Parse()
	if err := run(*target, *token, *conc, *total, *method, *tool, *args, *timeout, *remote); err != nil {
		fmt.Fprintln(os.Stderr, "membrane-load:", err)
		os.Exit(1)
	}
}

func run(target, token string, conc, total int, method, tool, args string, timeout time.Duration, remote bool) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q: want http://host:port/mcp", target)
	}
	if ip := net.ParseIP(strings.Trim(u.Hostname(), "[]")); !remote && u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-url %s is not on this machine; pass -allow-remote to load a server you run elsewhere", target)
	}
	if conc < 1 || total < conc {
		return errors.New("-c must be at least 1 and -n at least -c")
	}
	if timeout <= 0 {
		return errors.New("-timeout must be positive")
	}
	var body []byte
	switch method {
	case "tools/list", "ping":
		body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 2, "method": method})
	case "tools/call":
		var a map[string]any
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			return fmt.Errorf("-args: %v", err)
		}
		body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 2, "method": method, "params": map[string]any{"name": tool, "arguments": a}})
	default:
		return fmt.Errorf("-method %q: use tools/list, tools/call or ping", method)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := mcpload.Run(ctx, mcpload.Options{URL: target, Token: token, Sessions: conc, Requests: total, Body: body})
	if err != nil {
		return err
	}
	fmt.Printf("%s %s: %d requests from %d sessions in %s\n", method, target, res.Requests, conc, res.Elapsed.Round(time.Millisecond))
	fmt.Printf("  %.0f req/s   p50 %s   p90 %s   p99 %s   max %s\n", res.RPS(),
		res.Percentile(50).Round(time.Microsecond), res.Percentile(90).Round(time.Microsecond),
		res.Percentile(99).Round(time.Microsecond), res.Percentile(100).Round(time.Microsecond))
	fmt.Printf("  errors: %d\n", res.Errors)
	if res.FirstError != "" {
		fmt.Printf("  first error: %s\n", res.FirstError)
		return errors.New("some requests failed")
	}
	return nil
}
