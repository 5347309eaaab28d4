// Package mcp adapts membrane's calls to the Model Context Protocol through
// the official go-sdk.
//
// The server side, [NewServer], mirrors a [calls.Router] live into a go-sdk
// server: every call becomes a tool, and a call added or removed later sends
// notifications/tools/list_changed to every connected session. Each tool
// invocation goes back through the router, with the client's progress token,
// a logger that reaches the client, and a context that the client's
// cancellation cancels. [Server.HTTPHandler] adds the HTTP security layer
// (Host, Origin, bearer token and body-size checks, session bounds, and
// cancellation when a client goes away) and health endpoints around
// go-sdk's streamable HTTP transport; [NewHTTPServer] and [Listen] bound
// its connections.
//
// The client side (client.go) turns a remote server's tools back into calls,
// for the orchestrator.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
)

// ServerOptions configures a Server. A nil *ServerOptions means the defaults.
type ServerOptions struct {
	// Name and Version are announced to clients in the initialize reply.
	// Empty means "membrane" and "dev".
	Name, Version string
	// Instructions tells clients (and through them, models) how to use the
	// server. Empty sends none.
	Instructions string
	// Logger receives the adapter's own records (sessions opening and
	// closing, tools that could not be mirrored). Nil discards.
	Logger *slog.Logger
	// Ready, when set, holds tools/list and tools/call until it is closed
	// (or the request is cancelled), while initialize and ping answer at
	// once: a client connects fast and sees the complete tool list once the
	// slow parts have registered their calls. Nil means ready from the
	// start.
	Ready <-chan struct{}
	// MaxResultBytes bounds the encoded size of every tool result, of any
	// tool: a larger one is shortened (see boundResult) or replaced by a
	// tool error that says what happened, so that no client drops the
	// session over one oversized message. Zero means
	// DefaultMaxResultBytes; negative means no bound.
	MaxResultBytes int
	// Scope, when set, runs before every tools/list and tools/call with
	// the user the request's bearer token was verified as (see
	// HTTPOptions.Verify; "" on stdio and for the single shared token).
	// It returns the context the request runs with, which carries who is
	// calling to the router's middleware, and which tools that caller may
	// see (nil: all). A tool it hides is left out of tools/list, and a
	// call to it is answered as an unknown tool.
	Scope func(ctx context.Context, user string) (context.Context, func(tool string) bool)
	// WorkspaceResources, when set, serves each session's workspace as
	// MCP resources (list, read, templates, subscribe; see resources.go).
	// Nil serves no resources.
	WorkspaceResources *WorkspaceResourceOptions
	// Workspaces, when set, is the store of workspace handles that the
	// tools' calls resolve (calls.ResolveWorkspace): every session is
	// bound to it with the user of its bearer token, and a sessionless
	// HTTP request's calls make a new handle when they name none. Nil
	// serves no handles: each session keeps its own workspace, and a
	// sessionless request's workspace lasts that request.
	Workspaces *calls.Workspaces
	// ToolListTTL is the ttlMs a tools/list result gives clients of the
	// 2026-07-28 protocol: how long they may answer tools/list from their
	// cache. Zero (or less) means 0, always ask again: the list changes
	// when models come and go and when a token's scope is reloaded, and
	// go-sdk's client serves its cache for the whole TTL without asking
	// (TestSDKClientCachesToolListForTTL). The cacheScope is "private"
	// when Scope is set (each token may see other tools), "public"
	// otherwise.
	ToolListTTL time.Duration
}

// Router is what a Server serves: a *calls.Router, or a view of one that
// shows clients a selection of its calls.
type Router interface {
	// Subscribe calls fn with every later change, after one change
	// holding every call there is now.
	Subscribe(fn func(calls.Change)) (cancel func())
	// Call invokes a call; calls.ErrUnknownCall for a name not served.
	Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error)
	// Len is the number of calls served.
	Len() int
}

// Server serves a calls.Router over MCP. Create one with NewServer; it is
// safe for concurrent use, and one Server may serve many sessions over any
// number of transports at once.
type Server struct {
	router Router
	sdk    *sdk.Server
	log    *slog.Logger
	unsub  func()

	ready     <-chan struct{} // nil: always ready
	maxResult int             // <= 0: no bound
	scope     func(ctx context.Context, user string) (context.Context, func(tool string) bool)
	handles   *calls.Workspaces

	// done is closed by Close.
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	closed   bool
	sessions map[*sdk.ServerSession]*session
	calls    sync.WaitGroup // running tool calls

	endWithRequestOnce sync.Once // see HTTPHandler

	res *resources // nil: no workspace resources

	lists toolListCache       // encoded tools/list results (toollist.go)
	impl  *sdk.Implementation // what the server announces
}

// session is what the adapter keeps per MCP session.
type session struct {
	cs *calls.Session

	// The cancel functions of the session's running calls, so that its
	// end (or the server's) cancels them even when the transport cannot
	// tell them. Once ended, a call that starts is cancelled at once.
	mu      sync.Mutex
	ended   bool
	running map[*callCancel]struct{}
}

// callCancel is one running call's cancel function, by address.
type callCancel struct{ cancel context.CancelFunc }

// start registers a running call's cancel function; the call calls stop
// when it returns.
func (st *session) start(cancel context.CancelFunc) (stop func()) {
	c := &callCancel{cancel}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		cancel()
		return func() {}
	}
	if st.running == nil {
		st.running = map[*callCancel]struct{}{}
	}
	st.running[c] = struct{}{}
	return func() {
		st.mu.Lock()
		delete(st.running, c)
		st.mu.Unlock()
	}
}

// end cancels the session's running calls, and every call it starts later.
func (st *session) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ended = true
	for c := range st.running {
		c.cancel()
	}
	clear(st.running)
}

// NewServer returns a Server that mirrors r: every call in r is a tool, and
// later changes to r reach every connected session as
// notifications/tools/list_changed. Close ends the mirroring.
func NewServer(r Router, opts *ServerOptions) *Server {
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "membrane"
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		router:    r,
		log:       log,
		sessions:  map[*sdk.ServerSession]*session{},
		maxResult: o.MaxResultBytes,
		handles:   o.Workspaces,
	}
	if s.maxResult == 0 {
		s.maxResult = DefaultMaxResultBytes
	}
	s.done = make(chan struct{})
	ttl := max(o.ToolListTTL, 0)
	scope := "public"
	if o.Scope != nil {
		scope = "private"
	}
	sopts := &sdk.ServerOptions{
		Instructions: o.Instructions,
		// Tool lists come in name order (the SDK sorts them); say how long
		// one stays good.
		SetCacheable: func(_ context.Context, req sdk.Request, c *sdk.Cacheable) {
			if _, ok := req.(*sdk.ListToolsRequest); ok {
				c.TTLMs = int(ttl.Milliseconds())
				c.CacheScope = scope
			}
		},
		// The SDK logs at info for every session; keep its records below
		// ours unless the operator asks for debug.
		Logger: slog.New(sdkLogHandler{log.Handler()}),
		// Declared up front: the set of tools changes while sessions are
		// connected, and a server with no tools yet must still say so.
		Capabilities: &sdk.ServerCapabilities{
			Tools: &sdk.ToolCapabilities{ListChanged: true},
			//lint:ignore SA1019 logging to the client is still served to clients of 2025-11-25 and before, and through _meta on 2026-07-28.
			Logging: &sdk.LoggingCapabilities{},
		},
	}
	if o.WorkspaceResources != nil {
		s.res = newResources(o.WorkspaceResources)
		sopts.SubscribeHandler, sopts.UnsubscribeHandler = s.subscribe, s.unsubscribe
	}
	s.impl = &sdk.Implementation{Name: o.Name, Version: o.Version}
	s.sdk = sdk.NewServer(s.impl, sopts)
	s.sdk.AddReceivingMiddleware(checkParams)
	if s.res != nil {
		s.serveResources()
	}
	if o.Ready != nil {
		s.ready = o.Ready
		s.sdk.AddReceivingMiddleware(s.waitReady)
	}
	if o.Scope != nil {
		s.scope = o.Scope
		s.sdk.AddReceivingMiddleware(s.scopeTools)
	}
	s.sdk.AddReceivingMiddleware(s.logRefused)
	// Outermost: it sees the result every other middleware made.
	s.sdk.AddReceivingMiddleware(s.captureToolList)
	s.unsub = r.Subscribe(s.mirror)
	return s
}

// scopeTools runs ServerOptions.Scope for the tool methods: the caller's
// context, its tools/list filtered, and a call to a hidden tool answered
// as unknown.
func (s *Server) scopeTools(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if method != "tools/list" && method != "tools/call" {
			return next(ctx, method, req)
		}
		user := ""
		if ex := req.GetExtra(); ex != nil && ex.TokenInfo != nil {
			user = ex.TokenInfo.UserID
		}
		ctx, visible := s.scope(ctx, user)
		if visible == nil {
			return next(ctx, method, req)
		}
		if ct, ok := req.(*sdk.CallToolRequest); ok && !visible(ct.Params.Name) {
			return unknownTool(ct.Params.Name), nil
		}
		res, err := next(ctx, method, req)
		if lr, ok := res.(*sdk.ListToolsResult); ok && err == nil {
			shown := make([]*sdk.Tool, 0, len(lr.Tools))
			for _, t := range lr.Tools {
				if visible(t.Name) {
					shown = append(shown, t)
				}
			}
			out := *lr
			out.Tools = shown
			return &out, nil
		}
		return res, err
	}
}

// logRefused logs, at info, a tools/call answered with a JSON-RPC error
// (a tool the server does not have, which the SDK refuses before any
// handler runs): the router never sees it, so no call record has it, and
// a model calling a tool that does not exist would go unseen.
func (s *Server) logRefused(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		res, err := next(ctx, method, req)
		if err == nil || method != "tools/call" {
			return res, err
		}
		ct, ok := req.(*sdk.CallToolRequest)
		if !ok || ct.Params == nil {
			return res, err
		}
		attrs := []any{"call", shorten(ct.Params.Name, 128)}
		if ct.Session != nil {
			if c := clientName(ct.Session); c != "" {
				attrs = append(attrs, "client", c)
			}
			if id := ct.Session.ID(); id != "" {
				attrs = append(attrs, "session", id)
			}
		}
		s.log.Info("call refused", append(attrs, "reason", shorten(err.Error(), 256))...)
		return res, err
	}
}

// unknownTool is the answer to a call of a tool the client cannot see.
func unknownTool(name string) *sdk.CallToolResult {
	return toolError(fmt.Sprintf("unknown tool %q: it is no longer available. List the tools again (tools/list) and use one that exists.", name))
}

// waitReady holds the tool methods until the server is ready.
func (s *Server) waitReady(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		switch method {
		case "tools/list", "tools/call":
			select {
			case <-s.ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-s.done:
				return nil, errors.New("mcp: server is shutting down")
			}
		}
		return next(ctx, method, req)
	}
}

// isReady reports whether ServerOptions.Ready has been closed.
func (s *Server) isReady() bool {
	if s.ready == nil {
		return true
	}
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// SDK returns the underlying go-sdk server, for transports and options this
// package does not wrap. Adding tools to it directly bypasses the router.
func (s *Server) SDK() *sdk.Server { return s.sdk }

// runCloseGrace is how long Run waits for a session to close after its
// context is done. A transport blocked reading a stream that cannot be
// interrupted (a blocking stdin) may never report closed; the caller is
// ending anyway.
const runCloseGrace = 2 * time.Second

// Run serves one session over t (for example &sdk.StdioTransport{}) until
// the client disconnects or ctx is done. A client that closes the stream
// (end of input on stdio) is a clean end: Run returns nil. When ctx is done,
// Run cancels the session's running calls, closes it and returns nil as
// well: the caller asked for the end.
func (s *Server) Run(ctx context.Context, t sdk.Transport) error {
	if rt, ok := t.(*ResilientStdioTransport); ok {
		t = s.withListCache(rt)
	}
	ss, err := s.sdk.Connect(context.WithoutCancel(ctx), t, nil)
	if err != nil {
		return fmt.Errorf("mcp: connect: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- ss.Wait() }()
	select {
	case <-ctx.Done():
		s.mu.Lock()
		if st := s.sessions[ss]; st != nil {
			st.end()
		}
		s.mu.Unlock()
		go ss.Close()
		select {
		case <-done:
		case <-time.After(runCloseGrace):
		}
		return nil
	case err := <-done:
		if err != nil && !isClosedErr(err) {
			return fmt.Errorf("mcp: session: %w", err)
		}
		return nil
	}
}

// Close stops mirroring the router, cancels every running call, closes every
// session and waits for the running calls to return. Closing twice does
// nothing.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.unsub()
	s.closeOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	for _, st := range s.sessions {
		st.end()
	}
	s.mu.Unlock()
	for ss := range s.sdk.Sessions() {
		ss.Close()
	}
	s.calls.Wait()
	s.mu.Lock()
	sessions := s.sessions
	s.sessions = map[*sdk.ServerSession]*session{}
	s.mu.Unlock()
	for _, st := range sessions {
		st.end()
		st.cs.Close()
	}
}

// mirror applies a router change to the SDK server. It runs on the goroutine
// that changed the router.
//
// The encoded tool lists are dropped before the SDK's list changes and
// again after, so that none made from the old list outlives the change.
func (s *Server) mirror(ch calls.Change) {
	s.lists.invalidate()
	if len(ch.Removed) > 0 {
		s.sdk.RemoveTools(ch.Removed...)
	}
	added := make([]string, 0, len(ch.Added))
	for i := range ch.Added {
		if s.addTool(&ch.Added[i]) {
			added = append(added, ch.Added[i].Name)
		}
	}
	s.lists.changed(added, ch.Removed)
}

// addTool adds c to the SDK server. The SDK panics on a schema it cannot
// take; the router validates before it notifies, but a panic here would take
// the whole server down with it, so it becomes a logged error and the tool
// stays out of the list. It reports whether the tool is served.
func (s *Server) addTool(c *calls.Call) (ok bool) {
	t := toolOf(c)
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("tool not served: the MCP SDK rejected it", "call", c.Name, "err", fmt.Sprint(v))
			s.sdk.RemoveTools(c.Name)
			ok = false
		}
	}()
	s.sdk.AddTool(t, s.callTool)
	return true
}

// toolOf describes c as an MCP tool. The schema is compacted here, once:
// the SDK hands a json.RawMessage schema through to every tools/list as it
// is (TestSDKListsSchemaAsGiven), and encoding/json compacts it on every
// encoding, which is a plain copy once there is nothing left to remove.
// A schema that is compact already is kept as it came, not copied: the
// model tools of one shape share one schema (ollama's chatSchema), and
// hundreds of models would otherwise hold hundreds of copies of it.
// destructiveHint is left out of a read-only tool's annotations: the
// protocol gives it a meaning only when readOnlyHint is false.
func toolOf(c *calls.Call) *sdk.Tool {
	schema := json.RawMessage(c.InputSchema)
	var buf bytes.Buffer
	if json.Compact(&buf, schema) == nil && !bytes.Equal(buf.Bytes(), schema) {
		schema = buf.Bytes()
	}
	t := &sdk.Tool{
		Name:        c.Name,
		Title:       c.Title,
		Description: c.Description,
		InputSchema: schema,
		Annotations: &sdk.ToolAnnotations{
			Title:        c.Title,
			ReadOnlyHint: c.ReadOnly,
		},
	}
	if !c.ReadOnly {
		destructive := c.Destructive
		t.Annotations.DestructiveHint = &destructive
	}
	if len(c.OutputSchema) > 0 {
		t.OutputSchema = json.RawMessage(c.OutputSchema)
	}
	return t
}

// callTool is the SDK handler of every tool: it hands the call to the
// router.
func (s *Server) callTool(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	name := req.Params.Name
	sess, err := s.session(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// Close, and the end of the session, cancel every running call,
	// whatever the transport does.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer sess.start(cancel)()

	if s.res != nil {
		// The call may have changed a subscribed file.
		// A call by workspace handle works in another session's
		// directory, so all subscriptions are looked at (a bounded set).
		defer s.checkSubscriptions("")
	}
	tp, ts := traceContext(req.Params.GetMeta())
	res, err := s.router.Call(ctx, name, &calls.Request{
		Arguments:   req.Params.Arguments,
		Session:     sess.cs,
		Progress:    progressFor(req),
		Logger:      clientLogger(req.Session, name),
		TraceParent: tp,
		TraceState:  ts,
	})
	if errors.Is(err, calls.ErrUnknownCall) {
		// Removed between the client's tools/list and this call: data the
		// model can act on, not a broken protocol.
		return unknownTool(name), nil
	}
	if err != nil {
		// The call could not be made: a protocol error, with a code.
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: shorten(fmt.Sprintf("%s: %v", name, err), maxErrorMessage)}
	}
	return boundResult(resultOf(res), s.maxResult), nil
}

// session returns the adapter's state of ss, making it on first use, and
// counts one more running call. The calls.Session is closed when ss ends.
func (s *Server) session(ctx context.Context, req *sdk.CallToolRequest) (*session, error) {
	ss := req.Session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("mcp: server is shutting down")
	}
	s.calls.Add(1)
	if st, ok := s.sessions[ss]; ok {
		return st, nil
	}
	st := &session{cs: s.openSession(ss.ID(), clientName(ss))}
	user := ""
	if ex := req.GetExtra(); ex != nil && ex.TokenInfo != nil {
		user = ex.TokenInfo.UserID
	}
	_, sessionless := ctx.Value(requestCtxKey{}).(context.Context)
	st.cs.SetPeer(calls.Peer{Protocol: protocolOf(ss, req), TokenName: user, Sessionless: sessionless})
	if s.handles != nil {
		st.cs.BindWorkspaces(s.handles, user, sessionless)
	}
	s.sessions[ss] = st
	s.log.Debug("session opened", "session", st.cs.ID())
	go func() {
		_ = ss.Wait()
		// Its queued calls leave their queues before its running calls
		// are cancelled and free their slots.
		st.cs.End()
		st.end()
		s.mu.Lock()
		if s.sessions[ss] == st {
			delete(s.sessions, ss)
		}
		s.mu.Unlock()
		// Closing the session releases what its calls kept (the
		// sandbox workspace).
		st.cs.Close()
		s.log.Debug("session closed", "session", st.cs.ID())
	}()
	return st, nil
}

// openSession makes the calls.Session of an MCP session, through the
// router when it tells observers about sessions (calls.Router does).
func (s *Server) openSession(id, client string) *calls.Session {
	if o, ok := s.router.(interface {
		OpenSession(id, client string) *calls.Session
	}); ok {
		return o.OpenSession(id, client)
	}
	return calls.NewSession(id)
}

// protocolOf is the MCP protocol version of a call's client: the one it
// asked for in initialize, or for the sessionless protocol, the one each
// request names in its _meta.
func protocolOf(ss *sdk.ServerSession, req *sdk.CallToolRequest) string {
	if p := ss.InitializeParams(); p != nil && p.ProtocolVersion != "" {
		return p.ProtocolVersion
	}
	if v, ok := req.Params.GetMeta()[sdk.MetaKeyProtocolVersion].(string); ok && len(v) <= 32 {
		return v
	}
	if ex := req.GetExtra(); ex != nil && ex.Header != nil {
		if v := ex.Header.Get("Mcp-Protocol-Version"); len(v) <= 32 {
			return v
		}
	}
	return ""
}

// clientName is the name the client announced, or "" when it sent none
// (the sessionless protocol has no initialize).
func clientName(ss *sdk.ServerSession) string {
	if p := ss.InitializeParams(); p != nil && p.ClientInfo != nil {
		return p.ClientInfo.Name
	}
	return ""
}

// maxErrorMessage bounds the message of a JSON-RPC error the adapter makes
// from a handler's error.
const maxErrorMessage = 64 << 10

// shorten cuts s to at most n bytes on a rune boundary, with a marker.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = " [cut]"
	keep := max(0, n-len(more))
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + more
}

// progressFor returns a Progress that sends notifications/progress to the
// client, or calls.NoProgress when the client sent no progress token. The
// spec wants progress to increase with every notification: a report that
// does not (a queued call telling its new place in line, then the handler
// starting from zero) goes out as a hair more than the one before, with its
// message, and without a total it would contradict.
func progressFor(req *sdk.CallToolRequest) calls.Progress {
	tok := req.Params.GetProgressToken()
	if tok == nil {
		return calls.NoProgress
	}
	var (
		mu   sync.Mutex
		last = -1.0
	)
	return calls.ProgressFunc(func(ctx context.Context, progress, total float64, message string) {
		mu.Lock()
		defer mu.Unlock() // held while sending, so that reports stay in order
		if progress <= last {
			progress = last + 0.001
		}
		if total > 0 && progress > total {
			total = 0
		}
		last = progress
		_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{
			ProgressToken: tok,
			Progress:      progress,
			Total:         total,
			Message:       message,
		})
	})
}

// resultOf turns a calls.Result into an MCP tool result.
func resultOf(r *calls.Result) *sdk.CallToolResult {
	out := &sdk.CallToolResult{IsError: r.IsError, Content: make([]sdk.Content, 0, len(r.Content))}
	for _, c := range r.Content {
		switch c.Type {
		case calls.ContentImage:
			out.Content = append(out.Content, &sdk.ImageContent{Data: c.Data, MIMEType: c.MIMEType})
		case calls.ContentLink:
			l := &sdk.ResourceLink{URI: c.URI, Name: c.Name, MIMEType: c.MIMEType}
			if c.Size >= 0 {
				size := c.Size
				l.Size = &size
			}
			out.Content = append(out.Content, l)
		default:
			out.Content = append(out.Content, &sdk.TextContent{Text: calls.ValidUTF8(c.Text)})
		}
	}
	switch {
	case r.Structured != nil:
		out.StructuredContent = r.Structured
	case r.Reason != "":
		// A program (a client that retries when busy) reads why.
		out.StructuredContent = map[string]any{"reason": string(r.Reason)}
	}
	return out
}

func toolError(msg string) *sdk.CallToolResult {
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: msg}}}
}

// sdkLogHandler lowers the SDK's info records to debug: it logs every
// session's connect and disconnect, which is noise at the default level.
type sdkLogHandler struct{ h slog.Handler }

func (h sdkLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.h.Enabled(ctx, lower(l))
}

func (h sdkLogHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lower(r.Level)
	return h.h.Handle(ctx, r)
}

func (h sdkLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return sdkLogHandler{h.h.WithAttrs(as)}
}
func (h sdkLogHandler) WithGroup(n string) slog.Handler { return sdkLogHandler{h.h.WithGroup(n)} }

func lower(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

// isClosedErr reports whether err only says that the peer went away.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) ||
		errors.Is(err, syscall.EPIPE)
}

// clientLogger returns a logger whose records go to the client as
// notifications/message, at the level the client asked for (none unless it
// asked).
func clientLogger(ss *sdk.ServerSession, name string) *slog.Logger {
	//lint:ignore SA1019 the feature is deprecated from protocol 2026-07-28 but still served.
	return slog.New(sdk.NewLoggingHandler(ss, &sdk.LoggingHandlerOptions{LoggerName: name}))
}
