// Package ollama serves the models of one or more Ollama servers as calls.
//
// Every model becomes tools of its own, named after it and described with its
// real name and details: a completion model gets chat_<model> (which also
// takes images when the model has vision), an embedding model gets
// embed_<model>. Logical tools from the configuration bind a name of the
// user's choosing to a model with a fixed system prompt and options. Three
// generic tools, ollama_models, ollama_chat and ollama_embed, stay put for
// clients that cache the tool list.
//
// [Models] keeps that set live: it reads every host's model list on an
// interval and on demand, asks /api/show for capabilities and context length
// once per model digest, and hands the whole set to the router with one
// [calls.Router.Sync], so that a refresh is one diff and one list_changed.
// A host going down takes its models with it (after a second failed listing
// in a row; until then they stay, marked unavailable); its return brings
// them back. No Ollama at all is a normal state: the generic tools stay and
// say so.
//
// Model calls stream from Ollama, report progress as tokens arrive, stop the
// upstream request the moment the caller cancels, queue per model, and go to
// the least busy host that has the model. Failures the calling model can act
// on (an unknown or removed model, one that fails to load, an input too long
// for its context, a host that went away) come back as tool errors that say
// what happened and what to do.
package ollama

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// Group is the router group that holds every call this package registers.
const Group = "ollama"

// downRetry is how often a host that is down is tried again, at most.
const downRetry = 5 * time.Second

// downAfter is how many listings in a row a host must fail before its
// models are taken off the tool list. Until then they stay, marked
// unavailable (calls go to other hosts, or fail saying why), so that one
// slow answer or a quick Ollama restart does not make every client re-list
// its tools twice.
const downAfter = 2

// showParallel bounds concurrent /api/show requests during a refresh.
const showParallel = 8

// Models discovers the models of the configured Ollama hosts and keeps their
// calls registered in a router. It is safe for concurrent use.
type Models struct {
	cfg    Config
	router *calls.Router
	log    *slog.Logger
	hosts  []*host
	http   *http.Client
	kick   chan struct{}
	// first is closed when Run's first refresh has ended.
	first     chan struct{}
	firstOnce sync.Once

	refreshMu sync.Mutex // one refresh at a time

	mu     sync.RWMutex
	models map[string]*model        // by modelKey
	specs  []ToolSpec               // logical tools
	shows  map[string]*modelDetails // /api/show facts by digest
	gates  map[string]*gate         // per-model queues by modelKey
	// loadTimes is how long each model (by key) took to load last time.
	loadTimes map[string]time.Duration
	tools     map[string]toolTarget // reverse map: tool name -> what it runs

	syncMu sync.Mutex // builds and hands over one set of calls at a time
	// waiting are the logical tools whose model no host has, as last
	// logged; guarded by syncMu.
	waiting map[string]bool
}

// toolTarget is what one registered tool runs.
type toolTarget struct {
	Kind  string // "chat", "embed", or "generic"
	Model string // model key; "" for generic tools
	Spec  *ToolSpec
}

// New returns Models for cfg, with the generic tools already registered in
// r. It does not contact any host: Run and Refresh do. It fails only for a
// configuration error: a malformed host, or a logical tool ValidateTools
// refuses.
func New(cfg Config, r *calls.Router, log *slog.Logger) (*Models, error) {
	if r == nil {
		return nil, errors.New("ollama: nil router")
	}
	cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	urls, err := parseHosts(cfg.Hosts)
	if err != nil {
		return nil, fmt.Errorf("ollama: %w", err)
	}
	if err := validateSpecs(cfg.Tools); err != nil {
		return nil, fmt.Errorf("ollama: %w", err)
	}
	if _, err := ParseModelTools(string(cfg.ModelTools)); err != nil {
		return nil, fmt.Errorf("ollama: %w", err)
	}
	hc := newHTTPClient()
	m := &Models{
		cfg:    cfg,
		http:   hc,
		router: r,
		log:    log,
		kick:   make(chan struct{}, 1),
		first:  make(chan struct{}),
		models: map[string]*model{},
		specs:  slices.Clone(cfg.Tools),
		shows:  map[string]*modelDetails{},
		gates:  map[string]*gate{},
	}
	for _, u := range urls {
		m.hosts = append(m.hosts, newHost(u, hc))
	}
	if err := ValidateBackends(cfg.Backends); err != nil {
		return nil, fmt.Errorf("ollama: %w", err)
	}
	for _, b := range cfg.Backends {
		h, err := newBackendHost(b, hc)
		if err != nil {
			return nil, fmt.Errorf("ollama: %w", err)
		}
		m.hosts = append(m.hosts, h)
	}
	m.sync()
	return m, nil
}

// newHTTPClient is the client every host shares: quick to give up on a dead
// address, patient with a model that takes minutes to answer (the call's
// context bounds that), and keeping enough idle connections for parallel
// calls.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 100
	t.MaxIdleConnsPerHost = 32 // HTTP_PROXY still applies, except to loopback hosts
	return &http.Client{Transport: t}
}

// Run refreshes the model list now and then every RefreshInterval (more
// often while a host is down), and whenever a call finds a host gone, until
// ctx is done. It returns nil then; it never fails because a host is down.
func (m *Models) Run(ctx context.Context) error {
	defer m.http.CloseIdleConnections()
	for {
		if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
			m.log.Debug("ollama refresh", "err", err)
		}
		m.firstOnce.Do(func() { close(m.first) })
		wait := m.cfg.RefreshInterval
		if m.anyDown() {
			wait = min(wait, downRetry)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-m.kick:
			t.Stop()
		}
	}
}

// Discovered returns a channel closed when Run's first refresh has ended,
// whether the hosts answered or not: from then on the tool set holds the
// models the hosts had, so a program can wait for it before the first
// tools/list.
func (m *Models) Discovered() <-chan struct{} { return m.first }

// FirstListWait is how long a program should hold its first tool list for
// the hosts' first answer (WaitDiscovered): long enough for a local Ollama,
// short enough that a host that hangs does not hold the tools of the
// others. Diagnose warns of a host slower than this.
const FirstListWait = 3 * time.Second

// WaitDiscovered waits until Run's first refresh has ended (Discovered), at
// most d, or until ctx is done. It reports whether the refresh ended.
func (m *Models) WaitDiscovered(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-m.first:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// kickRefresh asks Run for a refresh soon, without waiting.
func (m *Models) kickRefresh() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *Models) anyDown() bool {
	for _, h := range m.hosts {
		if !h.isUp() {
			return true
		}
	}
	return false
}

// Hosts reports what the last refresh saw of each host, in configuration
// order.
func (m *Models) Hosts() []HostStatus {
	out := make([]HostStatus, len(m.hosts))
	for i, h := range m.hosts {
		out[i] = h.status()
	}
	return out
}

// SetTools replaces the logical tools (after the configuration file
// changed) and registers those whose model exists. It is whole or nothing:
// when any entry is invalid (see ValidateTools) it returns the error and
// keeps the tools in use.
func (m *Models) SetTools(specs []ToolSpec) error {
	if err := validateSpecs(specs); err != nil {
		return fmt.Errorf("ollama: %w", err)
	}
	m.mu.Lock()
	m.specs = slices.Clone(specs)
	m.mu.Unlock()
	m.sync()
	return nil
}

// ValidateTools checks logical tool entries as New and SetTools do: a
// valid, unique name that is not a built-in tool's, a valid model name, and
// options Ollama knows with values of the right type. The error names each
// bad entry by index and tool.
func ValidateTools(specs []ToolSpec) error { return validateSpecs(specs) }

func validateSpecs(specs []ToolSpec) error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range specs {
		switch {
		case !calls.NamePattern.MatchString(s.Tool):
			errs = append(errs, fmt.Errorf("tools[%d]: tool name %q must match %s", i, s.Tool, calls.NamePattern))
		case isGeneric(s.Tool):
			errs = append(errs, fmt.Errorf("tools[%d]: %q is a built-in tool name; choose another", i, s.Tool))
		case seen[s.Tool]:
			errs = append(errs, fmt.Errorf("tools[%d]: tool %q is defined twice", i, s.Tool))
		case strings.TrimSpace(s.Model) == "":
			errs = append(errs, fmt.Errorf("tools[%d] (%s): model is empty", i, s.Tool))
		case !validModelName(s.Model):
			errs = append(errs, fmt.Errorf("tools[%d] (%s): model %q is not a valid model name", i, s.Tool, s.Model))
		}
		seen[s.Tool] = true
		if _, err := checkOptions(s.Options, nil); err != nil {
			errs = append(errs, fmt.Errorf("tools[%d] (%s): %w", i, s.Tool, err))
		}
	}
	return errors.Join(errs...)
}

// Refresh reads every host's model list now, updates the registered calls,
// and returns when they are in the router. The error joins the hosts that
// could not be listed; the calls are updated either way.
func (m *Models) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()

	var wg sync.WaitGroup
	errs := make([]error, len(m.hosts))
	for i, h := range m.hosts {
		wg.Go(func() {
			if errs[i] = m.listHost(ctx, h); errs[i] == nil {
				if err := h.readLoaded(ctx); err != nil && ctx.Err() == nil {
					m.log.Debug("ollama /api/ps", "host", h.name, "err", err)
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	m.showMissing(ctx)

	// Merge the hosts' listings into one model per name.
	models := map[string]*model{}
	used := map[string]bool{}
	m.mu.RLock()
	for _, h := range m.hosts {
		h.mu.Lock()
		tags := h.tags // a down host's models stay for downAfter listings, unroutable
		h.mu.Unlock()
		for _, t := range tags {
			d := m.shows[showKey(h, t)]
			caps := t.Capabilities
			if d != nil && len(caps) == 0 {
				caps = d.Capabilities
			}
			if len(caps) == 0 {
				continue // neither the listing nor /api/show said what it can do
			}
			used[showKey(h, t)] = true
			key := modelKey(t.Name)
			if h.oa != nil {
				key = backendKey(h.oa.cfg.Name, t.Name)
			}
			if mod, ok := models[key]; ok {
				if !slices.Contains(mod.hosts, h) {
					mod.hosts = append(mod.hosts, h)
				}
				continue
			}
			mod := &model{
				Name: t.Name, Digest: t.Digest, Size: t.Size,
				Family: t.Details.Family, ParameterSize: t.Details.ParameterSize,
				Quantization: t.Details.QuantizationLevel, Format: t.Details.Format,
				Capabilities: slices.Clone(caps), hosts: []*host{h},
				ContextLength: t.contextLength,
			}
			if h.oa != nil {
				mod.backend = h.oa.cfg.Name
			}
			if d != nil {
				mod.ContextLength, mod.EmbeddingLength, mod.KVBytesPerToken = d.ContextLength, d.EmbeddingLength, d.KVBytesPerToken
				mod.ThinkLevels = d.ThinkLevels
			}
			// A backend maps a level to reasoning_effort, which OpenAI-
			// compatible servers take.
			mod.ThinkLevels = mod.ThinkLevels || mod.backend != ""
			models[key] = mod
		}
	}
	m.mu.RUnlock()

	m.mu.Lock()
	old := m.models
	m.models = models
	for k := range m.shows {
		if !used[k] {
			delete(m.shows, k)
		}
	}
	m.mu.Unlock()
	m.logModelChanges(old, models)
	m.sync()
	return errors.Join(errs...)
}

// listHost reads one host's listing and records the outcome on the host.
func (m *Models) listHost(ctx context.Context, h *host) error {
	tags, err := h.list(ctx)
	if err != nil && ctx.Err() != nil {
		// Stopping (membrane is shutting down, or never got going): the
		// host said nothing about itself, so record and log nothing.
		return ctx.Err()
	}
	h.mu.Lock()
	wasUp, first := h.up, !h.listed
	h.listed = true
	if err != nil {
		h.up, h.err = false, h.describeErr(err)
		if h.fails++; h.fails >= downAfter {
			h.tags = nil
		}
	} else {
		h.up, h.err, h.tags, h.fails = true, "", tags, 0
	}
	h.mu.Unlock()
	switch {
	case err != nil && (wasUp || first):
		m.log.Warn("ollama host down", "host", h.name, "err", h.describeErr(err))
	case err == nil && !wasUp:
		m.log.Info("ollama host up", "host", h.name, "models", len(tags))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", h.name, err)
	}
	return nil
}

// showKey is the cache key of a listed model's /api/show facts: its digest,
// which names its exact content, or the host and name when a host sent
// none.
func showKey(h *host, t tagModel) string {
	if t.Digest != "" {
		return t.Digest
	}
	return h.name + "|" + t.Name
}

// showMissing asks /api/show about every listed model whose digest is not
// cached yet, a few at a time.
func (m *Models) showMissing(ctx context.Context) {
	type job struct {
		h   *host
		t   tagModel
		key string
	}
	var jobs []job
	queued := map[string]bool{}
	m.mu.RLock()
	for _, h := range m.hosts {
		if h.oa != nil {
			continue // a backend's listing says all there is
		}
		h.mu.Lock()
		tags := h.tags
		h.mu.Unlock()
		for _, t := range tags {
			k := showKey(h, t)
			if _, ok := m.shows[k]; ok || queued[k] {
				continue
			}
			queued[k] = true
			jobs = append(jobs, job{h, t, k})
		}
	}
	m.mu.RUnlock()
	if len(jobs) == 0 {
		return
	}
	sem := make(chan struct{}, showParallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d, err := j.h.show(ctx, j.t.Name)
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("ollama show", "host", j.h.name, "model", j.t.Name, "err", err)
				}
				return
			}
			m.mu.Lock()
			m.shows[j.key] = d
			m.mu.Unlock()
		})
	}
	wg.Wait()
}

func (m *Models) logModelChanges(old, cur map[string]*model) {
	for k, mod := range cur {
		if _, ok := old[k]; !ok {
			m.log.Info("ollama model added", "model", mod.Name, "hosts", strings.Join(mod.hostNames(), ","), "capabilities", strings.Join(mod.Capabilities, ","))
		}
	}
	for k, mod := range old {
		if _, ok := cur[k]; !ok {
			m.log.Info("ollama model removed", "model", mod.Name)
		}
	}
}

// timeoutFor is the time limit of a tool: its spec's, or CallTimeout.
func (m *Models) timeoutFor(spec *ToolSpec) time.Duration {
	if spec != nil && spec.Timeout > 0 {
		return time.Duration(spec.Timeout)
	}
	return m.cfg.CallTimeout
}

// lookup returns the live model for a key.
func (m *Models) lookup(key string) (*model, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mod, ok := m.models[key]
	return mod, ok
}

// snapshot returns the live models sorted by name.
func (m *Models) snapshot() []*model {
	m.mu.RLock()
	out := make([]*model, 0, len(m.models))
	for _, mod := range m.models {
		out = append(out, mod)
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b *model) int { return strings.Compare(a.key(), b.key()) })
	return out
}

// ToolModel returns the model a registered tool runs, by the tool's name:
// the reverse of the naming. ok is false for a name this package does not
// own or a generic tool.
func (m *Models) ToolModel(tool string) (model string, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tools[tool]
	if !ok || t.Model == "" {
		return "", false
	}
	if mod, ok := m.models[t.Model]; ok {
		return mod.displayName(), true
	}
	return "", false
}

// sync builds the calls for the current models and logical tools and makes
// them the router's "ollama" group, in one change.
func (m *Models) sync() {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	mods := m.snapshot()
	m.mu.RLock()
	specs := slices.Clone(m.specs)
	m.mu.RUnlock()

	var chatModels, embedModels []string
	for _, mod := range mods {
		if mod.canChat() {
			chatModels = append(chatModels, mod.displayName())
		}
		if mod.canEmbed() {
			embedModels = append(embedModels, mod.displayName())
		}
	}
	chatNames := assignModelNames(prefixChat, mods, (*model).canChat)
	embedNames := assignModelNames(prefixEmbed, mods, (*model).canEmbed)

	anyUp := false
	for _, h := range m.hosts {
		h.mu.Lock()
		anyUp = anyUp || h.up
		h.mu.Unlock()
	}
	waiting := map[string]bool{}
	defer func() {
		if anyUp {
			m.waiting = waiting
		}
	}()

	var cs []calls.Call
	targets := map[string]toolTarget{}
	add := func(c calls.Call, t toolTarget) {
		if _, taken := targets[c.Name]; taken {
			m.log.Warn("ollama tool name taken; skipping", "tool", c.Name, "model", t.Model)
			return
		}
		targets[c.Name] = t
		cs = append(cs, c)
	}
	mode := m.cfg.ModelTools
	if mode != ModelToolsOff {
		for _, c := range m.genericCalls() {
			if mode == ModelToolsGeneric {
				// The model argument lists the models there are, so
				// that a small model need not guess or call
				// ollama_models first.
				switch c.Name {
				case ToolChat:
					c.InputSchema = withModelEnum(c.InputSchema, chatModels)
				case ToolEmbed:
					c.InputSchema = withModelEnum(c.InputSchema, embedModels)
				}
			}
			add(c, toolTarget{Kind: "generic"})
		}
	}
	for _, mod := range mods {
		key := mod.key()
		if mod.canChat() && mode == ModelToolsPerModel {
			add(m.chatCall(chatNames[key], mod, nil), toolTarget{Kind: "chat", Model: key})
		}
		if mod.canEmbed() && mode == ModelToolsPerModel {
			add(m.embedCall(embedNames[key], mod, nil), toolTarget{Kind: "embed", Model: key})
		}
	}
	for i := range specs {
		s := &specs[i]
		if !calls.NamePattern.MatchString(s.Tool) || isGeneric(s.Tool) {
			continue
		}
		key := modelKey(s.Model)
		var mod *model
		for _, x := range mods {
			if x.key() == key || x.backend != "" && x.displayName() == s.Model {
				mod = x
			}
		}
		if mod == nil {
			// Registered once the model appears. Said once, and only when
			// some host answered: with every host down, that is the news.
			if anyUp {
				if !m.waiting[s.Tool] {
					m.log.Warn("ollama logical tool not served: no host has its model", "tool", s.Tool, "model", s.Model)
				}
				waiting[s.Tool] = true
			}
			continue
		}
		if _, taken := targets[s.Tool]; taken {
			m.log.Warn("ollama logical tool name taken by a model tool; skipping", "tool", s.Tool)
			continue
		}
		switch {
		case mod.canChat():
			add(m.chatCall(s.Tool, mod, s), toolTarget{Kind: "chat", Model: key, Spec: s})
		case mod.canEmbed():
			add(m.embedCall(s.Tool, mod, s), toolTarget{Kind: "embed", Model: key, Spec: s})
		}
	}

	m.mu.Lock()
	m.tools = targets
	m.mu.Unlock()
	ch, err := m.router.Sync(Group, cs)
	if err != nil {
		m.log.Warn("ollama sync", "err", err)
	}
	if !ch.Empty() {
		m.log.Debug("ollama tools changed", "added", len(ch.Added), "removed", len(ch.Removed))
	}
}
