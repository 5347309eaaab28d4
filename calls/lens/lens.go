// Package lens is membrane's live web view: a single page, embedded in the
// binary, that shows the hosts and models, the tools, every session's calls
// as they happen (over Server-Sent Events, resumable), the stored history,
// and plots of latency, traffic, token rates and sandbox kills.
//
// A Lens is two things: a calls.Observer, registered on the router, that
// keeps a bounded ring of recent events, and an http.Handler for everything
// under Prefix. It never blocks a call: Observe runs on the observer's own
// goroutine, and a page that reads slowly only falls behind in the ring; one
// that falls out of it is told to reload.
//
// The handler is read-only. It answers data only to a browser that logged
// in with the server's token (exchanged for an HttpOnly, SameSite=Strict
// cookie, so that no token sits in a URL) or to a request with that bearer
// token. Every answer carries a strict Content-Security-Policy: the page
// loads only its own script and style, runs no inline script and no eval.
// The Host and Origin checks of the listener it is mounted on must run
// before it (see mcp.HTTPOptions); the handler itself also refuses a
// cross-site Origin.
package lens

import (
	"crypto/rand"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/scrub"
	"github.com/membrane-mcp/membrane/calls/store"
)

// Defaults used where Options leaves a field zero.
const (
	DefaultPrefix       = "/lens/"
	DefaultReplayEvents = 16384
	DefaultMaxLogins    = 256
	DefaultLoginTTL     = 12 * time.Hour
	DefaultMaxStreams   = 32
	DefaultCoalesce     = 100 * time.Millisecond
)

// Host is one model server as the overview shows it.
type Host struct {
	URL    string   `json:"url"`
	Up     bool     `json:"up"`
	Err    string   `json:"error,omitempty"`
	Models []string `json:"models"`
	// Loaded lists the models loaded in memory now (Ollama's /api/ps);
	// empty where none are, or where the host does not say (an
	// OpenAI-compatible backend).
	Loaded []string `json:"loaded,omitempty"`
}

// Model is what the tools view shows of the model behind a model tool.
type Model struct {
	Name          string   `json:"name"`
	Hosts         []string `json:"hosts"`
	Family        string   `json:"family,omitempty"`
	ParameterSize string   `json:"parameter_size,omitempty"`
	Quantization  string   `json:"quantization,omitempty"`
	Size          int64    `json:"size,omitempty"`
	ContextLength int      `json:"context_length,omitempty"`
	Capabilities  []string `json:"capabilities,omitempty"`
}

// Sandbox is the sandbox's configuration as the overview shows it.
type Sandbox struct {
	// Mode is the mode asked for ("auto", "bwrap", "rlimit", "off").
	Mode string `json:"mode"`
	// Isolation says what it achieves ("bubblewrap: no network, private
	// filesystem view, rlimits").
	Isolation string `json:"isolation"`
}

// Tools is the live set of calls, as a calls.Router holds it.
type Tools interface {
	List() []calls.Call
	Lookup(name string) (calls.Call, bool)
	Len() int
	SessionsOpen() int64
	InFlight() int64
}

// Options configures a Lens. The zero value serves an empty page that
// refuses every login.
type Options struct {
	// Prefix is where the handler is mounted; it must start and end with
	// "/". Empty means DefaultPrefix.
	Prefix string
	// Verify checks a token: it returns the user the token belongs to (a
	// name safe to show) or false. Nil refuses every token, unless Open.
	Verify func(token string) (user string, ok bool)
	// Open serves data without a login. Only for a loopback listener
	// that asks no token of MCP clients either.
	Open bool
	// Tools is the router whose calls the tools view lists. Nil lists
	// none.
	Tools Tools
	// Store answers the history, the plots and call details. Nil means
	// the page shows live calls only.
	Store *store.Store
	// Hosts reports the model servers. Nil reports none.
	Hosts func() []Host
	// ModelOf returns the model behind a tool, for the tools view. Nil
	// shows no models.
	ModelOf func(tool string) (Model, bool)
	// Queues reports the calls waiting for a model slot, by model, for
	// the overview. Nil reports none.
	Queues func() map[string]int
	// Sandbox describes the sandbox for the overview.
	Sandbox Sandbox
	// Scrubber hides secrets in the argument previews of live events.
	// Nil means scrub.New(nil).
	Scrubber *scrub.Scrubber
	// ReplayEvents bounds the ring of recent events a reconnecting page
	// resumes from. Zero means DefaultReplayEvents.
	ReplayEvents int
	// MaxLogins bounds the logged-in browser sessions; past it the oldest
	// is logged out. Zero means DefaultMaxLogins.
	MaxLogins int
	// LoginTTL is how long a login lasts. Zero means DefaultLoginTTL.
	LoginTTL time.Duration
	// MaxStreams bounds the live event streams open at once; one more
	// gets 503. Zero means DefaultMaxStreams.
	MaxStreams int
	// Coalesce is the shortest time between two messages of one event
	// stream: events that arrive in between travel together. Zero means
	// DefaultCoalesce.
	Coalesce time.Duration
	// Logger receives the Lens's own trouble. Nil discards.
	Logger *slog.Logger
}

//go:embed assets
var assets embed.FS

// Lens is the live view. Create it with New, register it with
// Router.Observe, and mount it at its Prefix.
type Lens struct {
	o      Options
	scr    *scrub.Scrubber
	log    *slog.Logger
	static http.Handler

	ring    *ring
	epoch   string // this Lens's prefix of stream ids
	images  *imageCache
	fails   failures
	logins  *logins
	streams atomic.Int64
	rate    rate
	// live tracks the calls started and not yet finished, for the
	// overview's per-tool in-flight counts.
	mu   sync.Mutex
	live map[string]int
}

var _ calls.Observer = (*Lens)(nil)

// New returns a Lens.
func New(opts *Options) *Lens {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix = "/" + strings.Trim(o.Prefix, "/") + "/"
	}
	if o.ReplayEvents <= 0 {
		o.ReplayEvents = DefaultReplayEvents
	}
	if o.MaxLogins <= 0 {
		o.MaxLogins = DefaultMaxLogins
	}
	if o.LoginTTL <= 0 {
		o.LoginTTL = DefaultLoginTTL
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.Coalesce <= 0 {
		o.Coalesce = DefaultCoalesce
	}
	l := &Lens{o: o, scr: o.Scrubber, log: o.Logger, live: map[string]int{}}
	if l.scr == nil {
		l.scr = scrub.New(nil)
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(assets, "assets")
	l.static = http.FileServerFS(sub)
	l.ring = newRing(o.ReplayEvents)
	l.epoch = rand.Text()[:8]
	l.images = newImageCache(maxCachedImages, maxCachedImageBytes)
	l.logins = newLogins(o.MaxLogins, o.LoginTTL)
	return l
}

// Prefix returns the path the handler expects to be mounted at.
func (l *Lens) Prefix() string { return l.o.Prefix }

// ObserverName names the Lens in the router's observer statistics.
func (l *Lens) ObserverName() string { return "lens" }

// Observe keeps e in the ring and wakes the open streams.
func (l *Lens) Observe(e calls.Event) {
	switch e.Type {
	case calls.EventCallStarted:
		l.mu.Lock()
		l.live[e.Call]++
		l.mu.Unlock()
		if l.o.Store != nil {
			l.images.keep(l.o.Store.CallID(e.ID), e.Arguments)
		}
	case calls.EventCallFinished:
		l.mu.Lock()
		if l.live[e.Call]--; l.live[e.Call] <= 0 {
			delete(l.live, e.Call)
		}
		l.mu.Unlock()
		l.rate.add(e.Time, e.Outcome.Failed())
	}
	l.ring.add(l.encode(&e))
}

// inFlight returns a copy of the per-tool counts of running calls.
func (l *Lens) inFlight() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.live))
	for k, v := range l.live {
		out[k] = v
	}
	return out
}

// securityHeaders go on every answer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// CSP is the Content-Security-Policy of every answer: the page's own
// script, style and data, images also from data: URLs, nothing inline,
// no eval, no frames, no form posts elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP serves the page, its assets and its API under Prefix.
func (l *Lens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	path, ok := strings.CutPrefix(r.URL.Path, l.o.Prefix)
	if !ok {
		if r.URL.Path+"/" == l.o.Prefix {
			http.Redirect(w, r, l.o.Prefix, http.StatusFound)
			return
		}
		http.NotFound(w, r)
		return
	}
	if !sameOriginOrNone(r) {
		http.Error(w, "Forbidden: a cross-site request", http.StatusForbidden)
		return
	}
	if api, ok := strings.CutPrefix(path, "api/"); ok {
		l.serveAPI(w, r, api)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	switch path {
	case "", "lens.js", "lens.css", "favicon.svg":
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + path
	l.static.ServeHTTP(w, r2)
}

// sameOriginOrNone refuses what a browser marks as a cross-site request.
// The listener's Origin check runs first; this covers a Lens mounted
// without one.
func sameOriginOrNone(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return strings.EqualFold(origin, scheme+r.Host)
}
