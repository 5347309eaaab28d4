package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp"
)

// server is one MCP server to connect to.
type server struct {
	name  string
	where string // for messages: a command line or a URL
	// dial returns a new transport to the server, and for a launched
	// server the command it starts (nil for HTTP). It is called again to
	// reconnect.
	dial func() (sdk.Transport, *exec.Cmd)
	// refused records an HTTP server's first refusal of the last dial, so
	// that a failed connect can say what to do; nil for other servers.
	refused *statusRecorder
}

func httpServer(name, url, token string, headers map[string]string) server {
	rec := &statusRecorder{}
	return server{name: name, where: url, refused: rec, dial: func() (sdk.Transport, *exec.Cmd) {
		return rec.wrap(mcp.HTTPTransport(url, token, headers)), nil
	}}
}

// statusRecorder remembers the status of the first HTTP response of 400 or
// more since its last wrap. go-sdk v1.8.0 reports a refused initialize
// only as http.StatusText ("Unauthorized"), with no code to match, so the
// code is taken here, off the response itself.
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

// wrap makes t, a streamable HTTP transport, record its refusals in s.
func (s *statusRecorder) wrap(t sdk.Transport) sdk.Transport {
	st, ok := t.(*sdk.StreamableClientTransport)
	if !ok {
		return t
	}
	s.status.Store(0)
	hc := &http.Client{}
	if st.HTTPClient != nil {
		*hc = *st.HTTPClient
	}
	if s.base == nil {
		s.base = hc.Transport
		if s.base == nil {
			s.base = http.DefaultTransport
		}
	}
	hc.Transport = s
	cp := *st
	cp.HTTPClient = hc
	return &cp
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

func cmdServer(name string, mk func() *exec.Cmd) server {
	c := mk()
	return server{name: name, where: strings.Join(c.Args, " "), dial: func() (sdk.Transport, *exec.Cmd) {
		cmd := mk()
		return mcp.CommandTransport(cmd), cmd
	}}
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
		out = append(out, httpServer("membrane", c.ServerURL, c.Token, nil))
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
		out = append(out, cmdServer("membrane", func() *exec.Cmd {
			cmd := exec.Command(bin, args...)
			cmd.Env = childEnv(os.Environ(), c.Verbose, serverLog != os.Stderr)
			cmd.Stderr = serverLog
			return cmd
		}))
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
			if sc.URL != "" {
				out = append(out, httpServer(n, sc.URL, "", sc.Headers))
			} else {
				out = append(out, cmdServer(n, func() *exec.Cmd { return sc.Cmd(serverLog) }))
			}
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
