package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The encoded tool list.
//
// go-sdk encodes a tools/list result afresh for every request, twice over
// (the result, then the JSON-RPC message around it), and encoding/json
// re-validates every json.RawMessage schema and every string on both
// passes: under tools/list load that is most of the server's CPU. The
// list only changes when the router does, so a session's list is kept
// here, encoded, and the HTTP handler answers a stateful session's plain
// tools/list with those bytes (fastToolsList).
//
// The bytes are never made by this package: they are the very result the
// SDK produced for an earlier request with the same key, after every
// middleware (Scope's filter included), taken by captureToolList and
// encoded the way the SDK encodes a result (TestToolListCacheMatchesSDK
// pins that the answers are byte for byte the same). The key is the
// session's protocol version and which of the served tools the caller's
// Scope shows, so a token whose scope is reloaded gets its new list at
// once. Every change to the tool set (mirror, the conformance fixtures)
// empties the cache, before and after the SDK's own list changes, so a
// client that lists again on notifications/tools/list_changed never gets
// the old list.
//
// The sessionless protocol (2026-07-28) has no session to ask what was
// agreed: each request carries its protocol version, client info and
// capabilities in its params' _meta, which the SDK checks on every
// request. Its lists are answered from the same entries (keyed by the
// version in _meta, which the SDK makes the request's protocol version)
// by fastModernList, but only for a request whose params are, byte for
// byte, those of an earlier request that the SDK answered with that
// first page, and whose headers have the one shape the fast path takes:
// the SDK's verdict on the same bytes is the same, so nothing of its
// checking of _meta is repeated here. Those params are kept as digests
// (accepted), bounded and emptied with the entries.

// toolListCache holds the encoded results of tools/list, by key, for the
// current version of the tool set.
type toolListCache struct {
	mu       sync.Mutex
	version  uint64
	names    []string          // the tools served, in name order
	entries  map[string][]byte // by listKey: the encoded result
	bytes    int               // of the entries
	accepted map[paramsDigest]struct{}
}

// paramsDigest is the SHA-256 of a sessionless tools/list's
// MCP-Protocol-Version header, a 0 byte and its params as sent.
type paramsDigest [sha256.Size]byte

// maxToolListEntries bounds the cache: there is one entry per protocol
// version and distinct scope, a small set; past the bound (or past
// maxToolListBytes) nothing more is kept (those requests take the SDK's
// path).
const maxToolListEntries = 256

// maxToolListBytes bounds the bytes of the entries: a list of 1,000 model
// tools is about 3.7 MB, and each protocol version and scope view keeps
// its own.
const maxToolListBytes = 64 << 20

// maxAcceptedParams bounds the sessionless params kept: one per client
// build and version, in practice, at 32 bytes each.
const maxAcceptedParams = 4096

// changed records a change to the set of tools: add and remove name the
// tools that came and went. It empties the cache.
func (c *toolListCache) changed(add, remove []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	c.entries = nil
	c.bytes = 0
	c.accepted = nil
	if len(add) == 0 && len(remove) == 0 {
		return
	}
	// A new slice: snapshots handed out earlier are read without the lock.
	names := slices.DeleteFunc(slices.Clone(c.names), func(n string) bool { return slices.Contains(remove, n) })
	for _, n := range add {
		if i, found := slices.BinarySearch(names, n); !found {
			names = slices.Insert(names, i, n)
		}
	}
	c.names = names
}

// invalidate empties the cache without a change of names.
func (c *toolListCache) invalidate() { c.changed(nil, nil) }

// snapshot returns the current version and the names it serves.
func (c *toolListCache) snapshot() (uint64, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version, c.names
}

// get returns the entry for key at version, or nil.
func (c *toolListCache) get(version uint64, key string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return nil
	}
	return c.entries[key]
}

// put keeps data for key if the tool set is still at version.
func (c *toolListCache) put(version uint64, key string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok || c.version != version || len(c.entries) >= maxToolListEntries || c.bytes+len(data) > maxToolListBytes {
		return
	}
	if c.entries == nil {
		c.entries = map[string][]byte{}
	}
	c.entries[key] = data
	c.bytes += len(data)
}

// accept records that the SDK answered the sessionless params of d with
// the first page, if the tool set is still at version.
func (c *toolListCache) accept(version uint64, d paramsDigest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version || len(c.accepted) >= maxAcceptedParams {
		return
	}
	if c.accepted == nil {
		c.accepted = map[paramsDigest]struct{}{}
	}
	c.accepted[d] = struct{}{}
}

// isAccepted reports whether accept recorded d at version.
func (c *toolListCache) isAccepted(version uint64, d paramsDigest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.accepted[d]
	return ok && c.version == version
}

// listKey is the cache key of a list for a session of protocol version
// proto whose caller sees the tools visible allows (nil: all) of names.
func listKey(proto string, names []string, visible func(string) bool) string {
	var b strings.Builder
	b.Grow(len(proto) + 1 + len(names))
	b.WriteString(proto)
	b.WriteByte(0)
	if visible == nil {
		b.WriteByte('*')
		return b.String()
	}
	for _, n := range names {
		if visible(n) {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// visibleTo returns which tools user may see (nil: all), as scopeTools
// filters them.
func (s *Server) visibleTo(ctx context.Context, user string) func(string) bool {
	if s.scope == nil {
		return nil
	}
	_, visible := s.scope(ctx, user)
	return visible
}

// captureToolList is the outermost receiving middleware: it keeps the
// result of a plain tools/list of a stateful HTTP session of the older
// protocols (what fastToolsList answers), and of a sessionless one that
// the HTTP handler marked (fastModernList), encoded as the SDK encodes it.
func (s *Server) captureToolList(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if method != "tools/list" {
			return next(ctx, method, req)
		}
		lr, ok := req.(*sdk.ListToolsRequest)
		_, sessionless := ctx.Value(requestCtxKey{}).(context.Context)
		modern, marked := ctx.Value(modernListKey{}).(modernList)
		ex := req.GetExtra()
		var proto string
		if ss, _ := req.GetSession().(*sdk.ServerSession); ss != nil {
			if p := ss.InitializeParams(); p != nil {
				proto = p.ProtocolVersion
			}
		}
		if !ok || ex == nil || ex.Header == nil || proto == "" {
			return next(ctx, method, req)
		}
		switch {
		case !sessionless && plainListParams(lr.Params):
		case sessionless && marked && proto == modern.version && (lr.Params == nil || lr.Params.Cursor == ""):
			// The SDK read the version from the request's _meta and found
			// it good; the params asked for the first page.
		default:
			return next(ctx, method, req)
		}
		version, names := s.lists.snapshot()
		key := listKey(proto, names, s.visibleTo(ctx, userOf(req)))
		res, err := next(ctx, method, req)
		// The scope is asked again: a token set reloaded while the list
		// was made may have filtered it by the new scope.
		if out, ok := res.(*sdk.ListToolsResult); ok && err == nil && key == listKey(proto, names, s.visibleTo(ctx, userOf(req))) {
			if sessionless {
				out = s.asSDKSendsModern(out)
			}
			if data, err := marshalNoEscape(out); err == nil {
				// Exactly its size: the encoder's buffer grew by doubling.
				data = bytes.Clone(data)
				s.lists.put(version, key, data)
				if sessionless {
					s.lists.accept(version, modern.digest)
				}
			}
		}
		return res, err
	}
}

// asSDKSendsModern returns a copy of lr as go-sdk sends it to a client of
// the sessionless protocol: after the middleware, it marks the result
// complete and names the server in its _meta (annotateServerInfo, where
// the _meta has no name yet). TestModernToolListCacheMatchesSDK pins it.
func (s *Server) asSDKSendsModern(lr *sdk.ListToolsResult) *sdk.ListToolsResult {
	out := *lr
	out.ResultType = "complete"
	if _, named := out.Meta[sdk.MetaKeyServerInfo]; !named {
		out.Meta = maps.Clone(out.Meta)
		if out.Meta == nil {
			out.Meta = sdk.Meta{}
		}
		out.Meta[sdk.MetaKeyServerInfo] = s.impl
	}
	return &out
}

// plainListParams reports whether p asks for the first page and nothing
// else: no cursor, no progress token, no protocol version of its own.
func plainListParams(p *sdk.ListToolsParams) bool {
	if p == nil {
		return true
	}
	return p.Cursor == "" && len(p.Meta) == 0
}

// marshalNoEscape encodes v as go-sdk encodes a result and a message:
// encoding/json without HTML escaping and without the trailing newline.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// liveSession is what the HTTP handler knows of a stateful session the
// SDK made, for fastToolsList: the session, the user the SDK bound it to
// (the same rule as the SDK's: the verified user of the initialize, "" when
// tokens are not verified per user), and when a request of it last went
// through the SDK, which restarts the SDK's idle timer.
type liveSession struct {
	ss      *sdk.ServerSession
	user    string
	lastSDK atomic.Int64 // unix nanoseconds
}

// sessionTable maps session ids to live sessions.
type sessionTable struct {
	mu sync.Mutex
	m  map[string]*liveSession
}

func (t *sessionTable) add(id string, ls *liveSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*liveSession{}
	}
	t.m[id] = ls
}

func (t *sessionTable) remove(id string, ls *liveSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[id] == ls {
		delete(t.m, id)
	}
}

func (t *sessionTable) get(id string) *liveSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// oldProtocols are the session protocol versions the fast path answers;
// any other MCP-Protocol-Version header goes to the SDK.
var oldProtocols = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}

// fastToolsList answers a stateful session's plain tools/list from the
// cache and reports true, or does nothing and reports false: the request
// then takes the SDK's path, which answers it (an error included) as it
// always has. It runs after the Host, Origin, token and body checks, and
// declines whatever the SDK would look at more closely: a request the SDK
// would refuse (headers, an unknown or foreign session, one not yet
// initialized), a server not yet ready, params beyond the plain first
// page, a session whose idle timer is due for a restart, and a key not in
// the cache yet.
func (h *httpHandler) fastToolsList(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Request, sid, user string) bool {
	if _, named := r.Header["Mcp-Method"]; sid == "" || named || !plainListPost(r, msg) {
		return false
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && !slices.Contains(oldProtocols, v) {
		return false
	}
	if !plainParams(msg.Params) {
		return false
	}
	ls := h.live.get(sid)
	if ls == nil || (ls.user != "" && ls.user != user) {
		return false
	}
	p := ls.ss.InitializeParams()
	if p == nil || !h.s.isReady() {
		return false
	}
	// The SDK restarts a session's idle timer on each of its requests;
	// one request in a while goes through it, so that a client that only
	// lists tools keeps its session.
	now := time.Now().UnixNano()
	if idle := h.o.SessionIdleTimeout; idle > 0 && time.Duration(now-ls.lastSDK.Load()) > idle/4 {
		return false
	}
	version, names := h.s.lists.snapshot()
	data := h.s.lists.get(version, listKey(p.ProtocolVersion, names, h.s.visibleTo(r.Context(), user)))
	return writeList(w, msg, data)
}

// plainListPost reports whether r is a POST of the one tools/list call
// msg in the header shape the fast paths answer: a JSON body, an Accept
// that takes both JSON and an event stream, and none of the headers that
// resume a stream or carry a tool's name or parameters.
func plainListPost(r *http.Request, msg *jsonrpc.Request) bool {
	if r.Method != http.MethodPost || msg == nil || msg.Method != "tools/list" || !msg.IsCall() {
		return false
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/json") {
		return false
	}
	if jsonOK, streamOK := acceptsBoth(r.Header.Values("Accept")); !jsonOK || !streamOK {
		return false
	}
	for k := range r.Header {
		if k == "Last-Event-Id" || k == "Mcp-Name" || strings.HasPrefix(k, "Mcp-Param-") {
			return false
		}
	}
	return true
}

// writeList answers msg with the encoded result data, and reports
// whether it did (not for a nil data).
func writeList(w http.ResponseWriter, msg *jsonrpc.Request, data []byte) bool {
	if data == nil {
		return false
	}
	id, err := marshalNoEscape(msg.ID.Raw())
	if err != nil {
		return false
	}
	const head, mid = `{"jsonrpc":"2.0","id":`, `,"result":`
	body := make([]byte, 0, len(head)+len(id)+len(mid)+len(data)+1)
	body = append(append(append(append(append(body, head...), id...), mid...), data...), '}')
	w.Header().Set("Cache-Control", "no-cache, no-transform")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return true
}

// modernList marks, in the context of a sessionless tools/list that has
// the fast path's header shape, what captureToolList records when the SDK
// answers it with the first page.
type modernList struct {
	version string // the MCP-Protocol-Version header
	digest  paramsDigest
}

type modernListKey struct{}

// modernListOf returns the modernList of a sessionless request r carrying
// msg, or false for one the fast path leaves to the SDK: not a plain
// tools/list POST, a session id, a protocol older than the sessionless
// one, or an Mcp-Method header other than exactly one "tools/list".
func modernListOf(r *http.Request, msg *jsonrpc.Request) (modernList, bool) {
	if !plainListPost(r, msg) || r.Header.Get("Mcp-Session-Id") != "" {
		return modernList{}, false
	}
	versions := r.Header.Values("Mcp-Protocol-Version")
	if len(versions) != 1 || versions[0] < newProtocol {
		return modernList{}, false
	}
	if m := r.Header.Values("Mcp-Method"); len(m) != 1 || m[0] != "tools/list" {
		return modernList{}, false
	}
	h := sha256.New()
	h.Write([]byte(versions[0]))
	h.Write([]byte{0})
	h.Write(msg.Params)
	ml := modernList{version: versions[0]}
	h.Sum(ml.digest[:0])
	return ml, true
}

// fastModernList answers a sessionless tools/list from the cache and
// reports true, or does nothing and reports false: the request then takes
// the SDK's path, marked (markModernList) so that its answer is kept. It
// runs after the Host, Origin, token and body checks, and answers only
// params the SDK has already answered with the first page at this version
// of the tool set, for a server that is ready and open.
func (h *httpHandler) fastModernList(w http.ResponseWriter, r *http.Request, msg *jsonrpc.Request, user string) bool {
	ml, ok := modernListOf(r, msg)
	if !ok || !h.s.isReady() || h.s.isClosed() {
		return false
	}
	version, names := h.s.lists.snapshot()
	if !h.s.lists.isAccepted(version, ml.digest) {
		return false
	}
	return writeList(w, msg, h.s.lists.get(version, listKey(ml.version, names, h.s.visibleTo(r.Context(), user))))
}

// withListCache returns a copy of t whose connection answers tools/list
// from the answers the SDK gave the session before (stdioConn.answerList),
// at the same version of the tool set and the same view of the scope (the
// stdio user is "").
func (s *Server) withListCache(t *ResilientStdioTransport) *ResilientStdioTransport {
	c := *t
	c.listState = func() (uint64, string, bool) {
		version, names := s.lists.snapshot()
		return version, listKey("stdio", names, s.visibleTo(context.Background(), "")), s.isReady() && !s.isClosed()
	}
	return &c
}

// isClosed reports whether Close has begun.
func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// markModernList returns r with its modernList in its context, for
// captureToolList, when it has one.
func markModernList(r *http.Request, msg *jsonrpc.Request) *http.Request {
	if ml, ok := modernListOf(r, msg); ok {
		return r.WithContext(context.WithValue(r.Context(), modernListKey{}, ml))
	}
	return r
}

// plainParams reports whether raw tools/list params ask for the first
// page and nothing else: none, null, {} or {"_meta":{}}.
func plainParams(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	var p map[string]json.RawMessage
	if json.Unmarshal(raw, &p) != nil {
		return false
	}
	for k, v := range p {
		if k != "_meta" {
			return false
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) != nil || len(m) > 0 {
			return false
		}
	}
	return true
}

// acceptsBoth reads Accept as go-sdk does: whether it takes JSON and an
// event stream.
func acceptsBoth(values []string) (jsonOK, streamOK bool) {
	for _, value := range values {
		for raw := range strings.SplitSeq(value, ",") {
			base, _, _ := strings.Cut(strings.TrimSpace(raw), ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				streamOK = true
			case "*/*":
				jsonOK, streamOK = true, true
			}
		}
	}
	return jsonOK, streamOK
}
