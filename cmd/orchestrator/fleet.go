package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// fleet holds the connections to every server. A server that cannot be
// reached at start is skipped; one whose session ends (it exited, or broke
// the protocol with one bad frame) is reconnected with backoff.
type fleet struct {
	router      *calls.Router
	callTimeout time.Duration
	log         *slog.Logger
	prefix      bool
	prefixes    map[string]string
	// say tells the user something (a server skipped, lost, back).
	say func(msg string, bad bool)
	// onChange reports a server's changed tools.
	onChange func(server string, ch calls.Change)
	// backoff is the wait before each reconnection attempt.
	backoff []time.Duration

	mu      sync.Mutex
	clients map[string]*mcp.Client
	cmds    []*exec.Cmd // every server launched, reconnections too
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

var defaultBackoff = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second}

func newFleet(servers []server, r *calls.Router, callTimeout time.Duration, log *slog.Logger) *fleet {
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = s.name
	}
	return &fleet{
		router: r, callTimeout: callTimeout, log: log,
		prefix: len(servers) > 1, prefixes: mcp.ServerPrefixes(names),
		say: func(string, bool) {}, backoff: defaultBackoff,
		clients: map[string]*mcp.Client{}, done: make(chan struct{}),
	}
}

// errNoServers is returned by start when no server could be reached.
var errNoServers = errors.New("no MCP server could be reached")

// start connects to every server in turn. A server that fails is skipped
// with a message; start fails only when none is left, or ctx ended.
func (f *fleet) start(ctx context.Context, servers []server) error {
	var failed []string
	for _, s := range servers {
		err := f.connect(ctx, s)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("server %s (%s): %v", s.name, s.where, err))
			f.say(fmt.Sprintf("skipping server %s: %v", s.name, err), true)
		}
	}
	if len(failed) == len(servers) {
		return fmt.Errorf("%w: %s", errNoServers, strings.Join(failed, "; "))
	}
	return nil
}

func (f *fleet) connect(ctx context.Context, s server) error {
	t, cmd := s.dial()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errors.New("closing")
	}
	f.mu.Unlock()
	c, err := mcp.Connect(cctx, t, f.router, &mcp.ClientOptions{
		Name:        s.name,
		Prefix:      f.prefix,
		PrefixName:  f.prefixes[s.name],
		CallTimeout: f.callTimeout,
		ClientName:  "membrane-orchestrator",
		Logger:      f.log,
		OnToolsChanged: func(ch calls.Change) {
			if f.onChange != nil {
				f.onChange(s.name, ch)
			}
		},
		OnSessionEnd: func(err error) { f.lost(s, err) },
	})
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("no answer within 60s: %w", err)
		}
		if s.refused != nil {
			if advice := refusalAdvice(s.where, int(s.refused.status.Load())); advice != "" {
				return errors.New(advice)
			}
		}
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if cmd != nil {
		f.cmds = append(f.cmds, cmd) // started by now
	}
	if f.closed {
		go c.Close()
		return errors.New("closing")
	}
	f.clients[s.name] = c
	return nil
}

// lost reconnects a server whose session ended, with backoff.
func (f *fleet) lost(s server, err error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	old := f.clients[s.name]
	delete(f.clients, s.name)
	f.wg.Add(1)
	f.mu.Unlock()
	why := ""
	if err != nil {
		why = fmt.Sprintf(" (%v)", err)
	}
	go func() {
		defer f.wg.Done()
		// Let the dead client's goroutines end before a new client takes
		// over its tools.
		if old != nil {
			old.Close()
		}
		for i, wait := range f.backoff {
			f.say(fmt.Sprintf("server %s ended%s; its tools are gone; reconnecting in %s (attempt %d of %d)", s.name, why, wait, i+1, len(f.backoff)), true)
			select {
			case <-f.done:
				return
			case <-time.After(wait):
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-f.done:
				case <-ctx.Done():
				}
				cancel()
			}()
			err := f.connect(ctx, s)
			cancel()
			if err == nil {
				f.say(fmt.Sprintf("server %s is back: %d tools", s.name, len(f.clientTools(s.name))), false)
				return
			}
			why = fmt.Sprintf(" (reconnect: %v)", err)
		}
		f.say(fmt.Sprintf("server %s could not be reconnected; its tools stay gone until the orchestrator is restarted", s.name), true)
	}()
}

func (f *fleet) clientTools(name string) []mcp.ToolInfo {
	f.mu.Lock()
	c := f.clients[name]
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Tools()
}

// tool says who a local tool name is.
func (f *fleet) tool(local string) (mcp.ToolInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.clients {
		if t, ok := c.Tool(local); ok {
			return t, true
		}
	}
	return mcp.ToolInfo{}, false
}

// tools lists the tools of every connected server.
func (f *fleet) tools() []mcp.ToolInfo {
	f.mu.Lock()
	cs := make([]*mcp.Client, 0, len(f.clients))
	for _, c := range f.clients {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	var out []mcp.ToolInfo
	for _, c := range cs {
		out = append(out, c.Tools()...)
	}
	slices.SortFunc(out, func(a, b mcp.ToolInfo) int { return strings.Compare(a.Local, b.Local) })
	return out
}

// close ends every session politely (stdin closed, then SIGTERM, then
// SIGKILL for a launched server), stops reconnecting, and then kills what
// is left of each launched server's process group (children it left
// behind).
func (f *fleet) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.done)
	cs := make([]*mcp.Client, 0, len(f.clients))
	for _, c := range f.clients {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if err := c.Close(); err != nil {
				f.log.Warn("close server", "server", c.Name(), "err", err)
			}
		})
	}
	wg.Wait()
	f.wg.Wait()
	f.kill()
}

// kill sends SIGKILL to the process group of every launched server (each
// has its own group), for a user who will not wait, or to what is left of
// it. (A group's ID is not reused while any member lives, so this never
// reaches a stranger.)
func (f *fleet) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cmd := range f.cmds {
		if p := cmd.Process; p != nil {
			syscall.Kill(-p.Pid, syscall.SIGKILL)
		}
	}
}
