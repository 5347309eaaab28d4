package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// GuardOptions configures a Guard. The zero value (or nil) is the closed
// default: no token (so serve it on loopback only, see CheckListen), no
// foreign origins, loopback Host names on a loopback connection, 4 MiB
// bodies read within 30 seconds.
type GuardOptions struct {
	// Token, when set, must arrive as "Authorization: Bearer <Token>".
	Token string
	// Verify, when set, checks bearer tokens in place of Token, returning
	// the user a token belongs to (a name safe to log) or false. It must
	// take the same time for every token.
	Verify func(token string) (user string, ok bool)
	// AllowedOrigins lists the browser origins, such as
	// "https://app.example.com", allowed besides the same origin; they get
	// CORS answers. A request without an Origin (a non-browser client)
	// passes.
	AllowedOrigins []string
	// AllowedHosts lists the Host header values accepted, against DNS
	// rebinding. Empty means only loopback names on a connection to a
	// loopback address, and any name on another address.
	AllowedHosts []string
	// MaxBodyBytes caps a request body (413). Zero or negative means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// BodyReadTimeout bounds reading a body (408). Zero means
	// DefaultBodyReadTimeout; negative means no bound.
	BodyReadTimeout time.Duration
	// WriteStallTimeout bounds one write to a client that stopped reading.
	// Zero means DefaultWriteStallTimeout; negative means no bound.
	WriteStallTimeout time.Duration
	// Reject, when set, writes the answer to a refused request, so that an
	// API can answer in its own error format (the connection is closed
	// after it either way). Nil writes the message as text/plain.
	Reject func(w http.ResponseWriter, r *http.Request, status int, msg string)
	// Logger receives one record per refused request. Nil discards.
	Logger *slog.Logger
}

// A Guard is the security layer of membrane's HTTP endpoints, for any
// handler: the MCP endpoint uses it, and so can an API or a web page
// served beside it, so that every endpoint of a listener refuses the same
// requests. Make one with NewGuard; it is safe for concurrent use.
type Guard struct {
	o        GuardOptions
	origins  map[string]bool
	hosts    []string
	tokenSum []byte
	log      *slog.Logger
}

// NewGuard checks the options and returns their Guard. An allowed origin
// that is not scheme://host[:port], or an empty allowed host, is an error.
func NewGuard(opts *GuardOptions) (*Guard, error) {
	var o GuardOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	o.BodyReadTimeout = orDefault(o.BodyReadTimeout, DefaultBodyReadTimeout)
	o.WriteStallTimeout = orDefault(o.WriteStallTimeout, DefaultWriteStallTimeout)
	g := &Guard{o: o, origins: map[string]bool{}, log: o.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	for _, raw := range o.AllowedOrigins {
		origin, err := normalizeOrigin(raw)
		if err != nil {
			return nil, fmt.Errorf("mcp: allowed origin %q: %w", raw, err)
		}
		g.origins[origin] = true
	}
	for _, h := range o.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			return nil, fmt.Errorf("mcp: allowed host is empty")
		}
		g.hosts = append(g.hosts, h)
	}
	if o.Token != "" {
		sum := sha256.Sum256([]byte(o.Token))
		g.tokenSum = sum[:]
	}
	return g, nil
}

// Protect wraps h in every check, in order: Host (403), Origin (403; an
// allowed origin's preflight is answered here), the bearer token (401 with
// WWW-Authenticate), then the body's size (413) and read time (408). The
// body h reads has already arrived whole. The user the token belongs to is
// in the request's context: see UserFromContext.
func (g *Guard) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w, ok := g.screen(rw, r)
		if !ok {
			return
		}
		user, ok := g.authorize(w, r)
		if !ok {
			return
		}
		r = withUser(r, user)
		if !g.readBody(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Screen wraps h in the Host and Origin checks and the body bounds, but not
// the token: for a handler that authenticates requests itself (a login page
// and the cookie it sets), with Check.
func (g *Guard) Screen(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w, ok := g.screen(rw, r)
		if !ok {
			return
		}
		if !g.readBody(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Check reports whether token is one the guard accepts, and the user it
// belongs to ("" for the single Token). It takes the same time for every
// token of a given guard. With no token configured every token passes:
// see Open.
func (g *Guard) Check(token string) (user string, ok bool) {
	if g.o.Verify != nil {
		return g.o.Verify(token)
	}
	if g.tokenSum == nil {
		return "", true
	}
	// Comparing digests keeps the time independent of the token's length
	// as well as its content.
	sum := sha256.Sum256([]byte(token))
	return "", subtle.ConstantTimeCompare(sum[:], g.tokenSum) == 1
}

// Open reports whether the guard requires no token at all.
func (g *Guard) Open() bool { return g.tokenSum == nil && g.o.Verify == nil }

// UserFromContext returns the user that a guard's Verify named for the
// request being served, and whether there was one. A request authorized
// by the single Token, or served with no token at all, has none.
func UserFromContext(ctx context.Context) (string, bool) {
	u, ok := ctx.Value(verifiedUser{}).(string)
	return u, ok && u != ""
}

// verifiedUser is the context key of the user Verify named.
type verifiedUser struct{}

func withUser(r *http.Request, user string) *http.Request {
	if user == "" {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), verifiedUser{}, user))
}

// screen applies the Host and Origin checks and answers an allowed
// origin's preflight. It returns the writer the handler must use (with the
// write-stall bound) and false if it answered.
func (g *Guard) screen(rw http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
	var w http.ResponseWriter = &stallWriter{ResponseWriter: rw, rc: http.NewResponseController(rw), d: g.o.WriteStallTimeout}
	if !g.hostAllowed(r) {
		g.reject(w, r, http.StatusForbidden, fmt.Sprintf("Forbidden: Host %q is not allowed (DNS rebinding protection); connect to 127.0.0.1 or localhost, or add the host to the server's allowed hosts", r.Host))
		return nil, false
	}
	origin := r.Header.Get("Origin")
	if !g.originAllowed(r, origin) {
		g.reject(w, r, http.StatusForbidden, fmt.Sprintf("Forbidden: Origin %q is not allowed; add it to the server's allowed origins to let that web page call this server", origin))
		return nil, false
	}
	if origin != "" && g.origins[strings.ToLower(origin)] {
		setCORS(w, origin)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return nil, false
		}
	}
	return w, true
}

// authorize checks the bearer token and answers 401 when it fails.
func (g *Guard) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	if g.Open() {
		return "", true
	}
	v := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(v, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		if user, ok := g.Check(strings.TrimSpace(tok)); ok {
			return user, true
		}
	}
	desc := "a bearer token is required"
	challenge := `Bearer realm="membrane"`
	if v != "" {
		desc = "the bearer token is not valid"
		challenge += `, error="invalid_token", error_description="` + desc + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	g.reject(w, r, http.StatusUnauthorized, "Unauthorized: "+desc+` (send "Authorization: Bearer <token>" with the server's token)`)
	return "", false
}

// readBody reads the body whole, within MaxBodyBytes and BodyReadTimeout,
// and puts it back on r for the handler. A request without a body is left
// alone.
func (g *Guard) readBody(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	limit := g.o.MaxBodyBytes
	if r.ContentLength > limit {
		g.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request Entity Too Large: the body is %d bytes, the limit is %d (the server's body limit)", r.ContentLength, limit))
		return false
	}
	body, err := readBody(w, r, limit, g.o.BodyReadTimeout)
	if err != nil {
		switch status, limit := bodyErrorStatus(err); status {
		case http.StatusRequestEntityTooLarge:
			g.reject(w, r, status, fmt.Sprintf("Request Entity Too Large: the body is over %d bytes (the server's body limit)", limit))
		case http.StatusRequestTimeout:
			g.reject(w, r, status, fmt.Sprintf("Request Timeout: the body did not arrive within %s", g.o.BodyReadTimeout))
		default:
			g.reject(w, r, status, "Bad Request: cannot read the body: "+err.Error())
		}
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return true
}

// reject answers a refused request and closes the connection after it, so
// that a refused client cannot keep it open.
func (g *Guard) reject(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("Connection", "close")
	g.log.Warn("http request rejected", "status", code, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", msg)
	if g.o.Reject != nil {
		g.o.Reject(w, r, code, msg)
		return
	}
	http.Error(w, msg, code)
}

// hostAllowed is the DNS-rebinding check.
func (g *Guard) hostAllowed(r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if len(g.hosts) > 0 {
		name := hostOnly(host)
		for _, a := range g.hosts {
			if a == host || a == name {
				return true
			}
		}
		return false
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil || !isLoopbackAddr(local.String()) {
		return true
	}
	return isLoopbackHost(hostOnly(host))
}

// originAllowed lets through requests from non-browser clients (no Origin),
// same-origin requests, and the allowed origins. Origins compare as
// scheme, host and port: http://localhost:8765 is not https://localhost:8765,
// and "null" (a sandboxed frame, a file: page) is never same-origin.
func (g *Guard) originAllowed(r *http.Request, origin string) bool {
	if origin == "" {
		// A browser that sends Sec-Fetch-Site but no Origin is making a
		// same-origin or user-initiated request, or a cross-site one we
		// cannot vouch for.
		switch r.Header.Get("Sec-Fetch-Site") {
		case "", "same-origin", "none":
			return true
		}
		return false
	}
	if g.origins[strings.ToLower(origin)] {
		return true
	}
	return sameOrigin(origin, r)
}

// readBody reads r's body whole, at most limit bytes within timeout (none
// when not positive), and closes it. After the body there is no read
// deadline: reading is how the server sees a client go away during a long
// answer.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, error) {
	rc := http.NewResponseController(w)
	if timeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(timeout))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	r.Body.Close()
	_ = rc.SetReadDeadline(time.Time{})
	return body, err
}

// bodyErrorStatus is the HTTP status for an error of readBody: 413 (with
// the limit passed), 408 or 400.
func bodyErrorStatus(err error) (status int, limit int64) {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, mbe.Limit
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, 0
	}
	return http.StatusBadRequest, 0
}
