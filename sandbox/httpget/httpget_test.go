package httpget

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

const page = `<!doctype html><html><head><title>T</title><script>stealCookies()</script><style>p{}</style></head>
<body><h1>Hello</h1><p>World, see <a href="/docs/x">the docs</a>.</p></body></html>`

func htmlHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, body)
	}
}

func wantBlocked(t *testing.T, err error, contains string) *BlockedError {
	t.Helper()
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v (%T), want a *BlockedError", err, err)
	}
	if !strings.Contains(be.Error(), contains) {
		t.Fatalf("refusal %q does not say %q", be.Error(), contains)
	}
	return be
}

func TestAllowedPageAsMarkdown(t *testing.T) {
	e := newEnv(t)
	e.serve("public.test", "203.0.113.10", 80, htmlHandler(page))
	g := e.getter(Options{Allow: []string{"public.test"}})

	p, err := g.Fetch(t.Context(), "http://PUBLIC.test/index.html#frag")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 || p.ContentType != "text/html" || p.FinalURL != "http://public.test/index.html" {
		t.Fatalf("page = %+v", p)
	}
	for _, want := range []string{"# Hello", "World, see [the docs](http://public.test/docs/x)"} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, p.Text)
		}
	}
	if strings.Contains(p.Text, "stealCookies") {
		t.Errorf("script text leaked into the page:\n%s", p.Text)
	}

	// The deny beside it: a host the allow-list does not name.
	e.serve("other.test", "203.0.113.11", 80, htmlHandler(page))
	_, err = g.Fetch(t.Context(), "http://other.test/")
	wantBlocked(t, err, "the allow-list does not name it")
	for _, d := range e.dials() {
		if d.Addr() == netip.MustParseAddr("203.0.113.11") {
			t.Fatal("a host off the allow-list was dialled")
		}
	}
}

func TestRedirects(t *testing.T) {
	e := newEnv(t)
	var hitPrivate atomic.Int32
	e.serve("public.test", "203.0.113.10", 80, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-private":
			http.Redirect(w, r, "http://internal.test/admin", http.StatusFound)
		case "/to-loopback":
			http.Redirect(w, r, "http://[::ffff:127.0.0.1]/", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-public":
			http.Redirect(w, r, "http://public2.test/landing", http.StatusMovedPermanently)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	e.serve("public2.test", "203.0.113.12", 80, htmlHandler("<p>landed</p>"))
	// internal.test resolves to a private address; were it dialled, the
	// route would fail the test.
	e.res.set("internal.test", "10.1.2.3")
	e.serve("x.internal.test", "203.0.113.13", 80, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hitPrivate.Add(1) }))
	g := e.getter(Options{Allow: []string{"*"}})

	// Allowed: a redirect to another public host is followed.
	p, err := g.Fetch(t.Context(), "http://public.test/to-public")
	if err != nil {
		t.Fatal(err)
	}
	if p.FinalURL != "http://public2.test/landing" || !strings.Contains(p.Text, "landed") {
		t.Fatalf("page = %+v %q", p, p.Text)
	}

	for _, tc := range []struct{ path, want string }{
		{"/to-private", "10.1.2.3 is a private (RFC 1918) address"},
		{"/to-loopback", "a loopback address"},
		{"/to-metadata", "a cloud metadata address"},
		{"/to-file", "only http and https"},
		{"/loop", "more than 5 redirects"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := g.Fetch(t.Context(), "http://public.test"+tc.path)
			wantBlocked(t, err, tc.want)
		})
	}
	if hitPrivate.Load() != 0 {
		t.Fatal("a private host was reached")
	}
	for _, d := range e.dials() {
		if BlockedReason(d.Addr()) != "" {
			t.Fatalf("dialled %s", d)
		}
	}
}

func TestRedirectOffTheAllowList(t *testing.T) {
	e := newEnv(t)
	e.serve("public.test", "203.0.113.10", 80, http.RedirectHandler("http://evil.test/", http.StatusFound))
	e.serve("evil.test", "203.0.113.66", 80, htmlHandler("no"))
	g := e.getter(Options{Allow: []string{"public.test"}})
	_, err := g.Fetch(t.Context(), "http://public.test/")
	wantBlocked(t, err, "evil.test/: the allow-list does not name it")
}

func TestDNSAnswerChangesBetweenLookups(t *testing.T) {
	e := newEnv(t)
	e.serve("rebind.test", "203.0.113.20", 80, htmlHandler("<p>public</p>"))
	// First answer public, every later one loopback: the classic rebinding
	// attack against a guard that resolves to check and again to dial.
	e.res.setFunc("rebind.test", func(n int) []string {
		if n == 0 {
			return []string{"203.0.113.20"}
		}
		return []string{"127.0.0.1"}
	})
	g := e.getter(Options{Allow: []string{"rebind.test"}, CacheTTL: -1})

	p, err := g.Fetch(t.Context(), "http://rebind.test/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Text, "public") {
		t.Fatalf("text = %q", p.Text)
	}
	if n := e.res.lookups("rebind.test"); n != 1 {
		t.Fatalf("%d lookups for one connection, want 1: the address checked must be the address dialled", n)
	}
	if d := e.dials(); len(d) != 1 || d[0].Addr().String() != "203.0.113.20" {
		t.Fatalf("dialled %v, want only the checked 203.0.113.20", d)
	}

	// A new connection makes a new lookup, which is judged on its own.
	g.Close()
	_, err = g.Fetch(t.Context(), "http://rebind.test/")
	wantBlocked(t, err, "127.0.0.1 is a loopback address")
	if d := e.dials(); len(d) != 1 {
		t.Fatalf("dialled %v after a loopback answer", d)
	}
}

func TestMixedAnswerDialsOnlyPublic(t *testing.T) {
	e := newEnv(t)
	e.serve("mixed.test", "203.0.113.21", 80, htmlHandler("<p>ok</p>"))
	e.res.set("mixed.test", "127.0.0.1", "10.0.0.1", "203.0.113.21")
	g := e.getter(Options{Allow: []string{"mixed.test"}})
	if _, err := g.Fetch(t.Context(), "http://mixed.test/"); err != nil {
		t.Fatal(err)
	}
	if d := e.dials(); len(d) != 1 || d[0].Addr().String() != "203.0.113.21" {
		t.Fatalf("dialled %v", d)
	}
}

func TestAddressForms(t *testing.T) {
	e := newEnv(t)
	e.serve("203.0.113.30", "203.0.113.30", 80, htmlHandler("<p>literal</p>"))
	e.res.set("mapped.test", "::ffff:127.0.0.1")
	e.res.set("mapped-private.test", "::ffff:192.168.1.1")
	e.res.set("nat64.test", "64:ff9b::7f00:1")
	e.res.set("sixtofour.test", "2002:a00:1::1")
	e.res.set("ula.test", "fd00:ec2::254")
	e.res.set("cgnat.test", "100.64.0.1")
	e.res.set("mcast.test", "239.1.2.3")
	e.res.set("zero.test", "0.0.0.0")
	g := e.getter(Options{Allow: []string{"*"}})

	// Allowed: a public address written as a literal.
	p, err := g.Fetch(t.Context(), "http://203.0.113.30/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Text, "literal") {
		t.Fatal(p.Text)
	}

	for _, tc := range []struct{ url, want string }{
		{"http://[::ffff:127.0.0.1]/", "a loopback address"},
		{"http://[::ffff:7f00:1]/", "a loopback address"},
		{"http://[::1]/", "a loopback address"},
		{"http://[fe80::1%25eth0]/", "zone"},
		{"http://2130706433/", "127.0.0.1 is a loopback address"},
		{"http://0177.0.0.1/", "127.0.0.1 is a loopback address"},
		{"http://0x7f000001/", "127.0.0.1 is a loopback address"},
		{"http://0x7f.1/", "127.0.0.1 is a loopback address"},
		{"http://127.1/", "127.0.0.1 is a loopback address"},
		{"http://3232235777/", "192.168.1.1 is a private"},
		{"http://3405803806/", "write the IP address as four decimal parts, 203.0.113.30"},
		{"http://127.0.0.1/", "a loopback address"},
		{"http://169.254.169.254/", "a cloud metadata address"},
		{"http://0.0.0.0/", "unspecified"},
		{"http://mapped.test/", "a loopback address"},
		{"http://mapped-private.test/", "a private (RFC 1918) address"},
		{"http://nat64.test/", "a loopback address inside an IPv6 address"},
		{"http://sixtofour.test/", "a private (RFC 1918) address inside an IPv6 address"},
		{"http://ula.test/", "a cloud metadata address"},
		{"http://cgnat.test/", "carrier-grade NAT"},
		{"http://mcast.test/", "a multicast address"},
		{"http://zero.test/", "unspecified"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := g.Fetch(t.Context(), tc.url)
			wantBlocked(t, err, tc.want)
		})
	}
	if d := e.dials(); len(d) != 1 {
		t.Fatalf("dialled %v, want only the public literal", d)
	}
}

func TestSchemesAndUserInfo(t *testing.T) {
	e := newEnv(t)
	e.serve("public.test", "203.0.113.10", 80, htmlHandler("<p>fine</p>"))
	g := e.getter(Options{Allow: []string{"*"}})
	if _, err := g.Fetch(t.Context(), "http://public.test/"); err != nil {
		t.Fatal(err) // the allow control
	}
	for _, tc := range []struct{ url, want string }{
		{"file:///etc/passwd", "only http and https URLs can be fetched, not file URLs"},
		{"FILE://localhost/etc/passwd", "only http and https"},
		{"gopher://public.test/", "only http and https"},
		{"ftp://public.test/", "only http and https"},
		{"javascript:alert(1)", "only http and https"},
		{"//public.test/", "no scheme"},
		{"http://user:pw@public.test/", "user information"},
		{"http:///path", "no host"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := g.Fetch(t.Context(), tc.url)
			wantBlocked(t, err, tc.want)
		})
	}
}

func TestPorts(t *testing.T) {
	e := newEnv(t)
	e.serve("public.test", "203.0.113.10", 8080, htmlHandler("<p>alt port</p>"))
	// Services that are not HTTP, on ports the allow-list names: one
	// that answers a line with an error (as Redis does), one that speaks
	// first (as SSH does).
	e.addRoute("203.0.113.10", 6379, rawServer(t, false, "-ERR unknown command 'GET'\r\n"))
	e.addRoute("203.0.113.10", 2222, rawServer(t, true, "SSH-2.0-OpenSSH_9.6\r\n"))

	g := e.getter(Options{Allow: []string{"public.test:8080", "public.test:2222", "public.test:6379", "*.public.test"}, Timeout: 5 * time.Second})
	p, err := g.Fetch(t.Context(), "http://public.test:8080/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Text, "alt port") {
		t.Fatal(p.Text)
	}
	_, err = g.Fetch(t.Context(), "http://public.test:22/")
	wantBlocked(t, err, "port 22 is not allowed")
	_, err = g.Fetch(t.Context(), "http://sub.public.test:8080/")
	wantBlocked(t, err, "port 8080 is not allowed")

	_, err = g.Fetch(t.Context(), "http://public.test:6379/")
	var fe *FetchError
	if !errors.As(err, &fe) || !strings.Contains(fe.Error(), "malformed HTTP") {
		t.Fatalf("non-HTTP server: err = %v", err)
	}
	_, err = g.Fetch(t.Context(), "http://public.test:2222/")
	if !errors.As(err, &fe) {
		t.Fatalf("a server that speaks first: err = %v", err)
	}
}

// rawServer answers every connection with reply, before reading (first)
// or after the first line it reads, and returns its address.
func rawServer(t *testing.T, first bool, reply string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if !first {
					line := make([]byte, 1)
					for line[0] != '\n' {
						if _, err := c.Read(line); err != nil {
							return
						}
					}
				}
				io.WriteString(c, reply)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t)
	e.serve("big.test", "203.0.113.40", 80, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		chunk := []byte(strings.Repeat("a", 4096))
		n := 1024 // exactly the limit
		if r.URL.Path == "/endless" {
			n = 1 << 30
		}
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return // the client went away
			}
			n -= k
		}
	}))
	g := e.getter(Options{Allow: []string{"big.test"}, MaxBodyBytes: 1024})

	p, err := g.Fetch(t.Context(), "http://big.test/exact")
	if err != nil {
		t.Fatal(err)
	}
	if p.Truncated || p.Bytes != 1024 {
		t.Fatalf("a body at the limit: truncated=%v bytes=%d", p.Truncated, p.Bytes)
	}
	p, err = g.Fetch(t.Context(), "http://big.test/endless")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Truncated || p.Bytes != 1024 || len(p.Text) != 1024 {
		t.Fatalf("an endless body: truncated=%v bytes=%d text=%d", p.Truncated, p.Bytes, len(p.Text))
	}
}

func TestTextLimitKeepsUTF8(t *testing.T) {
	e := newEnv(t)
	e.serve("u.test", "203.0.113.41", 80, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, strings.Repeat("é", 100))
	}))
	g := e.getter(Options{Allow: []string{"u.test"}, MaxTextBytes: 51})
	p, err := g.Fetch(t.Context(), "http://u.test/")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Truncated || len(p.Text) != 50 || calls.ValidUTF8(p.Text) != p.Text {
		t.Fatalf("truncated=%v len=%d %q", p.Truncated, len(p.Text), p.Text)
	}
}

func TestSlowloris(t *testing.T) {
	e := newEnv(t)
	e.serve("slow.test", "203.0.113.50", 80, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/no-headers" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}))
	g := e.getter(Options{Allow: []string{"slow.test"}, Timeout: 300 * time.Millisecond})
	for _, path := range []string{"/dribble", "/no-headers"} {
		t.Run(path, func(t *testing.T) {
			_, err := g.Fetch(t.Context(), "http://slow.test"+path)
			var fe *FetchError
			if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "no complete answer within 300ms") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestContentTypes(t *testing.T) {
	e := newEnv(t)
	e.serve("t.test", "203.0.113.60", 80, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/png":
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte("\x89PNG\r\n\x1a\n"))
		case "/json":
			w.Header().Set("Content-Type", "application/problem+json")
			io.WriteString(w, `{"a":1}`)
		case "/sniffed":
			w.Header()["Content-Type"] = nil
			w.Write([]byte("\x00\x01\x02binary"))
		}
	}))
	g := e.getter(Options{Allow: []string{"t.test"}})
	p, err := g.Fetch(t.Context(), "http://t.test/json")
	if err != nil || p.Text != `{"a":1}` {
		t.Fatalf("json: %v %+v", err, p)
	}
	for _, path := range []string{"/png", "/sniffed"} {
		_, err := g.Fetch(t.Context(), "http://t.test"+path)
		var fe *FetchError
		if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "is not returned") {
			t.Fatalf("%s: err = %v", path, err)
		}
	}
}

func TestHeadersOnlyFromConfigAndOnlyWhereNamed(t *testing.T) {
	e := newEnv(t)
	got := make(chan http.Header, 4)
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Header.Clone()
			next.ServeHTTP(w, r)
		})
	}
	e.serve("api.test", "203.0.113.70", 80, record(http.RedirectHandler("http://elsewhere.test/", http.StatusFound)))
	e.serve("elsewhere.test", "203.0.113.71", 80, record(htmlHandler("<p>x</p>")))
	g := e.getter(Options{
		Allow:   []string{"api.test", "elsewhere.test"},
		Headers: []Header{{For: "api.test", Name: "X-Api-Key", Value: "s3cret"}},
	})
	if _, err := g.Fetch(t.Context(), "http://api.test/"); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("X-Api-Key") != "s3cret" {
		t.Fatalf("the named host got X-Api-Key %q", h.Get("X-Api-Key"))
	}
	if h := <-got; h.Get("X-Api-Key") != "" {
		t.Fatal("the header followed a redirect to a host it does not name")
	}

	// The model has no way to add a header.
	res, err := g.handle(t.Context(), &calls.Request{Call: &calls.Call{Name: Name}, Arguments: json.RawMessage(`{"url":"http://api.test/","headers":{"Authorization":"x"}}`)})
	if err != nil || !res.IsError || !strings.Contains(res.TextOf(), "unknown field") {
		t.Fatalf("headers argument: %v %+v", err, res)
	}
}

func TestCache(t *testing.T) {
	e := newEnv(t)
	var hits atomic.Int32
	e.serve("c.test", "203.0.113.80", 80, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		fmt.Fprintf(w, "hit %d", n)
	}))
	g := e.getter(Options{Allow: []string{"c.test"}, CacheTTL: time.Minute, CacheEntries: 2})
	clk := &clock{t: time.Unix(1e9, 0)}
	g.now = clk.now

	p1, err := g.Fetch(t.Context(), "http://c.test/a")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := g.Fetch(t.Context(), "http://C.TEST/a")
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 || !p2.Cached || p1.Cached || p2.Text != "hit 1" {
		t.Fatalf("hits=%d first cached=%v second cached=%v %q", hits.Load(), p1.Cached, p2.Cached, p2.Text)
	}
	clk.advance(time.Minute)
	p3, err := g.Fetch(t.Context(), "http://c.test/a")
	if err != nil {
		t.Fatal(err)
	}
	if p3.Cached || hits.Load() != 2 {
		t.Fatalf("after the TTL: cached=%v hits=%d", p3.Cached, hits.Load())
	}
	for _, path := range []string{"/b", "/c", "/d"} {
		if _, err := g.Fetch(t.Context(), "http://c.test"+path); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.cache.len(); n != 2 {
		t.Fatalf("cache holds %d pages, bound is 2", n)
	}
}

func TestToolResult(t *testing.T) {
	e := newEnv(t)
	e.serve("public.test", "203.0.113.10", 80, htmlHandler(page))
	g := e.getter(Options{Allow: []string{"public.test"}})
	r := calls.NewRouter(nil)
	if err := r.Add(g.Call()); err != nil {
		t.Fatal(err)
	}
	res, err := r.Call(t.Context(), Name, &calls.Request{Arguments: json.RawMessage(`{"url":"http://public.test/"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || !strings.HasPrefix(res.TextOf(), "URL: http://public.test/\nStatus: 200 OK\nContent-Type: text/html\n\n# Hello") {
		t.Fatalf("result: %+v\n%s", res, res.TextOf())
	}
	mcptest.CheckSchema(t, Name, g.Call().OutputSchema, res.Structured)
	if b, _ := json.Marshal(res.Structured); strings.Contains(string(b), "# Hello") {
		t.Errorf("the page text travels twice: %s", b)
	}
	res, err = r.Call(t.Context(), Name, &calls.Request{Arguments: json.RawMessage(`{"url":"http://127.0.0.1:6379/"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(res.TextOf(), "a loopback address. Nothing was fetched.") {
		t.Fatalf("refusal: %+v %s", res, res.TextOf())
	}
	if m, _ := res.Structured.(map[string]any); m["refused"] != true {
		t.Fatalf("refusal not marked: %v", res.Structured)
	}
	mcptest.CheckSchema(t, Name, g.Call().OutputSchema, res.Structured)
}

func TestNewNeedsAnAllowList(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrNoAllowList) {
		t.Fatalf("err = %v", err)
	}
	for _, bad := range []string{"", "example.com/path", "https://127.0.0.1/", "file:///x", "example.com:0", "https://e.com/?q=1"} {
		if _, err := New(Options{Allow: []string{bad}}); err == nil {
			t.Errorf("allow-list entry %q was accepted", bad)
		}
	}
	g, err := New(Options{Allow: []string{"*"}})
	if err != nil || !g.AllowsAll() {
		t.Fatalf("*: %v", err)
	}
	g, _ = New(Options{Allow: []string{"example.com"}})
	if g.AllowsAll() {
		t.Fatal("a host is not everything")
	}
}

func TestControlDialChecksTheSocketAddress(t *testing.T) {
	// The dialer's last word, called with what the kernel is about to
	// connect to. Nothing is dialled here.
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"203.0.113.9:443", true},
		{"[2606:4700::1111]:443", true},
		{"127.0.0.1:80", false},
		{"[::ffff:127.0.0.1]:80", false},
		{"[::1]:80", false},
		{"10.0.0.1:80", false},
		{"169.254.169.254:80", false},
		{"[fd00:ec2::254]:80", false},
		{"localhost:80", false},
	} {
		err := controlDial("tcp", tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("controlDial(%s) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	for in, want := range map[string]string{
		"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"0x7f.1": "127.0.0.1", "127.1": "127.0.0.1", "127.0.1": "127.0.0.1", "10.0.0.1.": "10.0.0.1",
		"0": "0.0.0.0", "0x": "0.0.0.0",
	} {
		a, ok := parseLegacyIPv4(in)
		if !ok || a.String() != want {
			t.Errorf("parseLegacyIPv4(%q) = %v %v, want %s", in, a, ok, want)
		}
	}
	for _, in := range []string{"", "example.com", "256.1.1.1", "1.2.3.4.5", "4294967296", "08", "1..2", "0xg", "127.0.0.256"} {
		if a, ok := parseLegacyIPv4(in); ok {
			t.Errorf("parseLegacyIPv4(%q) = %v, want no address", in, a)
		}
	}
}
