package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServerConfig is one entry of a Claude-Desktop-style "mcpServers" file:
// either a command to launch over stdio, or the URL of a streamable HTTP
// endpoint.
type ServerConfig struct {
	// Command, Args, Env and Cwd launch a stdio server. Env is added to
	// the orchestrator's own environment.
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	// URL and Headers reach a streamable HTTP server.
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Type is "stdio", "http" or "streamable-http"; empty means whichever
	// of Command and URL is set.
	Type string `json:"type,omitempty"`
	// Disabled entries are skipped.
	Disabled bool `json:"disabled,omitempty"`
}

// ParseServers decodes a Claude-Desktop-style configuration,
// {"mcpServers": {"name": {"command": …, "args": […], "env": {…}}}}, and
// checks each entry. ("servers", as VS Code names the key, is accepted
// too.) Errors name the entry and say what is wrong with it.
func ParseServers(data []byte) (map[string]ServerConfig, error) {
	var file struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
		Servers    map[string]json.RawMessage `json:"servers"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("not a JSON object with \"mcpServers\": %v", err)
	}
	raw := file.MCPServers
	if raw == nil {
		raw = file.Servers
	}
	if raw == nil {
		return nil, fmt.Errorf("no \"mcpServers\" object: write {\"mcpServers\": {\"name\": {\"command\": \"...\"}}}")
	}
	out := map[string]ServerConfig{}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range raw {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		var sc ServerConfig
		dec := json.NewDecoder(bytes.NewReader(raw[name]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc); err != nil {
			return nil, fmt.Errorf("server %q: %v (known fields: command, args, env, cwd, url, headers, type, disabled)", name, err)
		}
		if strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("a server has an empty name")
		}
		if sc.Disabled {
			continue
		}
		if err := sc.check(); err != nil {
			return nil, fmt.Errorf("server %q: %w", name, err)
		}
		out[name] = sc
	}
	return out, nil
}

// LoadServers reads and parses a configuration file (see ParseServers).
func LoadServers(path string) (map[string]ServerConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mcp config: %w", err)
	}
	s, err := ParseServers(data)
	if err != nil {
		return nil, fmt.Errorf("mcp config %s: %w", path, err)
	}
	return s, nil
}

func (sc *ServerConfig) check() error {
	switch sc.Type {
	case "", "stdio", "http", "streamable-http", "streamableHttp", "streamable_http":
	case "sse":
		return fmt.Errorf("the old SSE transport is not supported: use the server's streamable HTTP endpoint (usually /mcp)")
	default:
		return fmt.Errorf("unknown type %q: use \"stdio\" or \"http\"", sc.Type)
	}
	switch {
	case sc.Command != "" && sc.URL != "":
		return fmt.Errorf("set either \"command\" (stdio) or \"url\" (HTTP), not both")
	case sc.Command == "" && sc.URL == "":
		return fmt.Errorf("set \"command\" to launch a stdio server, or \"url\" for an HTTP one")
	case sc.Command != "" && sc.Type != "" && sc.Type != "stdio":
		return fmt.Errorf("type %q needs \"url\", not \"command\"", sc.Type)
	case sc.URL != "" && sc.Type == "stdio":
		return fmt.Errorf("type \"stdio\" needs \"command\", not \"url\"")
	}
	if sc.URL != "" {
		u, err := url.Parse(sc.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("url %q is not an http:// or https:// URL", sc.URL)
		}
	}
	return nil
}

// Transport returns the transport that reaches the server. A stdio
// server's stderr goes to stderr (nil discards it); see CommandTransport.
func (sc ServerConfig) Transport(stderr io.Writer) sdk.Transport {
	if sc.URL != "" {
		return HTTPTransport(sc.URL, "", sc.Headers)
	}
	return CommandTransport(sc.Cmd(stderr))
}

// Cmd returns the command that launches a stdio server, with its stderr
// going to stderr, or nil for an HTTP server. Each call returns a new
// command, for a server that must be launched again.
func (sc ServerConfig) Cmd(stderr io.Writer) *exec.Cmd {
	if sc.URL != "" {
		return nil
	}
	cmd := exec.Command(sc.Command, sc.Args...)
	if len(sc.Env) > 0 {
		env := os.Environ()
		for _, k := range slices.Sorted(maps.Keys(sc.Env)) {
			env = append(env, k+"="+sc.Env[k])
		}
		cmd.Env = env
	}
	cmd.Dir = sc.Cwd
	cmd.Stderr = stderr
	return cmd
}

// CommandTransport launches cmd as a stdio MCP server. The child gets its
// own process group, so that a Ctrl-C meant for the orchestrator does not
// reach it, and on Linux it is sent SIGTERM if the orchestrator dies.
// Closing the session closes the child's stdin, then sends SIGTERM, then
// SIGKILL.
func CommandTransport(cmd *exec.Cmd) sdk.Transport {
	detach(cmd)
	return &sdk.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}
}
