package openaicompat

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/policy"
)

// BackendsOptions configures NewBackends. Tools and Model are needed; the
// zero value of every other field is a safe default.
type BackendsOptions struct {
	// Tools holds every tool any agent may call: the servers of the
	// command line and those the agents name.
	Tools *calls.Router
	// Model returns the model client of an agent (its endpoint, key,
	// temperature and effort). It is asked again only when the agent's
	// spec changes (a reload).
	Model func(spec agents.Spec) *Client
	// ServerOf says which MCP server a tool comes from (mcp.Fleet.Tool),
	// so that an agent sees the tools of the servers other agents name
	// only when it names them too. Nil means every agent sees every tool
	// its globs allow.
	ServerOf func(tool string) (server string, ok bool)
	// ExtractTextCalls decides for an agent that does not set
	// extract_text_calls. Nil means false.
	ExtractTextCalls func(spec agents.Spec) bool
	// Card, CardTokens and CardGroup set the agents' capabilities card
	// (agent.CardMode, whose zero value is auto; the card's budget in
	// tokens, zero for the default; a tool's heading, nil for none).
	Card       agent.CardMode
	CardTokens int
	CardGroup  func(calls.Call) string
}

// Backends gives each turn of a Server its agent's model and tools: it is
// ServerOptions.Backend. Model clients are kept per agent and made anew
// when the agent changes.
type Backends struct {
	opts BackendsOptions

	mu      sync.Mutex
	models  map[string]*cachedModel
	servers map[string]bool // servers some agent names
}

type cachedModel struct {
	spec   agents.Spec
	client *Client
}

// NewBackends returns the backends of the agents specs (see Own).
func NewBackends(specs []agents.Spec, opts *BackendsOptions) *Backends {
	b := &Backends{models: map[string]*cachedModel{}}
	if opts != nil {
		b.opts = *opts
	}
	b.Own(specs)
	return b
}

// Own records which MCP servers the agents name, so that an agent sees
// only its own servers' tools besides the others. Call it with each new
// set of agents (agents.Catalog.Subscribe).
func (b *Backends) Own(specs []agents.Spec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.servers = map[string]bool{}
	for _, s := range specs {
		for k := range s.Servers {
			b.servers[k] = true
		}
	}
}

// Backend returns the model and tools of a turn of spec.
func (b *Backends) Backend(spec agents.Spec) (*Backend, error) {
	if b.opts.Model == nil || b.opts.Tools == nil {
		return nil, fmt.Errorf("agent %s: no model or tools configured", spec.Name)
	}
	sel, err := policy.NewSelector(spec.Tools, spec.ExcludeTools)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	m := b.models[spec.Name]
	if m == nil || !reflect.DeepEqual(m.spec, spec) {
		m = &cachedModel{spec: spec, client: b.opts.Model(spec)}
		b.models[spec.Name] = m
	}
	hidden := map[string]bool{}
	for k := range b.servers {
		if _, mine := spec.Servers[k]; !mine {
			hidden[k] = true
		}
	}
	b.mu.Unlock()
	extract := false
	if spec.ExtractTextCalls != nil {
		extract = *spec.ExtractTextCalls
	} else if b.opts.ExtractTextCalls != nil {
		extract = b.opts.ExtractTextCalls(spec)
	}
	allow := func(name string) bool {
		if !sel.Allows(name) {
			return false
		}
		if len(hidden) > 0 && b.opts.ServerOf != nil {
			if server, ok := b.opts.ServerOf(name); ok && hidden[server] {
				return false
			}
		}
		return true
	}
	tools := &selected{r: b.opts.Tools, allow: allow}
	be := &Backend{Model: m.client, Tools: tools, ExtractTextCalls: extract}
	if b.opts.Card.Enabled(spec.Model, m.client.BaseURL()) {
		opts := &agent.CardOptions{MaxTokens: b.opts.CardTokens, Group: b.opts.CardGroup}
		be.Capabilities = func() string { return agent.RenderCard(tools.List(), opts) }
	}
	return be, nil
}

// selected is the part of a router one agent may use.
type selected struct {
	r     *calls.Router
	allow func(string) bool
}

var _ agent.Tools = (*selected)(nil)

func (s *selected) List() []calls.Call {
	return slices.DeleteFunc(s.r.List(), func(c calls.Call) bool { return !s.allow(c.Name) })
}

func (s *selected) Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error) {
	if !s.allow(name) {
		return nil, fmt.Errorf("%w: %s", calls.ErrUnknownCall, name)
	}
	return s.r.Call(ctx, name, req)
}
