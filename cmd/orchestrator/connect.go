package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// server is one MCP server to connect to.
type server struct {
	name      string
	transport sdk.Transport
	where     string // for messages: a command line or a URL
	// refused records an HTTP server's first refusal, so that a failed
	// connect can say what to do; nil for other transports.
	refused *statusRecorder
}

// statusRecorder wraps an HTTP transport and remembers the status of the
// first response of 400 or more. go-sdk v1.8.0 reports a refused
// initialize only as http.StatusText ("Unauthorized"), with no code to
// match, so the code is taken here, from the response itself.
type statusRecorder struct {
	base   http.RoundTripper
	status atomic.Int32
}

func (s *statusRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err == nil && resp.StatusCode >= 400 {
		s.status.CompareAndSwap(0, int32(resp.StatusCode))
	}
	return resp, err
}

// recordRefusals makes t, a streamable HTTP transport, record refusals.
func recordRefusals(t sdk.Transport) (sdk.Transport, *statusRecorder) {
	st, ok := t.(*sdk.StreamableClientTransport)
	if !ok {
		return t, nil
	}
	hc := &http.Client{}
	if st.HTTPClient != nil {
		*hc = *st.HTTPClient
	}
	rec := &statusRecorder{base: hc.Transport}
	if rec.base == nil {
		rec.base = http.DefaultTransport
	}
	hc.Transport = rec
	cp := *st
	cp.HTTPClient = hc
	return &cp, rec
}

// refusalAdvice says what to do about an MCP server at url that refused
// the connection with status; "" when there is nothing to add.
func refusalAdvice(url string, status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("it refused the token (HTTP %d): give the server's token with --token or MEMBRANE_TOKEN", status)
	case http.StatusNotFound:
		advice := fmt.Sprintf("nothing serves MCP at that path (HTTP %d)", status)
		if u, err := neturl.Parse(url); err == nil && u.Path != mcp.DefaultPath {
			u.Path, u.RawQuery = mcp.DefaultPath, ""
			advice += fmt.Sprintf(": membrane serves it at %s, so try --server-url %s", mcp.DefaultPath, u)
		}
		return advice
	}
	return ""
}

// findMembrane returns the membrane binary to launch: the one named, else
// the one next to this program's executable, else the one on PATH.
func findMembrane(named string) (string, error) {
	if named != "" {
		p, err := exec.LookPath(named)
		if err != nil {
			return "", fmt.Errorf("--membrane %s: %w", named, err)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		if self, err := filepath.EvalSymlinks(self); err == nil {
			p := filepath.Join(filepath.Dir(self), "membrane")
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("membrane"); err == nil {
		return p, nil
	}
	return "", errors.New("cannot find the membrane binary next to this program or on PATH: " +
		"build it (`make build` puts it in bin/), pass --membrane PATH, or reach a running one with --server-url")
}

// servers lists the servers the configuration asks for.
func (c *Config) servers(serverLog io.Writer) ([]server, error) {
	var out []server
	switch {
	case c.ServerURL != "":
		t, rec := recordRefusals(mcp.HTTPTransport(c.ServerURL, c.Token, nil))
		out = append(out, server{name: "membrane", transport: t, where: c.ServerURL, refused: rec})
	case !c.NoMembrane:
		bin, err := findMembrane(c.Membrane)
		if err != nil {
			return nil, err
		}
		var args []string
		if c.ConfigFile != "" {
			args = append(args, "--config", c.ConfigFile)
		}
		args = append(args, c.ServerArgs...)
		cmd := exec.Command(bin, args...)
		cmd.Env = childEnv(os.Environ(), c.Verbose, serverLog != os.Stderr)
		cmd.Stderr = serverLog
		out = append(out, server{name: "membrane", transport: mcp.CommandTransport(cmd), where: strings.Join(append([]string{bin}, args...), " ")})
	}
	if c.MCPConfig != "" {
		cfgs, err := mcp.LoadServers(c.MCPConfig)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(cfgs))
		for n := range cfgs {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if slices.ContainsFunc(out, func(s server) bool { return s.name == n }) {
				return nil, fmt.Errorf("--mcp-config %s: server name %q is taken by the bundled membrane; rename it", c.MCPConfig, n)
			}
			sc := cfgs[n]
			where := sc.URL
			if where == "" {
				where = strings.Join(append([]string{sc.Command}, sc.Args...), " ")
			}
			out = append(out, server{name: n, transport: sc.Transport(serverLog), where: where})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no MCP servers to connect to")
	}
	return out, nil
}

// childEnv is the environment of a launched membrane: ours, quieter logs
// unless asked otherwise, no colour when its stderr goes to a file, and
// never the settings that would make it serve HTTP instead of stdio.
func childEnv(env []string, verbose, toFile bool) []string {
	out := make([]string, 0, len(env)+2)
	hasLevel := false
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MEMBRANE_HTTP", "MEMBRANE_TOKEN", "MEMBRANE_TOKEN_FILE":
			continue
		case "MEMBRANE_LOG_LEVEL":
			hasLevel = true
		}
		out = append(out, kv)
	}
	if !hasLevel {
		level := "warn"
		if verbose {
			level = "debug"
		}
		out = append(out, "MEMBRANE_LOG_LEVEL="+level)
	}
	if toFile {
		out = append(out, "NO_COLOR=1")
	}
	return out
}

// connectAll connects to every server and registers its tools in r. With
// more than one server, tool names are prefixed with the server's name. On
// error, the servers already connected are closed.
func connectAll(ctx context.Context, servers []server, r *calls.Router, callTimeout time.Duration, log *slog.Logger, onChange func(string, calls.Change), onEnd func(string, error)) ([]*mcp.Client, error) {
	var clients []*mcp.Client
	prefix := len(servers) > 1
	for _, s := range servers {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		c, err := mcp.Connect(cctx, s.transport, r, &mcp.ClientOptions{
			Name:        s.name,
			Prefix:      prefix,
			CallTimeout: callTimeout,
			ClientName:  "membrane-orchestrator",
			Logger:      log,
			OnToolsChanged: func(ch calls.Change) {
				if onChange != nil {
					onChange(s.name, ch)
				}
			},
			OnSessionEnd: func(err error) {
				if onEnd != nil {
					onEnd(s.name, err)
				}
			},
		})
		cancel()
		if err != nil {
			for _, c := range clients {
				c.Close()
			}
			if s.refused != nil {
				if advice := refusalAdvice(s.where, int(s.refused.status.Load())); advice != "" {
					return nil, fmt.Errorf("server %s (%s): %s", s.name, s.where, advice)
				}
			}
			return nil, fmt.Errorf("server %s (%s): %w", s.name, s.where, err)
		}
		clients = append(clients, c)
	}
	return clients, nil
}
