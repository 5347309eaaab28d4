// Package metrics exports a router's calls as Prometheus metrics, through
// github.com/prometheus/client_golang. A Metrics is a calls.Observer for the
// counters and histograms, plus collectors that read the router's live
// gauges (calls in flight, sessions open) when scraped.
//
// Labels are bounded: the call's name and kind (calls are registered, not
// made up by clients), the outcome, the model and host of model calls, the
// reason a sandbox killed a process. Never arguments or session IDs.
package metrics

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/membrane-mcp/membrane/calls"
)

// Host is one model server's state, for the hosts-up and models gauges.
type Host struct {
	URL    string
	Up     bool
	Models int
	// Loaded are the models the host has in memory now, for
	// membrane_model_loaded.
	Loaded []string
}

// Options configures New. The zero value is usable.
type Options struct {
	// Registry is where the metrics are registered. Nil means a new
	// registry that also holds the Go runtime and process collectors.
	Registry *prometheus.Registry
	// Hosts, when set, is read at each scrape for membrane_model_host_up
	// and membrane_model_host_models.
	Hosts func() []Host
	// Queues, when set, is read at each scrape for
	// membrane_model_queue_depth: the calls waiting for a slot, by model.
	Queues func() map[string]int
}

// Metrics holds membrane's metrics. Add it to the router with
// Router.Observe (or RouterOptions.Observers) and serve Handler.
type Metrics struct {
	reg *prometheus.Registry

	calls       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	busy        *prometheus.CounterVec
	start       prometheus.Histogram
	kills       *prometheus.CounterVec
	limitHits   map[string]prometheus.Counter
	firstToken  *prometheus.HistogramVec
	tokenRate   *prometheus.HistogramVec
	tokens      *prometheus.CounterVec
	queueWait   *prometheus.HistogramVec
	listChanged prometheus.Counter
	sessions    prometheus.Counter

	// children caches the series of each (call, kind, outcome), so that
	// a call costs one map lookup instead of a label hash and lookup in
	// each vector. At most maxChildren entries; past them, the vectors.
	mu       sync.Mutex
	children map[childKey]*child
}

// childKey names one cached set of series.
type childKey struct {
	call    string
	kind    calls.Kind
	outcome calls.Outcome
}

// child is the series a finished call of one childKey adds to.
type child struct {
	calls    prometheus.Counter
	duration prometheus.Observer
	busy     prometheus.Counter // nil unless the outcome is busy
}

// maxChildren bounds the cache: calls are registered, not named by
// clients, so a server rarely has more than a few hundred (call, kind,
// outcome) triples; a server with more goes on counting, uncached.
const maxChildren = 4096

var _ calls.Observer = (*Metrics)(nil)

// KillReasons are the reasons of membrane_sandbox_kills_total, as
// calls.RunInfo.Killed gives them; each has its series from the start.
var KillReasons = []string{"timeout", "memory", "quota", "cancel"}

// LimitNames are the limits of membrane_sandbox_limit_hits_total, as
// calls.RunInfo.Limits names them: the limits a call runs into without
// being killed. Each has its series from the start; no other name is
// counted.
var LimitNames = []string{calls.LimitProcesses, calls.LimitOutput}

// New returns the metrics of r, registered in opts.Registry.
func New(r *calls.Router, opts *Options) *Metrics {
	var o Options
	if opts != nil {
		o = *opts
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Metrics{
		reg: reg,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "membrane_calls_total",
			Help: "Calls finished, by call, kind (tool or model) and outcome (ok, tool_error, error, busy, cancelled, timeout).",
		}, []string{"call", "kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "membrane_call_duration_seconds",
			Help:    "How long calls took, by call and kind.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"call", "kind"}),
		busy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "membrane_busy_rejections_total",
			Help: "Calls turned away because too many were running or waiting, by call.",
		}, []string{"call"}),
		start: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "membrane_sandbox_start_seconds",
			Help:    "Time from a sandbox run request to the process running.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		kills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "membrane_sandbox_kills_total",
			Help: "Sandboxed processes the sandbox killed, by reason (timeout, memory, quota, cancel).",
		}, []string{"reason"}),
		limitHits: map[string]prometheus.Counter{},
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "membrane_model_time_to_first_token_seconds",
			Help:    "Time from a model request to its first token, by model.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"model"}),
		tokenRate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "membrane_model_tokens_per_second",
			Help:    "Generation speed of model calls, by model.",
			Buckets: []float64{1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640},
		}, []string{"model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "membrane_model_tokens_total",
			Help: "Tokens of model calls, by model and direction (in: the prompt, out: generated).",
		}, []string{"model", "direction"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "membrane_model_queue_wait_seconds",
			Help:    "Time model calls waited before their request went out (for a free slot on their model, then for their turn on the host), by model.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"model"}),
		listChanged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "membrane_tools_list_changed_total",
			Help: "Changes of the tool set, each sent to every connected session as notifications/tools/list_changed.",
		}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "membrane_sessions_opened_total",
			Help: "Client sessions opened.",
		}),
	}
	reg.MustRegister(m.calls, m.duration, m.busy, m.start, m.kills, m.firstToken, m.tokenRate, m.tokens, m.queueWait, m.listChanged, m.sessions)
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "membrane_sandbox_limit_hits_total",
		Help: "Sandboxed calls that ran into a limit without being killed for it, by limit (processes: a fork was refused; output: stdout or stderr was cut at the cap).",
	}, []string{"limit"})
	reg.MustRegister(hits)
	for _, l := range LimitNames {
		m.limitHits[l] = hits.WithLabelValues(l) // each limit's series from 0
	}
	for _, reason := range KillReasons {
		m.kills.WithLabelValues(reason) // each reason's series from 0
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "membrane_calls_in_flight",
		Help: "Calls running now.",
	}, func() float64 { return float64(r.InFlight()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "membrane_sessions_open",
		Help: "Client sessions open now.",
	}, func() float64 { return float64(r.SessionsOpen()) }))
	reg.MustRegister(&routerCollector{r: r, hosts: o.Hosts, queues: o.Queues})
	return m
}

// ObserverName names the metrics in the router's observer statistics.
func (m *Metrics) ObserverName() string { return "metrics" }

// Wants says which events the metrics count.
func (m *Metrics) Wants(t calls.EventType) bool {
	switch t {
	case calls.EventCallFinished, calls.EventToolsChanged, calls.EventSessionOpened:
		return true
	}
	return false
}

// Registry returns the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe counts one event.
func (m *Metrics) Observe(e calls.Event) {
	switch e.Type {
	case calls.EventCallFinished:
	case calls.EventToolsChanged:
		m.listChanged.Inc()
		return
	case calls.EventSessionOpened:
		m.sessions.Inc()
		return
	default:
		return
	}
	c := m.child(childKey{e.Call, e.Kind, e.Outcome})
	c.calls.Inc()
	c.duration.Observe(e.Duration.Seconds())
	if c.busy != nil {
		c.busy.Inc()
	}
	if e.Info == nil {
		return
	}
	if run := e.Info.Run; run != nil {
		if run.Start > 0 {
			m.start.Observe(run.Start.Seconds())
		}
		if run.Killed != "" {
			m.kills.WithLabelValues(run.Killed).Inc()
		}
		for _, l := range run.Limits {
			if c := m.limitHits[l]; c != nil {
				c.Inc()
			}
		}
	}
	if mi := e.Info.Model; mi != nil && mi.Model != "" {
		if mi.FirstToken > 0 {
			m.firstToken.WithLabelValues(mi.Model).Observe(mi.FirstToken.Seconds())
		}
		if mi.Generation > 0 && mi.TokensOut > 0 {
			m.tokenRate.WithLabelValues(mi.Model).Observe(float64(mi.TokensOut) / mi.Generation.Seconds())
		}
		if mi.QueueWait > 0 {
			m.queueWait.WithLabelValues(mi.Model).Observe(mi.QueueWait.Seconds())
		}
		m.tokens.WithLabelValues(mi.Model, "in").Add(float64(mi.TokensIn))
		m.tokens.WithLabelValues(mi.Model, "out").Add(float64(mi.TokensOut))
	}
}

// child returns the series of k, cached when there is room.
func (m *Metrics) child(k childKey) *child {
	m.mu.Lock()
	c := m.children[k]
	m.mu.Unlock()
	if c != nil {
		return c
	}
	kind := k.kind.String()
	c = &child{
		calls:    m.calls.WithLabelValues(k.call, kind, k.outcome.String()),
		duration: m.duration.WithLabelValues(k.call, kind),
	}
	if k.outcome == calls.OutcomeBusy {
		c.busy = m.busy.WithLabelValues(k.call)
	}
	m.mu.Lock()
	if m.children == nil {
		m.children = map[childKey]*child{}
	}
	if len(m.children) < maxChildren {
		m.children[k] = c
	}
	m.mu.Unlock()
	return c
}

// routerCollector reads, at each scrape, the observers' drop counts and the
// model hosts' state.
type routerCollector struct {
	r      *calls.Router
	hosts  func() []Host
	queues func() map[string]int
}

var (
	descDropped = prometheus.NewDesc("membrane_observer_events_dropped_total",
		"Events an observer (ledger, store, metrics) lost because it fell behind.", []string{"observer"}, nil)
	descHostUp = prometheus.NewDesc("membrane_model_host_up",
		"Whether a model server answers (1) or not (0), by host.", []string{"host"}, nil)
	descHostModels = prometheus.NewDesc("membrane_model_host_models",
		"Models a model server holds, by host.", []string{"host"}, nil)
	descLoaded = prometheus.NewDesc("membrane_model_loaded",
		"1 for each model a model server has in memory (Ollama's /api/ps), by host and model.", []string{"host", "model"}, nil)
	descQueueDepth = prometheus.NewDesc("membrane_model_queue_depth",
		"Model calls waiting now (for a free slot on their model or their turn on the host), by model; 0 for a served model with none waiting.", []string{"model"}, nil)
)

func (c *routerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDropped
	ch <- descHostUp
	ch <- descHostModels
	ch <- descLoaded
	ch <- descQueueDepth
}

func (c *routerCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]int{}
	for _, s := range c.r.ObserverStats() {
		name := s.Name
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s#%d", name, seen[name])
		}
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped), name)
	}
	if c.queues != nil {
		for model, n := range c.queues() {
			ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(n), model)
		}
	}
	if c.hosts == nil {
		return
	}
	for _, h := range c.hosts() {
		up := 0.0
		if h.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descHostUp, prometheus.GaugeValue, up, h.URL)
		ch <- prometheus.MustNewConstMetric(descHostModels, prometheus.GaugeValue, float64(h.Models), h.URL)
		for _, name := range h.Loaded {
			ch <- prometheus.MustNewConstMetric(descLoaded, prometheus.GaugeValue, 1, h.URL, name)
		}
	}
}
