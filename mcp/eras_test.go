package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

const modern = "2026-07-28"

// connectVersion connects a go-sdk client offering version ("" for the
// SDK's newest) to url.
func connectVersion(t *testing.T, url, token, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	return mcptest.ConnectHTTPVersion(t, url, token, version, opts)
}

// TestHTTPNegotiatesEachEraOnOneEndpoint: one stateful endpoint gives a
// client that offers 2026-07-28 the sessionless protocol, and a client
// that offers an older version a session, as before.
func TestHTTPNegotiatesEachEraOnOneEndpoint(t *testing.T) {
	_, url := serveHTTP(t, routerWithEcho(t), nil)
	for _, tc := range []struct {
		offer, want string
		session     bool
	}{
		{"", modern, false}, // the SDK's default: server/discover first
		{modern, modern, false},
		{"2025-11-25", "2025-11-25", true},
		{"2025-06-18", "2025-06-18", true},
	} {
		t.Run("offer "+tc.offer, func(t *testing.T) {
			cs := connectVersion(t, url+"/mcp", "", tc.offer, nil)
			if got := cs.InitializeResult().ProtocolVersion; got != tc.want {
				t.Fatalf("negotiated %s, want %s", got, tc.want)
			}
			if has := cs.ID() != ""; has != tc.session {
				t.Fatalf("session id %q, want a session: %v", cs.ID(), tc.session)
			}
			_, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "hi " + tc.want})
			if text != "hi "+tc.want {
				t.Fatalf("echo: %q", text)
			}
		})
	}
}

// TestHTTPStatelessStillServesBoth: --stateless keeps working for both
// eras, as today.
func TestHTTPStatelessStillServesBoth(t *testing.T) {
	_, url := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{Stateless: true})
	for _, offer := range []string{modern, "2025-11-25"} {
		cs := connectVersion(t, url+"/mcp", "", offer, nil)
		if got := cs.InitializeResult().ProtocolVersion; got != offer {
			t.Fatalf("stateless, offered %s: negotiated %s", offer, got)
		}
		if _, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "x"}); text != "x" {
			t.Fatalf("echo: %q", text)
		}
	}
}

// rawModern posts one request of the sessionless protocol and returns the
// JSON-RPC response (read from JSON or from the SSE stream).
func rawModern(t *testing.T, url, method, name, params string) map[string]any {
	t.Helper()
	meta := fmt.Sprintf(`"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`, modern)
	if params == "" {
		params = "{" + meta + "}"
	} else {
		params = strings.TrimSuffix(params, "}") + "," + meta + "}"
	}
	hdr := map[string]string{"Mcp-Protocol-Version": modern, "Mcp-Method": method}
	if name != "" {
		hdr["Mcp-Name"] = name
	}
	resp := post(t, url, `{"jsonrpc":"2.0","id":7,"method":"`+method+`","params":`+params+`}`, hdr)
	if resp.Header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("%s: the sessionless protocol got a session id", method)
	}
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var msg map[string]any
				if json.Unmarshal([]byte(data), &msg) == nil && msg["id"] != nil {
					m = msg
					break
				}
			}
		}
	} else if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: %d: %v", method, resp.StatusCode, err)
	}
	if m == nil {
		t.Fatalf("%s: status %d, no response", method, resp.StatusCode)
	}
	return m
}

// TestHTTPModernRaw: the sessionless protocol by hand on the default
// (stateful) endpoint: server/discover lists 2026-07-28, tools/list comes
// in a deterministic (name) order with ttlMs and cacheScope, and results
// carry resultType.
func TestHTTPModernRaw(t *testing.T) {
	r := calls.NewRouter(nil)
	mustAdd(t, r, echoCall("zeta"), echoCall("alpha"), echoCall("mid"))
	_, base := serveHTTP(t, r, nil)
	url := base + "/mcp"

	disc := rawModern(t, url, "server/discover", "", "")
	res, _ := disc["result"].(map[string]any)
	versions, _ := res["supportedVersions"].([]any)
	if !slices.Contains(versions, any(modern)) || !slices.Contains(versions, any("2025-11-25")) {
		t.Fatalf("server/discover: %v", disc)
	}

	var orders [][]string
	for range 3 {
		lt := rawModern(t, url, "tools/list", "", "")
		res, _ := lt["result"].(map[string]any)
		tools, _ := res["tools"].([]any)
		var names []string
		for _, tl := range tools {
			names = append(names, tl.(map[string]any)["name"].(string))
		}
		orders = append(orders, names)
		if res["ttlMs"] != 0.0 || res["cacheScope"] != "public" {
			t.Fatalf("tools/list without ttlMs/cacheScope: %v", res)
		}
		if res["resultType"] != "complete" {
			t.Fatalf("tools/list resultType: %v", res["resultType"])
		}
	}
	if !slices.Equal(orders[0], []string{"alpha", "mid", "zeta"}) || !slices.Equal(orders[0], orders[1]) || !slices.Equal(orders[1], orders[2]) {
		t.Fatalf("tool order not deterministic by name: %v", orders)
	}

	call := rawModern(t, url, "tools/call", "alpha", `{"name":"alpha","arguments":{"text":"hello"}}`)
	cres, _ := call["result"].(map[string]any)
	if cres["resultType"] != "complete" || !strings.Contains(fmt.Sprint(cres["content"]), "hello") {
		t.Fatalf("tools/call: %v", call)
	}

	// The old era on the same endpoint: initialize still makes a session.
	resp := post(t, url, initBody, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize on the same endpoint: %d, session %q", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"))
	}
	// A GET of the new protocol is not the old SSE stream: 405.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Mcp-Protocol-Version", modern)
	req.Header.Set("Accept", "text/event-stream")
	gr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	gr.Body.Close()
	if gr.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET with 2026-07-28: %d, want 405", gr.StatusCode)
	}
}

// TestHTTPModernListenGetsListChanged: a 2026-07-28 client listens with
// subscriptions/listen and hears a tool appear; a 2025-11-25 session on
// the same endpoint hears it too.
func TestHTTPModernListenGetsListChanged(t *testing.T) {
	r := routerWithEcho(t)
	_, base := serveHTTP(t, r, nil)
	heard := func() (*sdk.ClientOptions, chan struct{}) {
		ch := make(chan struct{}, 8)
		return &sdk.ClientOptions{ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			select {
			case ch <- struct{}{}:
			default:
			}
		}}, ch
	}
	mo, modernHeard := heard()
	cs := connectVersion(t, base+"/mcp", "", modern, mo)
	oo, oldHeard := heard()
	old := connectVersion(t, base+"/mcp", "", "2025-11-25", oo)
	if cs.ID() != "" || old.ID() == "" {
		t.Fatalf("sessions: modern %q, old %q", cs.ID(), old.ID())
	}
	// Give the listen stream time to be in place: a list call after
	// Connect is answered only once the server is serving this client.
	if len(toolNames(t, cs)) != 1 {
		t.Fatal("want one tool")
	}
	deadline := time.After(20 * time.Second)
	for i := 0; ; i++ {
		mustAdd(t, r, echoCall(fmt.Sprintf("added%d", i)))
		select {
		case <-modernHeard:
		case <-time.After(500 * time.Millisecond):
			select {
			case <-deadline:
				t.Fatal("the 2026-07-28 client never heard list_changed")
			default:
			}
			continue
		}
		break
	}
	select {
	case <-oldHeard:
	case <-deadline:
		t.Fatal("the 2025-11-25 session never heard list_changed")
	}
	if names := toolNames(t, cs); !slices.Contains(names, "added0") {
		t.Fatalf("listed after the change: %v", names)
	}
}

// whereCall answers which workspace session and handle its call resolved.
func whereCall() calls.Call {
	return call("where", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		var in struct {
			Workspace string `json:"workspace"`
		}
		_ = json.Unmarshal(req.Arguments, &in)
		ws, err := calls.ResolveWorkspace(req, in.Workspace)
		if err != nil {
			return calls.Errorf("%v", err), nil
		}
		defer ws.Release()
		r := calls.Text(ws.Session.ID())
		r.Structured = map[string]any{"session": ws.Session.ID(), "workspace": ws.Handle, "new": ws.New}
		return r, nil
	})
}

// TestHTTPWorkspaceHandlesByToken: over the sessionless protocol a call
// without a handle gets a new one, a later request with it gets the same
// workspace, another token's request with it is refused; a 2025-11-25
// session keeps its own workspace and makes no handle.
func TestHTTPWorkspaceHandlesByToken(t *testing.T) {
	r := calls.NewRouter(nil)
	mustAdd(t, r, whereCall())
	store := calls.NewWorkspaces(nil)
	t.Cleanup(store.Close)
	srv := mcp.NewServer(r, &mcp.ServerOptions{Workspaces: store})
	users := map[string]string{"tok-alice": "alice", "tok-bob": "bob"}
	h, err := srv.HTTPHandler(&mcp.HTTPOptions{Verify: func(tok string) (string, bool) { u, ok := users[tok]; return u, ok }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	where := func(cs *sdk.ClientSession, handle string) (map[string]any, string, bool) {
		t.Helper()
		args := map[string]any{}
		if handle != "" {
			args["workspace"] = handle
		}
		res, text := mcptest.CallText(t, cs, "where", args)
		st, _ := res.StructuredContent.(map[string]any)
		return st, text, res.IsError
	}
	alice := connectVersion(t, ts.URL+"/mcp", "tok-alice", modern, nil)
	first, _, _ := where(alice, "")
	handle, _ := first["workspace"].(string)
	if !calls.ValidWorkspaceHandle(handle) || first["new"] != true {
		t.Fatalf("first sessionless call: %v", first)
	}
	again, _, _ := where(alice, handle)
	if again["session"] != first["session"] || again["new"] != false {
		t.Fatalf("by handle: %v, want session %v", again, first["session"])
	}
	other, _, _ := where(alice, "")
	if other["workspace"] == handle {
		t.Fatal("a call without the handle got the same one")
	}
	bob := connectVersion(t, ts.URL+"/mcp", "tok-bob", modern, nil)
	if _, text, isErr := where(bob, handle); !isErr || !strings.Contains(text, "not a workspace of this token") {
		t.Fatalf("bob with alice's handle: %v %q", isErr, text)
	}
	// A session keeps its own workspace, call after call.
	sess := connectVersion(t, ts.URL+"/mcp", "tok-alice", "2025-11-25", nil)
	s1, _, _ := where(sess, "")
	s2, _, _ := where(sess, "")
	if s1["workspace"] != "" || s1["session"] != s2["session"] {
		t.Fatalf("a session's calls: %v then %v", s1, s2)
	}
	if store.Len() != 2 {
		t.Fatalf("%d handles, want the 2 sessionless calls made", store.Len())
	}
}

// TestSDKClientCachesToolListForTTL pins the go-sdk behaviour that
// ServerOptions.ToolListTTL's zero default works around: a 2026-07-28
// client answers tools/list from its cache for ttlMs without asking the
// server, so a list that changed without list_changed (a token's scope
// reloaded) would stay stale. With ttlMs 0 every ListTools asks.
func TestSDKClientCachesToolListForTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want int
	}{{time.Hour, 1}, {0, 3}} {
		r := routerWithEcho(t)
		srv := mcp.NewServer(r, &mcp.ServerOptions{ToolListTTL: tc.ttl})
		h, err := srv.HTTPHandler(nil)
		if err != nil {
			t.Fatal(err)
		}
		// Counted as they reach the server: the list cache answers
		// repeated ones before the SDK.
		var lists atomic.Int32
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("Mcp-Method") == "tools/list" {
				lists.Add(1)
			}
			h.ServeHTTP(w, req)
		}))
		cs := connectVersion(t, ts.URL+"/mcp", "", modern, nil)
		for range 3 {
			if _, err := cs.ListTools(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
		}
		cs.Close()
		srv.Close()
		ts.Close()
		if got := int(lists.Load()); got != tc.want {
			t.Errorf("ttl %s: the server saw %d tools/list for 3 ListTools, want %d", tc.ttl, got, tc.want)
		}
	}
}

// connectClient connects membrane's client (the orchestrator's) to url,
// offering version ("" for the newest).
func connectClient(t *testing.T, url, version string, changed chan<- calls.Change) (*mcp.Client, *calls.Router) {
	t.Helper()
	local := calls.NewRouter(nil)
	c, err := mcp.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, local, &mcp.ClientOptions{
		ProtocolVersion: version, Debounce: 20 * time.Millisecond,
		OnToolsChanged: func(ch calls.Change) {
			if changed != nil {
				changed <- ch
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, local
}

// TestClientSpeaksBothEras: the orchestrator's client takes 2026-07-28
// from membrane (server/discover) and a session when asked for
// 2025-11-25, and on both hears a tool appear and lists it.
func TestClientSpeaksBothEras(t *testing.T) {
	for _, tc := range []struct{ offer, want string }{{"", modern}, {"2025-11-25", "2025-11-25"}} {
		t.Run("offer "+tc.want, func(t *testing.T) {
			r := routerWithEcho(t)
			_, base := serveHTTP(t, r, nil)
			changed := make(chan calls.Change, 8)
			c, local := connectClient(t, base+"/mcp", tc.offer, changed)
			if v := c.ProtocolVersion(); v != tc.want {
				t.Fatalf("negotiated %s, want %s", v, tc.want)
			}
			if (c.Session().ID() == "") != (tc.want == modern) {
				t.Fatalf("session id %q on %s", c.Session().ID(), tc.want)
			}
			res, err := local.Call(t.Context(), "echo", &calls.Request{Arguments: json.RawMessage(`{"text":"x"}`)})
			if err != nil || res.TextOf() != "x" {
				t.Fatalf("echo: %v %v", res, err)
			}
			mustAdd(t, r, echoCall("later"))
			select {
			case ch := <-changed:
				if len(ch.Added) != 1 || ch.Added[0].Name != "later" {
					t.Fatalf("change: %+v", ch)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no list change heard")
			}
		})
	}
}

// TestClientFallsBackToInitialize: against servers that do not take
// server/discover (a stateful go-sdk server, which answers it with the
// legacy versions only, and one that does not know the method at all),
// the client initializes a session and still hears list changes.
func TestClientFallsBackToInitialize(t *testing.T) {
	for _, unknown := range []bool{false, true} {
		t.Run(fmt.Sprintf("discover unknown %v", unknown), func(t *testing.T) {
			s := sdk.NewServer(&sdk.Implementation{Name: "old", Version: "1"}, &sdk.ServerOptions{
				Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}}})
			add := func(name string) {
				s.AddTool(&sdk.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)},
					func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
						return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}, nil
					})
			}
			add("first")
			var h http.Handler = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)
			if unknown {
				inner := h
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Mcp-Method") == "server/discover" {
						w.Header().Set("Content-Type", "application/json")
						fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found"}}`)
						return
					}
					inner.ServeHTTP(w, r)
				})
			}
			ts := httptest.NewServer(h)
			t.Cleanup(ts.Close)
			changed := make(chan calls.Change, 8)
			c, local := connectClient(t, ts.URL, "", changed)
			if v := c.ProtocolVersion(); v != "2025-11-25" || c.Session().ID() == "" {
				t.Fatalf("fell back to %q with session %q, want 2025-11-25 with one", v, c.Session().ID())
			}
			if got := names(local); !slices.Equal(got, []string{"first"}) {
				t.Fatalf("tools %v", got)
			}
			add("second")
			select {
			case ch := <-changed:
				if len(ch.Added) != 1 || ch.Added[0].Name != "second" {
					t.Fatalf("change: %+v", ch)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no list change heard after the fallback")
			}
		})
	}
}

// TestClientCarriesWorkspaceHandle: over the sessionless protocol the
// client passes the handle the last result named to the next call that
// names none, so that a model that forgets it keeps its files; a call
// that names a workspace keeps its own.
func TestClientCarriesWorkspaceHandle(t *testing.T) {
	r := calls.NewRouter(nil)
	where := whereCall()
	where.InputSchema = json.RawMessage(`{"type":"object","properties":{"workspace":` + calls.WorkspaceArgSchema + `}}`)
	mustAdd(t, r, where)
	store := calls.NewWorkspaces(nil)
	t.Cleanup(store.Close)
	srv := mcp.NewServer(r, &mcp.ServerOptions{Workspaces: store})
	h, err := srv.HTTPHandler(nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	c, local := connectClient(t, ts.URL+"/mcp", "", nil)
	if c.ProtocolVersion() != modern {
		t.Fatalf("negotiated %s", c.ProtocolVersion())
	}
	do := func(args string) map[string]any {
		t.Helper()
		res, err := local.Call(t.Context(), "where", &calls.Request{Arguments: json.RawMessage(args)})
		if err != nil || res.IsError {
			t.Fatalf("where: %v %v", res, err)
		}
		return res.Structured.(map[string]any)
	}
	first := do(`{}`)
	second := do(`{}`)
	if first["new"] != true || second["new"] != false || second["workspace"] != first["workspace"] {
		t.Fatalf("the handle was not carried: %v then %v", first, second)
	}
	other, err := local.Call(t.Context(), "where", &calls.Request{Arguments: json.RawMessage(`{"workspace":"` + calls.NewWorkspaceHandle() + `"}`)})
	if err != nil || !other.IsError {
		t.Fatalf("a call naming its own (unknown) handle kept it: %v %v", other, err)
	}
	if store.Len() != 1 {
		t.Fatalf("%d handles, want 1", store.Len())
	}
}

// TestSDKStatefulRefusesModernProtocol pins the go-sdk behaviour the
// routing in HTTPHandler works around: go-sdk v1.8's streamable handler
// takes a 2026-07-28 request only when it is stateless; a stateful one
// answers it 400 with CodeUnsupportedProtocolVersion. membrane so serves
// both eras with two SDK handlers on one server (modernRequest).
func TestSDKStatefulRefusesModernProtocol(t *testing.T) {
	s := sdk.NewServer(&sdk.Implementation{Name: "bare", Version: "1"}, nil)
	s.AddTool(&sdk.Tool{Name: "noop", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{}, nil
		})
	for _, stateless := range []bool{false, true} {
		ts := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Stateless: stateless}))
		m := rawModern(t, ts.URL, "tools/list", "", "")
		ts.Close()
		errObj, _ := m["error"].(map[string]any)
		if stateless {
			if errObj != nil || m["result"] == nil {
				t.Fatalf("stateless SDK handler refused 2026-07-28: %v", m)
			}
			continue
		}
		if errObj == nil || errObj["code"] != float64(sdk.CodeUnsupportedProtocolVersion) {
			t.Fatalf("stateful SDK handler answered 2026-07-28 with %v; if go-sdk now takes it, the two-handler routing can go", m)
		}
	}
}
