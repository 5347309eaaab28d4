package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Defaults used where HTTPOptions leaves a field zero.
const (
	DefaultPath               = "/mcp"
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultMaxBodyBytes       = 4 << 20
)

// HTTPOptions configures Server.HTTPHandler. A nil *HTTPOptions means the
// defaults: the MCP endpoint at /mcp, no token (so loopback only, see
// CheckListen), no foreign origins, stateful sessions closed after 30
// minutes idle, 4 MiB request bodies.
type HTTPOptions struct {
	// Path is where the MCP endpoint is served. Empty means DefaultPath.
	Path string
	// Token, when set, must arrive on every MCP request as
	// "Authorization: Bearer <Token>"; anything else gets 401. Empty means
	// no authentication, which is only safe on a loopback address.
	Token string
	// Verify, when set, checks bearer tokens in place of Token: it
	// returns the user a token belongs to (a name safe to log, never the
	// token) or false for a token it does not know, taking the same time
	// for every token. The user travels with each request to
	// ServerOptions.Scope, and each stateful session is bound to the user
	// that opened it: another token gets 403 on it.
	Verify func(token string) (user string, ok bool)
	// AllowedOrigins lists the browser origins (such as
	// "https://app.example.com") allowed to call the endpoint; they also
	// get CORS headers. A request without an Origin header (any non-browser
	// client) and a same-origin request pass; any other Origin gets 403.
	AllowedOrigins []string
	// AllowedHosts lists the Host header values (host names, with or
	// without a port) accepted, against DNS rebinding. Empty means: on a
	// connection to a loopback address, only loopback names (localhost,
	// 127.0.0.1, [::1]); on any other address, any host.
	AllowedHosts []string
	// Stateless serves every request with a fresh session, so that several
	// replicas can sit behind a load balancer without sticky sessions.
	// Server-to-client requests are not possible then, and a per-session
	// sandbox workspace lasts one request.
	Stateless bool
	// SessionIdleTimeout closes a stateful session that has seen no request
	// for that long. Zero means DefaultSessionIdleTimeout; negative means
	// never.
	SessionIdleTimeout time.Duration
	// MaxBodyBytes caps a request body; a larger one gets 413. Zero or
	// negative means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxInitializeBytes caps the body of an initialize request, whose
	// clientInfo and capabilities a session keeps for its life, and of
	// any other request without a session to a stateful server; a larger
	// one gets 413. Zero or negative means DefaultMaxInitializeBytes (or
	// MaxBodyBytes, if smaller).
	MaxInitializeBytes int64
	// MaxSessions bounds the stateful sessions open at once; an
	// initialize beyond it gets 503 with Retry-After and
	// CodeTooManySessions. Zero means DefaultMaxSessions; negative means
	// no bound. Full means refused: no session is evicted to make room.
	MaxSessions int
	// MaxSessionsPerToken bounds the sessions of one identity (one bearer
	// token; all clients share one when there is no token); beyond it
	// gets 429 with Retry-After and CodeTooManySessions. Zero means
	// DefaultMaxSessionsPerToken; negative means no bound.
	MaxSessionsPerToken int
	// SessionsFor, when set, gives the session bound of a user that Verify
	// returned, in place of MaxSessionsPerToken; zero or less keeps
	// MaxSessionsPerToken.
	SessionsFor func(user string) int
	// BodyReadTimeout bounds reading one request body. Zero means
	// DefaultBodyReadTimeout; negative means no bound.
	BodyReadTimeout time.Duration
	// WriteStallTimeout bounds how long one write to the client may block
	// (a client that stops reading); the connection is then closed. It
	// does not bound a response's length: an SSE stream that is read
	// lives on. Zero means DefaultWriteStallTimeout; negative means no
	// bound.
	WriteStallTimeout time.Duration
	// Backends, when set, reports the state of the model servers for
	// /readyz. Nil reports none.
	Backends func() []BackendStatus
	// Metrics, when set, is served at /metrics behind the same Host,
	// Origin and bearer-token checks as the MCP endpoint (a Prometheus
	// handler, say). Nil serves no /metrics.
	Metrics http.Handler
	// Mounts are further handlers served on the same listener, behind the
	// same security layer (see Mount). Their prefixes must not overlap each
	// other, Path, /healthz, /readyz or /metrics.
	Mounts []Mount
	// Logger receives one record per rejected request. Nil discards.
	Logger *slog.Logger
}

// A Mount serves Handler for every path under Prefix (which starts and
// ends with "/", such as "/lens/") on the MCP listener. The Host and
// Origin checks and the body bounds apply; so does the bearer token,
// unless Public is set: then the handler authenticates requests itself (a
// login page and its cookie), checking tokens with the Guard that
// HTTPGuard returns for the same options.
type Mount struct {
	Prefix  string
	Handler http.Handler
	Public  bool
}

// BackendStatus is one model server's state as /readyz shows it.
type BackendStatus struct {
	// URL names the server; user information in it is not shown.
	URL    string `json:"url"`
	Up     bool   `json:"up"`
	Models int    `json:"models"`
	Err    string `json:"error,omitempty"`
}

// HTTPHandler returns the streamable HTTP handler of s with its security
// layer, plus /healthz and /readyz. Every request passes, in order:
//
//  1. the Host check (DNS rebinding): 403;
//  2. the Origin check (scheme, host and port): 403 (allowed origins also
//     get CORS answers);
//  3. on the MCP endpoint, the bearer token: 401 with WWW-Authenticate;
//  4. the body limit (413) and the body read timeout (408);
//  5. for a POST, the screen: a batch, or a request without a session
//     other than initialize, gets 400; an initialize over
//     MaxInitializeBytes 413, and one past the session bounds 503 or 429
//     with Retry-After.
//
// A request refused at steps 1 to 4 also closes its connection. A call
// whose client closes the connection before the result is cancelled, for
// every protocol version. Serve the handler with NewHTTPServer and Listen
// for the connection bounds.
//
// /healthz (liveness) and /readyz (the router holds calls; the backends'
// state) need no token and show no secrets. Any other path is 404.
func (s *Server) HTTPHandler(opts *HTTPOptions) (http.Handler, error) {
	var o HTTPOptions
	if opts != nil {
		o = *opts
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if !strings.HasPrefix(o.Path, "/") || o.Path == "/healthz" || o.Path == "/readyz" || (o.Path == "/metrics" && o.Metrics != nil) {
		return nil, fmt.Errorf("mcp: http path %q must start with / and not be /healthz, /readyz or /metrics", o.Path)
	}
	if o.SessionIdleTimeout == 0 {
		o.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if o.SessionIdleTimeout < 0 {
		o.SessionIdleTimeout = 0 // the SDK's "never"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxInitializeBytes <= 0 {
		o.MaxInitializeBytes = DefaultMaxInitializeBytes
	}
	o.MaxInitializeBytes = min(o.MaxInitializeBytes, o.MaxBodyBytes)
	o.BodyReadTimeout = orDefault(o.BodyReadTimeout, DefaultBodyReadTimeout)
	o.WriteStallTimeout = orDefault(o.WriteStallTimeout, DefaultWriteStallTimeout)
	if o.MaxSessions == 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.MaxSessionsPerToken == 0 {
		o.MaxSessionsPerToken = DefaultMaxSessionsPerToken
	}
	g, err := NewGuard(o.guardOptions())
	if err != nil {
		return nil, err
	}
	mounts, err := checkMounts(o, g)
	if err != nil {
		return nil, err
	}
	log := g.log

	// endWithRequest passes every call without a stateless request's
	// mark untouched, so one server takes it for both eras.
	s.endWithRequestOnce.Do(func() { s.sdk.AddReceivingMiddleware(endWithRequest) })
	sdkHandler := func(stateless bool) http.Handler {
		var h http.Handler = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s.sdk }, &sdk.StreamableHTTPOptions{
			Stateless:                    stateless,
			SessionTimeout:               o.SessionIdleTimeout,
			MaxRequestBodyBytes:          o.MaxBodyBytes,
			PropagateRequestCancellation: true,
			// Our Host check below does the same job and also honours
			// AllowedHosts (a reverse proxy on loopback).
			DisableLocalhostProtection: true,
			Logger:                     slog.New(sdkLogHandler{log.Handler()}),
		})
		if o.Verify != nil {
			// The SDK reads the user from the token info this puts on
			// the request: it binds sessions to it and hands it to every
			// method. The token was checked already; this only carries
			// the answer.
			h = auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
				user, _ := ctx.Value(verifiedUser{}).(string)
				return &auth.TokenInfo{UserID: user}, nil
			}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
		}
		return h
	}
	inner := sdkHandler(o.Stateless)
	// go-sdk takes the sessionless protocol (2026-07-28) only on a
	// stateless handler, and sessions only on a stateful one; both serve
	// the same server, and each request goes to the one its protocol
	// needs (see modernRequest).
	modern := inner
	if !o.Stateless {
		modern = sdkHandler(true)
	}
	h := &httpHandler{
		s:      s,
		o:      o,
		g:      g,
		mounts: mounts,
		log:    log,
		mcp:    inner,
		modern: modern,
		limits: &sessionLimiter{max: o.MaxSessions, perOwner: o.MaxSessionsPerToken, byOwner: map[string]int{}},
		owner:  identity(o.Token),
	}
	return h, nil
}

// guardOptions is the part of o that the security layer takes.
func (o *HTTPOptions) guardOptions() *GuardOptions {
	return &GuardOptions{
		Token:             o.Token,
		Verify:            o.Verify,
		AllowedOrigins:    o.AllowedOrigins,
		AllowedHosts:      o.AllowedHosts,
		MaxBodyBytes:      o.MaxBodyBytes,
		BodyReadTimeout:   o.BodyReadTimeout,
		WriteStallTimeout: o.WriteStallTimeout,
		Logger:            o.Logger,
	}
}

// HTTPGuard returns the security layer that HTTPHandler(opts) applies, for
// a handler served on another listener with the same rules, or for a
// Public mount that checks tokens itself (Guard.Check).
func HTTPGuard(opts *HTTPOptions) (*Guard, error) {
	var o HTTPOptions
	if opts != nil {
		o = *opts
	}
	return NewGuard(o.guardOptions())
}

// mount is a checked Mount.
type mount struct {
	prefix string
	h      http.Handler
	public bool
}

// checkMounts checks that every mount has a handler and a prefix of its
// own, and wraps each handler in the guard.
func checkMounts(o HTTPOptions, g *Guard) ([]mount, error) {
	var ms []mount
	for _, m := range o.Mounts {
		p := m.Prefix
		if len(p) < 2 || !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
			return nil, fmt.Errorf("mcp: mount prefix %q must start and end with /, such as /lens/", p)
		}
		if m.Handler == nil {
			return nil, fmt.Errorf("mcp: mount %q has no handler", p)
		}
		for _, taken := range []string{o.Path, "/healthz", "/readyz", "/metrics"} {
			if strings.HasPrefix(taken+"/", p) || strings.HasPrefix(p, taken+"/") {
				return nil, fmt.Errorf("mcp: mount prefix %q overlaps %s", p, taken)
			}
		}
		for _, other := range ms {
			if strings.HasPrefix(p, other.prefix) || strings.HasPrefix(other.prefix, p) {
				return nil, fmt.Errorf("mcp: mount prefixes %q and %q overlap", other.prefix, p)
			}
		}
		h := g.Protect(m.Handler)
		if m.Public {
			h = g.Screen(m.Handler)
		}
		ms = append(ms, mount{prefix: p, h: h, public: m.Public})
	}
	return ms, nil
}

type httpHandler struct {
	s      *Server
	o      HTTPOptions
	g      *Guard
	mounts []mount
	log    *slog.Logger
	mcp    http.Handler // the SDK's handler for HTTPOptions.Stateless
	modern http.Handler // the SDK's stateless handler, for the sessionless protocol
	limits *sessionLimiter
	// owner is the identity, for the per-token session bound, of every
	// request authorized by the single token (or of every request, with
	// no token). A request that Verify resolves to a user is that user's.
	owner string
	// live holds the stateful sessions the SDK made, for fastToolsList.
	live sessionTable
}

func (h *httpHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	for _, m := range h.mounts {
		if strings.HasPrefix(r.URL.Path, m.prefix) {
			m.h.ServeHTTP(rw, r)
			return
		}
	}
	w, ok := h.g.screen(rw, r)
	if !ok {
		return
	}
	switch r.URL.Path {
	case "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	case "/readyz":
		h.ready(w)
		return
	case h.o.Path:
	case "/metrics":
		if h.o.Metrics == nil {
			http.NotFound(w, r)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	user, ok := h.g.authorize(w, r)
	if !ok {
		return
	}
	if h.o.Metrics != nil && r.URL.Path == "/metrics" {
		h.o.Metrics.ServeHTTP(w, r)
		return
	}
	owner := h.owner
	if user != "" {
		r = withUser(r, user)
		owner = "user:" + user
	}
	if r.ContentLength > h.o.MaxBodyBytes {
		h.g.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request Entity Too Large: the body is %d bytes, the limit is %d (the server's body limit)", r.ContentLength, h.o.MaxBodyBytes))
		return
	}
	var msg *jsonrpc.Request // the POST's one request or notification
	if r.Method == http.MethodPost {
		var ok bool
		if msg, ok = h.readPost(w, r); !ok {
			return
		}
	}
	sid := r.Header.Get("Mcp-Session-Id")
	sessionless := h.o.Stateless || modernRequest(r, msg)
	stateful := !sessionless
	if stateful && h.fastToolsList(w, r, msg, sid, user) {
		return
	}
	if sessionless && h.fastModernList(w, r, msg, user) {
		return
	}
	if stateful && sid != "" && r.Method == http.MethodPost {
		if ls := h.live.get(sid); ls != nil {
			ls.lastSDK.Store(time.Now().UnixNano())
		}
	}
	reserved := false
	if stateful && sid == "" && msg != nil && msg.Method == "initialize" {
		own := 0
		if user != "" && h.o.SessionsFor != nil {
			own = h.o.SessionsFor(user)
		}
		if err := h.limits.reserve(owner, own); err != nil {
			h.tooManySessions(w, r, msg, owner, err)
			return
		}
		reserved = true
	}
	target := h.mcp
	if sessionless {
		r = withRequestCtx(markModernList(r, msg))
		target = h.modern
	}
	ew := &errorWriter{ResponseWriter: w}
	var watch *replyWatch
	if stateful && sid != "" && msg != nil && msg.IsCall() {
		watch = &replyWatch{ResponseWriter: w, id: msg.ID}
		ew.ResponseWriter = watch
	}
	target.ServeHTTP(ew, r)
	ew.finish()
	if reserved {
		h.track(ew.Header().Get("Mcp-Session-Id"), owner, user)
	}
	if watch != nil && !watch.seen.Load() && r.Context().Err() != nil {
		h.cancelAbandoned(r, sid, msg.ID)
	}
}

// readPost reads a POST body, bounded in size (MaxBodyBytes) and time
// (BodyReadTimeout), and screens it before the SDK sees it. It answers,
// and returns false, for a body it cannot read, a batch (removed from the
// protocol in 2025-06-18), a stateful request without a session that is
// not an initialize, and an initialize over MaxInitializeBytes. It
// returns the single JSON-RPC request or notification in the body, or
// nil for anything else (the SDK answers malformed input).
func (h *httpHandler) readPost(w http.ResponseWriter, r *http.Request) (*jsonrpc.Request, bool) {
	// Without a session, a stateful server takes only initialize, ping
	// and notifications, all small: such a body is held to
	// MaxInitializeBytes before it is read, so that a flood of large ones
	// costs next to nothing.
	limit, what := h.o.MaxBodyBytes, "request body exceeds %d bytes (the server's body limit)"
	if !h.o.Stateless && r.Header.Get("Mcp-Session-Id") == "" && !isNewProtocol(r) {
		limit, what = h.o.MaxInitializeBytes, "a request without a session (initialize) is limited to %d bytes: a session keeps the client's clientInfo and capabilities, so send less"
	}
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		writeRPCError(w, http.StatusRequestEntityTooLarge, nil, jsonrpc.CodeInvalidRequest, fmt.Sprintf(what, limit))
		return nil, false
	}
	body, err := readBody(w, r, limit, h.o.BodyReadTimeout)
	if err != nil {
		w.Header().Set("Connection", "close")
		switch status, limit := bodyErrorStatus(err); status {
		case http.StatusRequestEntityTooLarge:
			writeRPCError(w, status, nil, jsonrpc.CodeInvalidRequest, fmt.Sprintf(what, limit))
		case http.StatusRequestTimeout:
			writeRPCError(w, status, nil, jsonrpc.CodeInvalidRequest, fmt.Sprintf("the request body did not arrive within %s", h.o.BodyReadTimeout))
		default:
			writeRPCError(w, http.StatusBadRequest, nil, jsonrpc.CodeParseError, "cannot read the request body: "+err.Error())
		}
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !checkIDs(w, body) {
		return nil, false
	}
	sid := r.Header.Get("Mcp-Session-Id")
	version := r.Header.Get("Mcp-Protocol-Version")
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' && (sid == "" || version == "" || version >= "2025-06-18") {
		writeRPCError(w, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest,
			"JSON-RPC batches are not supported (removed from MCP in 2025-06-18): send one message per POST")
		return nil, false
	}
	m, err := jsonrpc.DecodeMessage(body)
	if err != nil {
		return nil, true
	}
	req, _ := m.(*jsonrpc.Request)
	if req == nil {
		return nil, true
	}
	if req.Method == "initialize" && int64(len(body)) > h.o.MaxInitializeBytes {
		writeRPCError(w, http.StatusRequestEntityTooLarge, callID(req), jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("initialize is %d bytes, the limit is %d: a session keeps the client's clientInfo and capabilities, so send less", len(body), h.o.MaxInitializeBytes))
		return nil, false
	}
	if !h.o.Stateless && sid == "" && !h.sessionless(r, req) {
		writeRPCError(w, http.StatusBadRequest, callID(req), jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("%q needs a session: send initialize first, then the Mcp-Session-Id header it returns", req.Method))
		return nil, false
	}
	return req, true
}

// sessionless reports whether req may come without a session to a stateful
// server: initialize (which makes one), a ping or server/discover, a
// notification (the SDK answers it), and requests of the sessionless
// 2026-07-28 protocol. Anything else the SDK would run in a throwaway
// session, or answer with an error without a code.
func (h *httpHandler) sessionless(r *http.Request, req *jsonrpc.Request) bool {
	if isNewProtocol(r) || !req.IsCall() || metaProtocol(req) != "" {
		return true
	}
	switch req.Method {
	case "initialize", "ping", "server/discover":
		return true
	}
	return false
}

// metaProtocol is the protocol version a request of the sessionless
// protocol names in its _meta, or "".
func metaProtocol(req *jsonrpc.Request) string {
	if req == nil || len(req.Params) == 0 {
		return ""
	}
	var p struct {
		Meta map[string]any `json:"_meta"`
	}
	if json.Unmarshal(req.Params, &p) != nil {
		return ""
	}
	if v, ok := p.Meta[sdk.MetaKeyProtocolVersion]; ok {
		if s, _ := v.(string); s != "" {
			return s
		}
		return "?" // present but not a string: the SDK answers it
	}
	return ""
}

// modernRequest reports whether r speaks the sessionless protocol
// (2026-07-28 and later): its MCP-Protocol-Version header, or the version
// in the _meta of its one message, says so. Such a request goes to the
// stateless SDK handler whatever HTTPOptions.Stateless says; everything
// else (initialize, a session's requests, the GET stream, DELETE) to the
// stateful one. A client that offers the new protocol (server/discover
// first) so gets it, and one that offers only an older one gets a session.
func modernRequest(r *http.Request, msg *jsonrpc.Request) bool {
	if isNewProtocol(r) {
		return true
	}
	if msg == nil || r.Header.Get("Mcp-Session-Id") != "" {
		return false
	}
	v := metaProtocol(msg)
	return v != "" && (v == "?" || v >= newProtocol)
}

func callID(req *jsonrpc.Request) *jsonrpc.ID {
	if !req.IsCall() {
		return nil
	}
	return &req.ID
}

// tooManySessions refuses an initialize when a session bound is full: 503
// for the server's bound, 429 for the token's, both with Retry-After.
func (h *httpHandler) tooManySessions(w http.ResponseWriter, r *http.Request, req *jsonrpc.Request, owner string, err *limitError) {
	status := http.StatusServiceUnavailable
	if err.perOwner {
		status = http.StatusTooManyRequests
	}
	total, owned := h.limits.count(owner)
	h.log.Warn("http session refused", "status", status, "remote", r.RemoteAddr, "sessions", total, "token_sessions", owned, "reason", err.Error())
	w.Header().Set("Retry-After", "60")
	writeRPCError(w, status, callID(req), CodeTooManySessions, err.Error())
}

// track gives the session slot taken for an initialize back when the
// session it made ends, or at once if it made none. The session is in
// h.live while it lasts, bound to user as the SDK binds it.
func (h *httpHandler) track(sid, owner, user string) {
	var ss *sdk.ServerSession
	if sid != "" {
		for s := range h.s.sdk.Sessions() {
			if s.ID() == sid {
				ss = s
				break
			}
		}
	}
	if ss == nil {
		h.limits.release(owner)
		return
	}
	ls := &liveSession{ss: ss}
	if h.o.Verify != nil {
		// The SDK binds a session to the user of the token info the
		// Verify wrapper puts on the request, and only then.
		ls.user = user
	}
	ls.lastSDK.Store(time.Now().UnixNano())
	h.live.add(sid, ls)
	go func() {
		_ = ss.Wait()
		h.live.remove(sid, ls)
		h.limits.release(owner)
	}()
}

// writeRPCError answers an HTTP error whose body is a JSON-RPC error.
func writeRPCError(w http.ResponseWriter, status int, id *jsonrpc.ID, code int64, msg string) {
	resp := map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": code, "message": msg}}
	if id != nil {
		resp["id"] = id.Raw()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}

// errorWriter turns the SDK's plain-text HTTP errors on the MCP endpoint
// into JSON-RPC error bodies (id null), keeping the status, so that a client
// reading JSON gets a code and a message. Everything else passes through.
type errorWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
	wrote  bool
}

func (e *errorWriter) WriteHeader(code int) {
	if e.wrote || e.status != 0 {
		return
	}
	if code >= 400 && strings.HasPrefix(e.Header().Get("Content-Type"), "text/plain") {
		e.status = code
		return
	}
	e.wrote = true
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorWriter) Write(p []byte) (int, error) {
	if e.status != 0 {
		return e.buf.Write(p)
	}
	e.wrote = true
	return e.ResponseWriter.Write(p)
}

func (e *errorWriter) Flush() {
	if e.status != 0 {
		return
	}
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (e *errorWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

func (e *errorWriter) finish() {
	if e.status == 0 {
		return
	}
	msg := strings.TrimSpace(e.buf.String())
	code := int64(jsonrpc.CodeInvalidRequest)
	switch f := sdkFailureOf(msg); {
	case f == sdkFailureUnknownMethod:
		code = jsonrpc.CodeMethodNotFound
	case f == sdkFailureMalformed:
		code = jsonrpc.CodeParseError
	case e.status == http.StatusNotFound:
		code = CodeSessionNotFound
	case e.status >= 500:
		code = jsonrpc.CodeInternalError
	}
	writeRPCError(e.ResponseWriter, e.status, nil, code, msg)
}

// sameOrigin reports whether origin is the origin r was sent to: the
// scheme of the connection (https only over TLS) and the Host header, with
// default ports made explicit.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false // includes "null"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) {
		return false
	}
	return strings.EqualFold(withPort(u.Host, scheme), withPort(r.Host, scheme))
}

// withPort adds the scheme's default port to a host without one.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), port)
}

func (h *httpHandler) ready(w http.ResponseWriter) {
	type readiness struct {
		Status   string          `json:"status"`
		Tools    int             `json:"tools"`
		Backends []BackendStatus `json:"backends"`
	}
	rd := readiness{Status: "ready", Tools: h.s.router.Len(), Backends: []BackendStatus{}}
	if h.o.Backends != nil {
		for _, b := range h.o.Backends() {
			b.URL = redactURL(b.URL)
			rd.Backends = append(rd.Backends, b)
		}
	}
	code := http.StatusOK
	h.s.mu.Lock()
	closed := h.s.closed
	h.s.mu.Unlock()
	switch {
	case closed:
		rd.Status, code = "shutting down", http.StatusServiceUnavailable
	case !h.s.isReady():
		rd.Status, code = "starting", http.StatusServiceUnavailable
	case rd.Tools == 0:
		rd.Status, code = "no tools loaded", http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func setCORS(w http.ResponseWriter, origin string) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Add("Vary", "Origin")
	hd.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-Id")
	hd.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, WWW-Authenticate")
	hd.Set("Access-Control-Max-Age", "600")
}

// normalizeOrigin checks that raw is scheme://host[:port] and returns it in
// the form browsers send.
func normalizeOrigin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("want scheme://host[:port], such as https://app.example.com")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isLoopbackAddr(addr string) bool {
	return isLoopbackHost(hostOnly(addr))
}

// CheckListen reports whether serving on addr (host:port) with this token is
// safe: an address other than loopback (127.0.0.0/8, ::1, localhost) needs a
// token, since anyone who can reach it could run code in the sandbox.
func CheckListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: want host:port, such as 127.0.0.1:8765", addr)
	}
	if token != "" || isLoopbackHost(strings.ToLower(host)) {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return &NoTokenError{Addr: addr, Host: shown}
}

// NoTokenError is CheckListen's answer for a non-loopback address without a
// token. A program adds how to give a token.
type NoTokenError struct {
	Addr string // as given
	Host string // the host part, or "every interface"
}

func (e *NoTokenError) Error() string {
	return fmt.Sprintf("refusing to serve on %s (%s) without a token: anyone who can reach it could run commands in the sandbox; "+
		"set a token, or listen on 127.0.0.1", e.Addr, e.Host)
}
