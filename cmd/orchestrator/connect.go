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

	"github.com/membrane-mcp/membrane/mcp"
)

// advise adds to a connection error what to do about it, with the flags
// that fix it: the mcp library says what went wrong in words that name no
// flag.
func advise(err error) error {
	var re *mcp.RefusedError
	if !errors.As(err, &re) {
		return err
	}
	switch re.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: give the server's token with --token or MEMBRANE_TOKEN", err)
	case http.StatusNotFound:
		if u, perr := neturl.Parse(re.URL); perr == nil && u.Path != mcp.DefaultPath {
			u.Path, u.RawQuery = mcp.DefaultPath, ""
			return fmt.Errorf("%w: membrane serves it at %s, so try --server-url %s", err, mcp.DefaultPath, u)
		}
	}
	return err
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
func (c *Config) servers(serverLog io.Writer) ([]mcp.FleetServer, error) {
	var out []mcp.FleetServer
	switch {
	case c.ServerURL != "":
		out = append(out, mcp.HTTPFleetServer("membrane", c.ServerURL, c.Token, nil))
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
		out = append(out, mcp.CommandFleetServer("membrane", func() *exec.Cmd {
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
			if slices.ContainsFunc(out, func(s mcp.FleetServer) bool { return s.Name == n }) {
				return nil, fmt.Errorf("--mcp-config %s: server name %q is taken by the bundled membrane; rename it", c.MCPConfig, n)
			}
			sc := cfgs[n]
			if sc.URL != "" {
				out = append(out, mcp.HTTPFleetServer(n, sc.URL, "", sc.Headers))
			} else {
				out = append(out, mcp.CommandFleetServer(n, func() *exec.Cmd { return sc.Cmd(serverLog) }))
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
