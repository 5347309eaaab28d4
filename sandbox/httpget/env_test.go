package httpget

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// The tests never leave loopback. A fake resolver answers names with
// addresses from the documentation ranges (203.0.113.0/24, which route
// nowhere) standing for public hosts, or with private ones; the Getter's
// route hook then carries a connection meant for a public address to an
// httptest server on 127.0.0.1. The hook refuses any address it was not
// told about, so a missed check fails the test instead of dialling out.

type env struct {
	t   *testing.T
	res *fakeResolver

	mu     sync.Mutex
	routes map[netip.AddrPort]string
	dialed []netip.AddrPort
}

func newEnv(t *testing.T) *env {
	return &env{t: t, res: &fakeResolver{answers: map[string]func(n int) []string{}, n: map[string]int{}}, routes: map[netip.AddrPort]string{}}
}

// getter returns a Getter with the env's resolver and route.
func (e *env) getter(o Options) *Getter {
	e.t.Helper()
	o.Resolver = e.res
	g, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	g.route = e.route
	e.t.Cleanup(g.Close)
	return g
}

func (e *env) route(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	e.mu.Lock()
	e.dialed = append(e.dialed, ap)
	to, ok := e.routes[ap]
	e.mu.Unlock()
	if !ok {
		e.t.Errorf("the getter tried to dial %s, which no test server stands for", ap)
		return nil, fmt.Errorf("test: no route to %s", ap)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", to)
}

// dials returns the addresses the getter dialled.
func (e *env) dials() []netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]netip.AddrPort(nil), e.dialed...)
}

// serve starts h on loopback and makes host resolve to ip, with ip:port
// routed to the server.
func (e *env) serve(host, ip string, port uint16, h http.Handler) *httptest.Server {
	e.t.Helper()
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	e.res.set(host, ip)
	e.addRoute(ip, port, srv.Listener.Addr().String())
	return srv
}

func (e *env) addRoute(ip string, port uint16, to string) {
	e.mu.Lock()
	e.routes[netip.AddrPortFrom(netip.MustParseAddr(ip), port)] = to
	e.mu.Unlock()
}

// fakeResolver answers from a table; an answer may change with the number
// of lookups made so far.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string]func(n int) []string
	n       map[string]int
}

func (r *fakeResolver) set(host string, ips ...string) {
	r.setFunc(host, func(int) []string { return ips })
}

func (r *fakeResolver) setFunc(host string, f func(n int) []string) {
	r.mu.Lock()
	r.answers[host] = f
	r.mu.Unlock()
}

func (r *fakeResolver) lookups(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[host]
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	f, ok := r.answers[host]
	n := r.n[host]
	r.n[host]++
	r.mu.Unlock()
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range f(n) {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// clock is a settable time for the cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
