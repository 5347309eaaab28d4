// Package httpget is membrane's http_get tool: a model reads a web page
// without being handed a sandbox with a network.
//
// The fetch runs on the host, so the tool carries its own guard:
//
//   - Only URLs the allow-list names are fetched (hosts, subdomains or URL
//     prefixes); nothing is allowed until one is configured. "*" allows
//     every public host.
//   - Only http and https, only the scheme's default port unless an entry
//     names another, no user information in the URL.
//   - Every address a connection would go to is checked after DNS
//     resolution, and the connection is made to exactly the address that
//     was checked (one lookup per connection, so a DNS answer that changes
//     between check and dial cannot swap in another). Loopback, private,
//     link-local, carrier-grade NAT, multicast, unspecified and cloud
//     metadata addresses are refused, IPv4-mapped and NAT64 forms included.
//     The dialer checks the socket's address once more before it connects.
//   - Each redirect hop goes through the same checks, up to a limit.
//   - The time, the body size, the response header size and the content
//     types are bounded. Request headers (credentials) come only from the
//     configuration, for the URLs it names, never from the model.
//
// HTML comes back as Markdown, with the final URL, the status and the
// content type. Pages are cached per URL for a short while.
package httpget

import (
	"bytes"
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	htmltomarkdown "github.com/JohannesKaufmann/html-to-markdown/v2"
	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"golang.org/x/net/html/charset"

	"github.com/membrane-mcp/membrane/calls"
)

// Name is the tool's name.
const Name = "http_get"

// Defaults used where Options leaves a field zero.
const (
	DefaultMaxRedirects   = 5
	DefaultMaxBodyBytes   = 2 << 20
	DefaultMaxTextBytes   = 100 << 10
	DefaultTimeout        = 20 * time.Second
	DefaultMaxHeaderBytes = 64 << 10
	DefaultCacheTTL       = time.Minute
	DefaultCacheEntries   = 64
	DefaultConcurrency    = 4
)

// DefaultContentTypes are the media types fetched when Options.ContentTypes
// is empty: text, HTML, JSON and XML. An entry ending in "/*" matches a
// whole type; "+json" and "+xml" match structured-syntax suffixes.
var DefaultContentTypes = []string{"text/*", "application/xhtml+xml", "application/json", "application/xml", "+json", "+xml"}

// Header is a request header sent to the URLs an allow-list pattern names,
// such as an API key for one host.
type Header struct {
	// For is an allow-list pattern (a host, *.domain or a URL prefix);
	// the header goes only to URLs it matches, on every redirect hop.
	For string
	// Name and Value are the header.
	Name, Value string
}

// Resolver looks up a host's addresses. *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures a Getter. Zero fields take the defaults; an empty
// Allow makes New fail, since the tool is off until it is configured.
type Options struct {
	// Allow lists what may be fetched: "docs.python.org" (that host),
	// "*.example.com" (its subdomains), "example.com:8443" (that host on
	// that port), "https://go.dev/doc/" (a URL prefix, on a path segment
	// boundary), or "*" (every public host, default ports).
	Allow []string
	// Headers are sent with requests to the URLs they name.
	Headers []Header
	// MaxRedirects is how many redirects are followed. Zero means
	// DefaultMaxRedirects; negative means none.
	MaxRedirects int
	// MaxBodyBytes caps the body read; a longer one is cut and marked
	// truncated. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxTextBytes caps the text returned to the model. Zero means
	// DefaultMaxTextBytes.
	MaxTextBytes int
	// Timeout bounds one fetch from the first dial to the last byte,
	// redirects included. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxHeaderBytes caps the response headers. Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int64
	// ContentTypes lists the media types returned; others are refused.
	// Empty means DefaultContentTypes.
	ContentTypes []string
	// CacheTTL is how long a page is served from the cache. Zero means
	// DefaultCacheTTL; negative turns the cache off.
	CacheTTL time.Duration
	// CacheEntries bounds the cache. Zero means DefaultCacheEntries.
	CacheEntries int
	// Concurrency is how many fetches may run at once. Zero means
	// DefaultConcurrency.
	Concurrency int
	// Resolver looks up host names. Nil means net.DefaultResolver.
	Resolver Resolver
	// UserAgent is sent with every request. Empty means "membrane-http_get".
	UserAgent string
}

// ErrNoAllowList is returned by New when Options.Allow is empty.
var ErrNoAllowList = errors.New("httpget: no allow-list: http_get stays off until one names what may be fetched")

// Getter fetches pages under its options. It is safe for concurrent use.
type Getter struct {
	o       Options
	rules   []rule
	headers []headerRule
	types   []string
	client  *http.Client
	res     Resolver

	// route, in tests, carries a connection to a checked address
	// somewhere on loopback instead. Nil dials the address.
	route func(ctx context.Context, ap netip.AddrPort) (net.Conn, error)
	now   func() time.Time

	cache *pageCache
}

type headerRule struct {
	rule
	name, value string
}

// New returns a Getter, or an error naming the allow-list entry or header
// that is wrong.
func New(o Options) (*Getter, error) {
	if len(o.Allow) == 0 {
		return nil, ErrNoAllowList
	}
	g := &Getter{o: o, now: time.Now}
	for _, s := range o.Allow {
		r, err := parseRule(s)
		if err != nil {
			return nil, fmt.Errorf("httpget: allow-list entry %q: %w", s, err)
		}
		g.rules = append(g.rules, r)
	}
	for _, h := range o.Headers {
		r, err := parseRule(h.For)
		if err != nil {
			return nil, fmt.Errorf("httpget: header %s for %q: %w", h.Name, h.For, err)
		}
		if h.Name == "" || strings.ContainsAny(h.Name, " :\r\n") || strings.ContainsAny(h.Value, "\r\n") {
			return nil, fmt.Errorf("httpget: header for %q: want a name without spaces or colons and a one-line value", h.For)
		}
		g.headers = append(g.headers, headerRule{rule: r, name: http.CanonicalHeaderKey(h.Name), value: h.Value})
	}
	if g.o.MaxRedirects == 0 {
		g.o.MaxRedirects = DefaultMaxRedirects
	}
	if g.o.MaxBodyBytes <= 0 {
		g.o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if g.o.MaxTextBytes <= 0 {
		g.o.MaxTextBytes = DefaultMaxTextBytes
	}
	if g.o.Timeout <= 0 {
		g.o.Timeout = DefaultTimeout
	}
	if g.o.MaxHeaderBytes <= 0 {
		g.o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if g.o.CacheTTL == 0 {
		g.o.CacheTTL = DefaultCacheTTL
	}
	if g.o.CacheEntries <= 0 {
		g.o.CacheEntries = DefaultCacheEntries
	}
	if g.o.Concurrency <= 0 {
		g.o.Concurrency = DefaultConcurrency
	}
	if g.o.UserAgent == "" {
		g.o.UserAgent = "membrane-http_get"
	}
	g.types = g.o.ContentTypes
	if len(g.types) == 0 {
		g.types = DefaultContentTypes
	}
	g.res = o.Resolver
	if g.res == nil {
		g.res = net.DefaultResolver
	}
	if g.o.CacheTTL > 0 {
		g.cache = newPageCache(g.o.CacheEntries)
	}
	tr := &http.Transport{
		Proxy:                  nil, // never: a proxy would make the address checks moot
		DialContext:            g.dial,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: g.o.MaxHeaderBytes,
		MaxIdleConns:           16,
		IdleConnTimeout:        30 * time.Second,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
	g.client = &http.Client{Transport: tr, CheckRedirect: g.checkRedirect}
	return g, nil
}

// AllowsAll reports whether the allow-list holds "*", which the operator
// should be warned about.
func (g *Getter) AllowsAll() bool {
	for _, r := range g.rules {
		if r.all {
			return true
		}
	}
	return false
}

// Close closes idle connections.
func (g *Getter) Close() { g.client.CloseIdleConnections() }

// Page is what a fetch returns.
type Page struct {
	// URL is the URL as asked for, normalised; FinalURL is where the
	// redirects ended.
	URL      string `json:"url"`
	FinalURL string `json:"final_url"`
	Status   int    `json:"status"`
	// ContentType is the media type, without parameters.
	ContentType string `json:"content_type"`
	// Text is the body as text; HTML is turned into Markdown.
	Text string `json:"-"`
	// Bytes is how many body bytes were read.
	Bytes int `json:"bytes"`
	// Truncated is set when the body or the text was cut at a limit.
	Truncated bool `json:"truncated"`
	// Cached is set when the page came from the cache.
	Cached bool `json:"cached"`
}

// allowed reports whether the allow-list lets t be fetched.
func (g *Getter) allowed(t *target) bool {
	for i := range g.rules {
		if g.rules[i].match(t) {
			return true
		}
	}
	return false
}

// check is the gate every URL passes, the first and each redirect.
func (g *Getter) check(u *url.URL) (*target, error) {
	t, err := normalize(u)
	if err != nil {
		var be *BlockedError
		if errors.As(err, &be) {
			return nil, be
		}
		return nil, &BlockedError{URL: shown(u.String()), Reason: err.Error()}
	}
	if !g.allowed(t) {
		why := "the allow-list does not name it"
		if t.port != "" {
			why = "port " + t.port + " is not allowed unless an allow-list entry names it"
		}
		return nil, &BlockedError{URL: shown(u.String()), Reason: why}
	}
	return t, nil
}

func (g *Getter) checkRedirect(req *http.Request, via []*http.Request) error {
	if g.o.MaxRedirects < 0 || len(via) > g.o.MaxRedirects {
		return &BlockedError{URL: shown(req.URL.String()), Reason: fmt.Sprintf("more than %d redirects", max(g.o.MaxRedirects, 0))}
	}
	t, err := g.check(req.URL)
	if err != nil {
		return err
	}
	g.setHeaders(req, t)
	return nil
}

// setHeaders puts the configured headers that name t on req, and takes
// off those that do not (a redirect to another host keeps none).
func (g *Getter) setHeaders(req *http.Request, t *target) {
	for _, h := range g.headers {
		req.Header.Del(h.name)
	}
	for _, h := range g.headers {
		if h.match(t) {
			req.Header.Add(h.name, h.value)
		}
	}
}

// dial resolves host once, checks every address, and connects to a checked
// one: the address judged is the address dialled.
func (g *Getter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{a}
	} else {
		ips, err = g.res.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("http_get: resolve %s: %w", host, err)
		}
	}
	var (
		refused *BlockedError
		lastErr error
	)
	for _, a := range ips {
		if why := BlockedReason(a); why != "" {
			if refused == nil {
				refused = &BlockedError{URL: host, Addr: a, Reason: why}
			}
			continue
		}
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		var conn net.Conn
		if g.route != nil {
			conn, err = g.route(ctx, ap)
		} else {
			d := net.Dialer{Timeout: 10 * time.Second, Control: controlDial}
			conn, err = d.DialContext(ctx, "tcp", ap.String())
		}
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if refused != nil {
		return nil, refused
	}
	return nil, fmt.Errorf("http_get: %s has no addresses", host)
}

// Fetch gets raw under the guard. A refusal is a *BlockedError; a page with
// any status is a *Page.
func (g *Getter) Fetch(ctx context.Context, raw string) (*Page, error) {
	u, t, err := parseTarget(raw)
	if err != nil {
		return nil, err
	}
	if !g.allowed(t) {
		_, err := g.check(u)
		return nil, err
	}
	key := u.String()
	if p, ok := g.cache.get(key, g.now()); ok {
		cp := *p
		cp.Cached = true
		return &cp, nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, key, nil)
	if err != nil {
		return nil, &BlockedError{URL: shown(key), Reason: err.Error()}
	}
	req.Header.Set("User-Agent", g.o.UserAgent)
	req.Header.Set("Accept", "text/html, text/plain;q=0.9, application/json;q=0.9, */*;q=0.1")
	g.setHeaders(req, t)
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, g.explain(ctx, key, err)
	}
	defer resp.Body.Close()
	p, err := g.read(ctx, key, resp)
	if err != nil {
		return nil, err
	}
	g.cache.put(key, p, g.now().Add(g.o.CacheTTL))
	return p, nil
}

// A FetchError is a fetch that was allowed but failed: a timeout, a
// connection refused, a body the tool will not return.
type FetchError struct {
	URL    string
	Reason string
	Err    error
}

func (e *FetchError) Error() string { return fmt.Sprintf("http_get: %s: %s", e.URL, e.Reason) }

func (e *FetchError) Unwrap() error { return e.Err }

func (g *Getter) explain(ctx context.Context, key string, err error) error {
	var be *BlockedError
	if errors.As(err, &be) {
		return be
	}
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &timeout) && timeout.Timeout():
		return &FetchError{URL: shown(key), Reason: fmt.Sprintf("no complete answer within %s", g.o.Timeout), Err: err}
	case ctx.Err() != nil:
		return ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &FetchError{URL: shown(key), Reason: err.Error(), Err: err}
}

func (g *Getter) read(ctx context.Context, key string, resp *http.Response) (*Page, error) {
	p := &Page{URL: key, FinalURL: resp.Request.URL.String(), Status: resp.StatusCode}
	body, err := io.ReadAll(io.LimitReader(resp.Body, g.o.MaxBodyBytes+1))
	if err != nil {
		return nil, g.explain(ctx, key, err)
	}
	if int64(len(body)) > g.o.MaxBodyBytes {
		body, p.Truncated = body[:g.o.MaxBodyBytes], true
	}
	p.Bytes = len(body)
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, &FetchError{URL: shown(p.FinalURL), Reason: fmt.Sprintf("unreadable content type %q", ct)}
	}
	p.ContentType = mt
	if !typeAllowed(mt, g.types) {
		return nil, &FetchError{URL: shown(p.FinalURL), Reason: fmt.Sprintf("content type %s is not returned (allowed: %s)", mt, strings.Join(g.types, ", "))}
	}
	utf8Body, err := charset.NewReader(bytes.NewReader(body), ct)
	if err == nil {
		if b, err := io.ReadAll(utf8Body); err == nil {
			body = b
		}
	}
	text := string(body)
	if mt == "text/html" || mt == "application/xhtml+xml" {
		md, err := htmltomarkdown.ConvertString(text, converter.WithContext(ctx), converter.WithDomain(resp.Request.URL.Scheme+"://"+resp.Request.URL.Host))
		if err == nil {
			text = md
		}
	}
	text = calls.ValidUTF8(text)
	if len(text) > g.o.MaxTextBytes {
		cut := g.o.MaxTextBytes
		for cut > 0 && !utf8Start(text[cut]) {
			cut--
		}
		text, p.Truncated = text[:cut], true
	}
	p.Text = text
	return p, nil
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// typeAllowed matches a media type against the allowed list.
func typeAllowed(mt string, allowed []string) bool {
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == mt:
			return true
		case strings.HasSuffix(a, "/*") && strings.HasPrefix(mt, a[:len(a)-1]):
			return true
		case strings.HasPrefix(a, "+") && strings.HasSuffix(mt, a):
			return true
		}
	}
	return false
}

// pageCache is a bounded, least-recently-used cache of pages.
type pageCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheEntry, most recent at the front
	byKey map[string]*list.Element
}

type cacheEntry struct {
	key     string
	page    *Page
	expires time.Time
}

func newPageCache(n int) *pageCache {
	return &pageCache{max: n, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *pageCache) get(key string, now time.Time) (*Page, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, key)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.page, true
}

func (c *pageCache) put(key string, p *Page, expires time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		el.Value = &cacheEntry{key: key, page: p, expires: expires}
		c.order.MoveToFront(el)
		return
	}
	c.byKey[key] = c.order.PushFront(&cacheEntry{key: key, page: p, expires: expires})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*cacheEntry).key)
	}
}

func (c *pageCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
