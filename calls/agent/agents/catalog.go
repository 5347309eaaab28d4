package agents

import (
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Catalog is the set of agents in use, safe for concurrent use. Readers get
// copies; Replace swaps the whole set at once, so a reader sees the old set
// or the new one, never a mix.
type Catalog struct {
	mu     sync.RWMutex
	specs  []Spec
	byName map[string]int
	subs   []func([]Spec)
}

// NewCatalog returns a catalog of specs, which must have passed Validate.
func NewCatalog(specs []Spec) *Catalog {
	c := &Catalog{}
	c.set(specs)
	return c
}

func (c *Catalog) set(specs []Spec) {
	c.specs = slices.Clone(specs)
	c.byName = make(map[string]int, len(specs))
	for i, s := range c.specs {
		c.byName[strings.ToLower(s.Name)] = i
	}
}

// Get returns the agent named name, ignoring case.
func (c *Catalog) Get(name string) (Spec, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.byName[strings.ToLower(name)]
	if !ok {
		return Spec{}, false
	}
	return c.specs[i], true
}

// List returns the agents, in the file's order.
func (c *Catalog) List() []Spec {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.specs)
}

// Names returns the agents' names, in the file's order.
func (c *Catalog) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, len(c.specs))
	for i, s := range c.specs {
		out[i] = s.Name
	}
	return out
}

// Replace makes specs the agents in use (they must have passed Validate)
// and tells the subscribers.
func (c *Catalog) Replace(specs []Spec) {
	c.mu.Lock()
	c.set(specs)
	subs := slices.Clone(c.subs)
	c.mu.Unlock()
	for _, f := range subs {
		f(slices.Clone(specs))
	}
}

// Subscribe calls f with the new agents after each Replace, from the
// goroutine that called Replace.
func (c *Catalog) Subscribe(f func([]Spec)) {
	c.mu.Lock()
	c.subs = append(c.subs, f)
	c.mu.Unlock()
}

// SameServers reports whether two sets of agents ask for the same MCP
// servers (by name and entry). A running program can take a reload that
// changes anything else; new servers need a restart to be connected.
func SameServers(a, b []Spec) bool {
	servers := func(specs []Spec) map[string]Server {
		m := map[string]Server{}
		for _, s := range specs {
			for k, v := range s.Servers {
				m[k] = v
			}
		}
		return m
	}
	return reflect.DeepEqual(servers(a), servers(b))
}
