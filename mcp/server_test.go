package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

var echoCall = mcptest.EchoCall

func call(name string, h calls.HandlerFunc) calls.Call {
	return calls.Call{
		Name:        name,
		Description: "test call " + name,
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Kind:        calls.KindTool,
		Handler:     h,
	}
}

func mustAdd(t *testing.T, r *calls.Router, cs ...calls.Call) {
	t.Helper()
	for _, c := range cs {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
}

func toolNames(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func TestListAndCall(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	ro := echoCall("echo")
	ro.ReadOnly = true
	ro.Title = "Echo"
	mustAdd(t, r, ro)
	cs := mcptest.Connect(t, r, nil)

	init := cs.InitializeResult()
	if init.Capabilities.Tools == nil || !init.Capabilities.Tools.ListChanged {
		t.Errorf("tools capability = %+v, want listChanged", init.Capabilities.Tools)
	}
	lt, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lt.Tools) != 1 {
		t.Fatalf("tools = %d, want 1", len(lt.Tools))
	}
	tool := lt.Tools[0]
	if tool.Name != "echo" || tool.Title != "Echo" || tool.Description != "Echo the text back." {
		t.Errorf("tool = %+v", tool)
	}
	if tool.Annotations == nil || !tool.Annotations.ReadOnlyHint {
		t.Errorf("annotations = %+v, want readOnlyHint", tool.Annotations)
	}
	schema, _ := json.Marshal(tool.InputSchema)
	if !strings.Contains(string(schema), `"required":["text"]`) {
		t.Errorf("schema = %s", schema)
	}

	res, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "hello"})
	if res.IsError || text != "hello" {
		t.Errorf("echo = %q (isError %v), want hello", text, res.IsError)
	}
	res, text = mcptest.CallText(t, cs, "echo", map[string]any{"text": "x", "extra": 1})
	if !res.IsError || !strings.Contains(text, "unknown field") {
		t.Errorf("bad args = %q (isError %v), want a tool error naming the unknown field", text, res.IsError)
	}
}

func TestResultContent(t *testing.T) {
	t.Parallel()
	png := []byte("\x89PNG\r\n\x1a\nfake")
	r := calls.NewRouter(nil)
	mustAdd(t, r,
		call("image", func(context.Context, *calls.Request) (*calls.Result, error) {
			return &calls.Result{
				Content: []calls.Content{
					{Type: calls.ContentText, Text: "a picture"},
					{Type: calls.ContentImage, Data: png, MIMEType: "image/png"},
				},
				Structured: map[string]any{"width": 1},
			}, nil
		}),
		call("fail", func(context.Context, *calls.Request) (*calls.Result, error) {
			return calls.Errorf("exit status 2"), nil
		}),
		call("goerr", func(context.Context, *calls.Request) (*calls.Result, error) {
			return nil, errors.New("cannot reach the backend")
		}),
		call("binary", func(context.Context, *calls.Request) (*calls.Result, error) {
			return &calls.Result{Content: []calls.Content{{Type: calls.ContentText, Text: "a\xffb"}}}, nil
		}),
	)
	cs := mcptest.Connect(t, r, nil)

	res, _ := mcptest.CallText(t, cs, "image", nil)
	if res.IsError || len(res.Content) != 2 {
		t.Fatalf("image result = %+v", res)
	}
	img, ok := res.Content[1].(*sdk.ImageContent)
	if !ok || string(img.Data) != string(png) || img.MIMEType != "image/png" {
		t.Errorf("image content = %#v", res.Content[1])
	}
	if m, ok := res.StructuredContent.(map[string]any); !ok || m["width"] != 1.0 {
		t.Errorf("structured = %#v", res.StructuredContent)
	}

	res, text := mcptest.CallText(t, cs, "fail", nil)
	if !res.IsError || text != "exit status 2" {
		t.Errorf("fail = %q (isError %v)", text, res.IsError)
	}

	_, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "goerr"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the backend") {
		t.Errorf("go error = %v, want a protocol error carrying the message", err)
	}

	_, text = mcptest.CallText(t, cs, "binary", nil)
	if text != "a\uFFFDb" {
		t.Errorf("binary = %q, want invalid UTF-8 replaced", text)
	}
}

func TestPanicBecomesToolError(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	mustAdd(t, r, call("boom", func(context.Context, *calls.Request) (*calls.Result, error) {
		panic("kaboom")
	}), echoCall("echo"))
	cs := mcptest.Connect(t, r, nil)
	res, text := mcptest.CallText(t, cs, "boom", nil)
	if !res.IsError || !strings.Contains(text, "kaboom") {
		t.Errorf("panic = %q (isError %v), want a tool error", text, res.IsError)
	}
	if _, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "still here"}); text != "still here" {
		t.Errorf("after a panic echo = %q", text)
	}
}

// TestListChanged checks that adding and removing a call reaches a connected
// client, and that a call removed while the model still knows it answers a
// tool error that says to list the tools again.
func TestListChanged(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	mustAdd(t, r, echoCall("echo"))
	cs := checkListChanged(t, r, "in-memory", func(o *sdk.ClientOptions) *sdk.ClientSession { return mcptest.Connect(t, r, o) })
	r.Remove("echo")
	_, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}})
	if err == nil || !strings.Contains(err.Error(), "echo") {
		t.Errorf("removed tool: err = %v, want an unknown-tool error", err)
	}
}

// checkListChanged connects a client through connect, then adds a call to r
// and removes it again. Each change must reach the client as
// notifications/tools/list_changed and show in its next tools/list. It
// returns the session for further checks.
func checkListChanged(t *testing.T, r *calls.Router, transport string, connect func(*sdk.ClientOptions) *sdk.ClientSession) *sdk.ClientSession {
	t.Helper()
	changed := make(chan struct{}, 10)
	cs := connect(&sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
	})
	before := toolNames(t, cs)
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no list_changed over %s after %s", transport, what)
		}
	}
	mustAdd(t, r, echoCall("added_later"))
	wait("add")
	if got := toolNames(t, cs); len(got) != len(before)+1 || !slices.Contains(got, "added_later") {
		t.Errorf("%s: after add tools = %v, want %v plus added_later", transport, got, before)
	}
	r.Remove("added_later")
	wait("remove")
	if got := toolNames(t, cs); !slices.Equal(got, before) {
		t.Errorf("%s: after remove tools = %v, want %v", transport, got, before)
	}
	return cs
}

// staleRouter serves a router whose changes stop reaching the server once
// frozen: the SDK keeps listing what the router has dropped, the state of
// a call that arrives between a removal and its mirror.
type staleRouter struct {
	*calls.Router
	frozen atomic.Bool
}

func (s *staleRouter) Subscribe(fn func(calls.Change)) func() {
	return s.Router.Subscribe(func(c calls.Change) {
		if !s.frozen.Load() {
			fn(c)
		}
	})
}

// TestUnknownCallAdapter covers the race the SDK cannot see: the tool was
// still listed when the call arrived but the router no longer has it. The
// answer is a tool error that says to list the tools again, not a
// protocol error.
func TestUnknownCallAdapter(t *testing.T) {
	t.Parallel()
	r := &staleRouter{Router: calls.NewRouter(nil)}
	mustAdd(t, r.Router, echoCall("echo"))
	srv := mcp.NewServer(r, nil)
	t.Cleanup(srv.Close)
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.SDK().Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	args := &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}
	// Control: served while the router has it.
	if res, err := cs.CallTool(t.Context(), args); err != nil || res.IsError {
		t.Fatalf("echo before the removal: %v %+v", err, res)
	}
	r.frozen.Store(true)
	r.Remove("echo")
	res, err := cs.CallTool(t.Context(), args)
	if err != nil {
		t.Fatalf("listed but gone: protocol error %v, want a tool result", err)
	}
	if !res.IsError || !strings.Contains(mcptest.TextOf(res), "tools/list") {
		t.Errorf("result = %q (isError %v), want a tool error telling to list tools again", mcptest.TextOf(res), res.IsError)
	}
}

func TestProgressAndLogging(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	mustAdd(t, r, call("work", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		for i := 1; i <= 3; i++ {
			req.Progress.Report(ctx, float64(i), 3, fmt.Sprintf("step %d", i))
		}
		req.Progress.Report(ctx, 2, 3, "backwards") // sent as a hair more than 3: progress must increase
		req.Logger.InfoContext(ctx, "working hard", "step", 3)
		req.Logger.DebugContext(ctx, "too detailed")
		return calls.Text("done"), nil
	}))
	var (
		mu       sync.Mutex
		progress []string
		logs     []string
	)
	cs := mcptest.Connect(t, r, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, fmt.Sprintf("%v/%v %s", req.Params.Progress, req.Params.Total, req.Params.Message))
			mu.Unlock()
		},
		//lint:ignore SA1019 client logging is what this test checks; deprecated only from 2026-07-28.
		LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) {
			mu.Lock()
			b, _ := json.Marshal(req.Params.Data)
			logs = append(logs, fmt.Sprintf("%s %s %s", req.Params.Level, req.Params.Logger, b))
			mu.Unlock()
		},
	})
	// The 2026-07-28 protocol carries the wanted log level on each request.
	meta := sdk.Meta{sdk.MetaKeyLogLevel: "info"} //lint:ignore SA1019 see above
	// Without a progress token: no progress.
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "work", Arguments: map[string]any{}, Meta: meta}); err != nil {
		t.Fatal(err)
	}
	p := &sdk.CallToolParams{Name: "work", Arguments: map[string]any{}, Meta: meta}
	p.SetProgressToken("tok-1")
	if _, err := cs.CallTool(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	// Notifications are sent before the reply on the same connection, but
	// delivered to handlers asynchronously.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		np, nl := len(progress), len(logs)
		mu.Unlock()
		if np >= 4 && nl >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "1/3 step 1,2/3 step 2,3/3 step 3,3.001/0 backwards"; strings.Join(progress, ",") != want {
		t.Errorf("progress = %q, want %q", progress, want)
	}
	if len(logs) != 2 {
		t.Fatalf("logs = %q, want 2 info records", logs)
	}
	for _, l := range logs {
		if !strings.HasPrefix(l, "info work ") || !strings.Contains(l, `"msg":"working hard"`) || !strings.Contains(l, `"step":3`) {
			t.Errorf("log = %q", l)
		}
	}
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	started := make(chan struct{})
	stopped := make(chan error, 1)
	mustAdd(t, r, call("hang", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	}))
	cs := mcptest.Connect(t, r, nil)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "hang"})
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client err = %v, want context.Canceled", err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled by notifications/cancelled")
	}
}

// TestSessionLifecycle checks that a call sees one calls.Session per MCP
// session, and that it closes when the client goes away.
func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	seen := make(chan *calls.Session, 10)
	closed := make(chan string, 10)
	mustAdd(t, r, call("who", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		req.Session.OnClose(func() { closed <- req.Session.ID() })
		seen <- req.Session
		return calls.Text(req.Session.ID()), nil
	}))
	srv := mcp.NewServer(r, nil)
	t.Cleanup(srv.Close)
	connect := func() *sdk.ClientSession {
		st, ct := sdk.NewInMemoryTransports()
		if _, err := srv.SDK().Connect(t.Context(), st, nil); err != nil {
			t.Fatal(err)
		}
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "t"}, nil).Connect(t.Context(), ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	a, b := connect(), connect()
	mcptest.CallText(t, a, "who", nil)
	mcptest.CallText(t, a, "who", nil)
	mcptest.CallText(t, b, "who", nil)
	s1, s2, s3 := <-seen, <-seen, <-seen
	if s1 != s2 {
		t.Error("two calls on one MCP session got different calls.Sessions")
	}
	if s1 == s3 {
		t.Error("two MCP sessions share a calls.Session")
	}
	a.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("calls.Session not closed when its MCP session ended")
	}
	if s3.Closed() {
		t.Error("closing one session closed another")
	}
	b.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("second calls.Session not closed")
	}
}

// TestCloseCancelsCalls checks that Server.Close cancels running calls and
// waits for them.
func TestCloseCancelsCalls(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	started := make(chan struct{})
	var finished atomic.Bool
	mustAdd(t, r, call("hang", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		close(started)
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond)
		finished.Store(true)
		return nil, ctx.Err()
	}))
	srv := mcp.NewServer(r, nil)
	st, ct := sdk.NewInMemoryTransports()
	if _, err := srv.SDK().Connect(t.Context(), st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	go cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "hang"})
	<-started
	srv.Close()
	if !finished.Load() {
		t.Error("Close returned before the running call finished")
	}
}

// TestMirrorSurvivesBadTool feeds the adapter a call the SDK panics on
// (an x-mcp-header annotation with an invalid header name, which
// calls.Validate accepts). The server must log it, leave it out and keep
// serving the rest.
func TestMirrorSurvivesBadTool(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	r := calls.NewRouter(nil)
	srv := mcp.NewServer(r, &mcp.ServerOptions{Logger: log})
	defer srv.Close()
	bad := call("bad", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text(""), nil })
	bad.InputSchema = json.RawMessage(`{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"bad header"}}}`)
	mustAdd(t, r, bad, echoCall("echo"))
	st, ct := sdk.NewInMemoryTransports()
	if _, err := srv.SDK().Connect(t.Context(), st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if names := toolNames(t, cs); strings.Join(names, ",") != "echo" {
		t.Errorf("tools = %v, want only echo", names)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "tool not served") || !strings.Contains(buf.String(), "call=bad") {
		t.Errorf("log = %q, want the rejected tool named", buf.String())
	}
}

// TestSDKPanicsOnBadTool pins the go-sdk behaviour that addTool recovers
// from: AddTool panics on a tool it cannot take (here an invalid
// x-mcp-header). If this fails after an upgrade, the SDK returns an error
// instead, and addTool should use it.
func TestSDKPanicsOnBadTool(t *testing.T) {
	t.Parallel()
	s := sdk.NewServer(&sdk.Implementation{Name: "bare", Version: "1"}, nil)
	schema := json.RawMessage(`{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"bad header"}}}`)
	panicked := func() (v any) {
		defer func() { v = recover() }()
		s.AddTool(&sdk.Tool{Name: "bad", InputSchema: schema}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) { return nil, nil })
		return nil
	}()
	if panicked == nil {
		t.Fatal("go-sdk AddTool took a tool with an invalid x-mcp-header without panicking: revisit Server.addTool")
	}
	// The control: a good tool is taken.
	s.AddTool(&sdk.Tool{Name: "good", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) { return nil, nil })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestReadyGate checks that initialize answers before Ready is closed while
// tools/list waits for it, and that /readyz says "starting" meanwhile.
func TestReadyGate(t *testing.T) {
	t.Parallel()
	r := routerWithEcho(t)
	ready := make(chan struct{})
	srv := mcp.NewServer(r, &mcp.ServerOptions{Ready: ready})
	t.Cleanup(srv.Close)
	st, ct := sdk.NewInMemoryTransports()
	if _, err := srv.SDK().Connect(t.Context(), st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatalf("initialize before ready: %v", err)
	}
	defer cs.Close()
	listed := make(chan []string, 1)
	go func() {
		lt, err := cs.ListTools(context.Background(), nil)
		if err != nil {
			listed <- []string{"error: " + err.Error()}
			return
		}
		var names []string
		for _, tool := range lt.Tools {
			names = append(names, tool.Name)
		}
		listed <- names
	}()
	select {
	case got := <-listed:
		t.Fatalf("tools/list answered before ready: %v", got)
	case <-time.After(100 * time.Millisecond):
	}
	mustAdd(t, r, echoCall("late"))
	close(ready)
	select {
	case got := <-listed:
		if strings.Join(got, ",") != "echo,late" {
			t.Errorf("tools after ready = %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tools/list still held after ready")
	}
}
