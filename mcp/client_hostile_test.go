package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// rawServer is a go-sdk server whose tools/list answers come from list,
// bypassing the SDK's own pagination and checks, as a hostile server's
// would.
func rawServer(t *testing.T, list func(cursor string) *sdk.ListToolsResult) (*sdk.Server, sdk.Transport) {
	t.Helper()
	s := sdk.NewServer(&sdk.Implementation{Name: "raw"}, &sdk.ServerOptions{
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}},
	})
	s.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if method == "tools/list" {
				return list(req.GetParams().(*sdk.ListToolsParams).Cursor), nil
			}
			return next(ctx, method, req)
		}
	})
	st, ct := sdk.NewInMemoryTransports()
	ss, err := s.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	return s, ct
}

func objTool(name string) *sdk.Tool {
	return &sdk.Tool{Name: name, Description: name, InputSchema: map[string]any{"type": "object"}}
}

func TestClientListBounds(t *testing.T) {
	t.Parallel()
	var pages atomic.Int64
	_, ct := rawServer(t, func(cursor string) *sdk.ListToolsResult {
		n := pages.Add(1)
		var ts []*sdk.Tool
		for i := range 10 {
			ts = append(ts, objTool("t"+strconv.FormatInt(n, 10)+"_"+strconv.Itoa(i)))
		}
		return &sdk.ListToolsResult{Tools: ts, NextCursor: "c" + strconv.FormatInt(n, 10)}
	})
	local := calls.NewRouter(nil)
	c, err := mcp.Connect(t.Context(), ct, local, &mcp.ClientOptions{Name: "endless", Limits: mcp.ListLimits{Pages: 7, Tools: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := pages.Load(); p != 7 {
		t.Errorf("read %d pages, want the limit of 7", p)
	}
	if n := local.Len(); n != 70 {
		t.Errorf("%d tools, want 70", n)
	}

	// Tools per server, and a control: under the limit, all are kept.
	for _, tc := range []struct{ limit, want int }{{25, 25}, {1000, 70}} {
		pages.Store(0)
		r := calls.NewRouter(nil)
		_, ct := rawServer(t, func(string) *sdk.ListToolsResult {
			n := pages.Add(1)
			var ts []*sdk.Tool
			for i := range 10 {
				ts = append(ts, objTool("t"+strconv.FormatInt(n, 10)+"_"+strconv.Itoa(i)))
			}
			next := ""
			if n < 7 {
				next = "more" + strconv.FormatInt(n, 10)
			}
			return &sdk.ListToolsResult{Tools: ts, NextCursor: next}
		})
		c, err := mcp.Connect(t.Context(), ct, r, &mcp.ClientOptions{Limits: mcp.ListLimits{Tools: tc.limit}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Len() != tc.want {
			t.Errorf("limit %d: %d tools, want %d", tc.limit, r.Len(), tc.want)
		}
		c.Close()
	}
}

func TestClientCapsDescriptionsAndSkipsBadSchemas(t *testing.T) {
	t.Parallel()
	deep := `{"type":"object","properties":{"x":` + strings.Repeat(`{"type":"array","items":`, 50) + `{}` + strings.Repeat(`}`, 50) + `}}`
	var deepSchema map[string]any
	if err := json.Unmarshal([]byte(deep), &deepSchema); err != nil {
		t.Fatal(err)
	}
	_, ct := rawServer(t, func(string) *sdk.ListToolsResult {
		return &sdk.ListToolsResult{Tools: []*sdk.Tool{
			{Name: "good", Description: strings.Repeat("d", 2<<20), InputSchema: map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "string"}}}},
			{Name: "props5", InputSchema: map[string]any{"type": "object", "properties": 5}},
			{Name: "reqx", InputSchema: map[string]any{"type": "object", "required": "x"}},
			{Name: "booleanprop", InputSchema: map[string]any{"type": "object", "properties": map[string]any{"a": true}}},
			{Name: "badref", InputSchema: map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"$ref": "#/$defs/nope"}}}},
			{Name: "deep", InputSchema: deepSchema},
			{Name: "big", InputSchema: map[string]any{"type": "object", "description": strings.Repeat("x", 100<<10)}},
		}}
	})
	r := calls.NewRouter(nil)
	c, err := mcp.Connect(t.Context(), ct, r, &mcp.ClientOptions{Name: "bad"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := names(r)
	if len(got) != 1 || got[0] != "good" {
		t.Fatalf("tools = %v, want only good", got)
	}
	call, _ := r.Lookup("good")
	if len(call.Description) > mcp.DefaultDescription || !strings.HasSuffix(call.Description, "…") {
		t.Errorf("description of %d bytes was not cut", len(call.Description))
	}
}

func TestCheckSchema(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		schema string
		ok     bool
	}{
		{`{"type":"object"}`, true},
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, true},
		{`{"type":"object","$defs":{"s":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/s"}}}`, true},
		{`{"type":"object","properties":5}`, false},
		{`{"type":"object","required":"x"}`, false},
		{`{"type":"object","properties":{"a":{"type":7}}}`, false},
		{`{"type":"object","properties":{"a":{"$ref":"#/nowhere"}}}`, false},
		{`{"type":"string"}`, false},
		{`{"type":"object","properties":{"a":` + strings.Repeat(`{"items":`, 40) + `{}` + strings.Repeat(`}`, 40) + `}}`, false},
	} {
		err := mcp.CheckSchema(json.RawMessage(tc.schema), 0)
		if (err == nil) != tc.ok {
			t.Errorf("CheckSchema(%.60s) = %v, want ok %v", tc.schema, err, tc.ok)
		}
		if err != nil && !errors.Is(err, mcp.ErrBadSchema) {
			t.Errorf("error %v does not wrap ErrBadSchema", err)
		}
	}
}

// The "__" join cannot be forged: server "a" with tool "b__sh" and server
// "a__b" with tool "sh" get different names, and each name's server part
// is the server it belongs to.
func TestLocalNamesJoinNotSpoofable(t *testing.T) {
	t.Parallel()
	p := mcp.ServerPrefixes([]string{"a", "a__b"})
	x := mcp.LocalNames("a", true, []string{"b__sh"})["b__sh"]
	y := mcp.LocalNames("a__b", true, []string{"sh"})["sh"]
	if x == y {
		t.Fatalf("both are %q", x)
	}
	if srv, _, _ := strings.Cut(y, "__"); srv != p["a__b"] {
		t.Errorf("%q: server part %q, want %q", y, srv, p["a__b"])
	}
	if srv, _, _ := strings.Cut(x, "__"); srv != p["a"] {
		t.Errorf("%q: server part %q, want %q", x, srv, p["a"])
	}
	// Names that clean up to one prefix get distinct ones.
	q := mcp.ServerPrefixes([]string{"a.b", "a_b", "a__b"})
	if q["a.b"] == q["a_b"] || q["a_b"] == q["a__b"] || q["a.b"] == q["a__b"] {
		t.Errorf("prefixes collide: %v", q)
	}
	// A long Cline-style server name leaves room for the tools, which stay
	// distinct.
	long := "github.com/modelcontextprotocol/servers/tree/main/src/filesystem"
	n := mcp.LocalNames(long, true, []string{"read_file", "read_files", "sh"})
	if n["read_file"] == n["read_files"] || !strings.HasSuffix(n["sh"], "__sh") {
		t.Errorf("names = %v", n)
	}
	for _, s := range []string{"a", "a__b", "_x_", "x__", long, "é"} {
		if pre := mcp.ServerPrefix(s); strings.Contains(pre, "__") || strings.HasPrefix(pre, "_") || strings.HasSuffix(pre, "_") || len(pre) > 24 {
			t.Errorf("ServerPrefix(%q) = %q", s, pre)
		}
	}
}

// A burst of list_changed costs one listing, not one per notification.
func TestClientDebouncesListChanged(t *testing.T) {
	t.Parallel()
	var lists atomic.Int64
	s, ct := rawServer(t, func(string) *sdk.ListToolsResult {
		lists.Add(1)
		return &sdk.ListToolsResult{Tools: []*sdk.Tool{objTool("x")}}
	})
	changed := make(chan struct{}, 100)
	r := calls.NewRouter(nil)
	c, err := mcp.Connect(t.Context(), ct, r, &mcp.ClientOptions{Debounce: 50 * time.Millisecond,
		OnToolsChanged: func(calls.Change) { changed <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := lists.Load()
	// Adding and removing a tool makes the server send list_changed.
	began := time.Now()
	for i := range 200 {
		s.AddTool(objTool("n"+strconv.Itoa(i)), func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) { return nil, nil })
	}
	// A storm is listed at most once per 10×Debounce while it lasts, and
	// once after it: on a loaded machine the 200 notifications can take
	// seconds to send, so the bound follows how long they took.
	burst := time.Since(began)
	allowed := int64(burst/(10*50*time.Millisecond)) + 3
	deadline := time.After(20 * time.Second)
	for lists.Load() == before {
		select {
		case <-deadline:
			t.Fatal("no re-list after the burst")
		case <-time.After(10 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond) // let any extra re-list show
	if n := lists.Load() - before; n > allowed {
		t.Errorf("%d re-lists for one burst of 200 notifications sent over %v (at most %d)", n, burst, allowed)
	}
}

func TestClientToolIdentity(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	r.Add(remoteTool("sh", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("x"), nil }))
	c, _ := serve(t, r, &mcp.ClientOptions{Name: "a__b", Prefix: true})
	info, ok := c.Tool("a_b__sh")
	if !ok || info.Server != "a__b" || info.Name != "sh" || len(info.Digest) != 64 {
		t.Fatalf("Tool = %+v, %v", info, ok)
	}
	// Redefining the tool changes its digest.
	r.Remove("sh")
	d := remoteTool("sh", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("y"), nil })
	d.Description = "now it does other things"
	r.Add(d)
	if _, err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	info2, _ := c.Tool("a_b__sh")
	if info2.Digest == info.Digest {
		t.Error("a redefined tool kept its digest")
	}
}
