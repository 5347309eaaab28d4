package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// connectResources is connect with the workspace served as resources; a
// client's resource updates go to updated.
func connectResources(t *testing.T, s *Sandbox, updated chan<- string, version string) *sdk.ClientSession {
	t.Helper()
	r := calls.NewRouter(nil)
	if _, err := r.Sync("sandbox", s.Calls()); err != nil {
		t.Fatal(err)
	}
	return mcptest.ConnectWith(t, r, &mcp.ServerOptions{Name: "membrane", Version: "test", WorkspaceResources: &mcp.WorkspaceResourceOptions{MaxReadBytes: 1 << 20}},
		&sdk.ClientOptions{ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
			select {
			case updated <- req.Params.URI:
			default:
			}
		}}, &sdk.ClientSessionOptions{ProtocolVersion: version})
}

// The protocol versions the resource tests run with: the newest, whose
// subscriptions go through subscriptions/listen, and the one before,
// with resources/subscribe.
const (
	newest = "2026-07-28"
	legacy = "2025-11-25"
)

// TestWorkspaceResources: the files sh writes are listed and read as
// resources; a subscription hears of a change sh makes, and not of a
// file nobody changed; URIs of another handle, outside the workspace, a
// FIFO and a file over the read limit are refused.
func TestWorkspaceResources(t *testing.T) {
	for _, v := range []string{newest, legacy} {
		t.Run(v, func(t *testing.T) { testWorkspaceResources(t, v) })
	}
}

func testWorkspaceResources(t *testing.T, version string) {
	ctx := t.Context()
	updated := make(chan string, 16)
	cs := connectResources(t, newTestSandbox(t, nil), updated, version)
	if tl, err := cs.ListResourceTemplates(ctx, nil); err != nil || len(tl.ResourceTemplates) != 1 || tl.ResourceTemplates[0].URITemplate != calls.WorkspaceURITemplate {
		t.Fatalf("templates: %v %+v", err, tl)
	}
	if l, err := cs.ListResources(ctx, nil); err != nil || len(l.Resources) != 0 {
		t.Fatalf("before any call: %v %+v", err, l)
	}
	r := sh(t, cs, "mkdir -p sub && echo one > sub/a.txt && echo two > b.txt && mkfifo fifo && head -c 2000000 /dev/zero > big && ln -s /etc/passwd out/link")
	ok(t, r)
	l, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, res := range l.Resources {
		uris = append(uris, res.Name)
	}
	if got := strings.Join(uris, " "); got != "b.txt big sub/a.txt" {
		t.Fatalf("resources: %q", got)
	}
	a := l.Resources[2]
	handle, rel, err := calls.ParseWorkspaceURI(a.URI)
	if err != nil || rel != "sub/a.txt" || a.MIMEType != "text/plain" {
		t.Fatalf("uri %q: %v %q %q", a.URI, err, rel, a.MIMEType)
	}
	rd, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: a.URI})
	if err != nil || len(rd.Contents) != 1 || rd.Contents[0].Text != "one\n" {
		t.Fatalf("read: %v %+v", err, rd)
	}

	for _, c := range []struct{ uri, want string }{
		{calls.WorkspaceURI("wsomeoneelse", "sub/a.txt"), "not found"},
		{"workspace://" + handle + "/../../etc/passwd", "not a workspace uri"},
		{"workspace://" + handle + "/%2e%2e/x", "not a workspace uri"},
		{"file:///etc/passwd", "not found"},
		{calls.WorkspaceURI(handle, "fifo"), "not a regular file"},
		{calls.WorkspaceURI(handle, "out/link"), "outside"},
		{calls.WorkspaceURI(handle, "big"), "larger than the limit"},
	} {
		_, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: c.uri})
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), c.want) {
			t.Errorf("read %s: want an error saying %q, got %v", c.uri, c.want, err)
		}
	}

	if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: a.URI}); err != nil {
		t.Fatal(err)
	}
	b := calls.WorkspaceURI(handle, "b.txt")
	if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: b}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: calls.WorkspaceURI("wother", "b.txt")}); version == legacy && err == nil {
		t.Error("a subscription to another workspace was accepted")
	}
	ok(t, sh(t, cs, "echo changed >> sub/a.txt"))
	select {
	case got := <-updated:
		if got != a.URI {
			t.Fatalf("updated %s, want %s", got, a.URI)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no notifications/resources/updated after sh changed the file")
	}
	// Nothing else changed: no more updates, even after a poll.
	ok(t, sh(t, cs, "cat b.txt"))
	time.Sleep(2 * subscriptionPollForTest)
	select {
	case got := <-updated:
		t.Errorf("an update for %s, which did not change", got)
	default:
	}
	if err := cs.Unsubscribe(ctx, &sdk.UnsubscribeParams{URI: a.URI}); err != nil {
		t.Fatal(err)
	}
	ok(t, sh(t, cs, "echo again >> sub/a.txt"))
	select {
	case got := <-updated:
		t.Errorf("an update for %s after unsubscribing", got)
	case <-time.After(2 * subscriptionPollForTest):
	}
}

// subscriptionPollForTest is the server's poll interval (one second).
const subscriptionPollForTest = time.Second

// TestResourceSubscriptionBound: a session may hold at most 64
// subscriptions; the 65th is refused with a reason, and one more is
// accepted after an unsubscribe.
func TestResourceSubscriptionBound(t *testing.T) {
	ctx := t.Context()
	cs := connectResources(t, newTestSandbox(t, nil), make(chan string, 1), legacy)
	ws := call(t, cs, "write_file", map[string]any{"path": "x", "content": "x"})
	uri, _ := ws.st["uri"].(string)
	handle, _, err := calls.ParseWorkspaceURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: calls.WorkspaceURI(handle, "f"+strings.Repeat("x", i))}); err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
	}
	err = cs.Subscribe(ctx, &sdk.SubscribeParams{URI: calls.WorkspaceURI(handle, "one-more")})
	if err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Fatalf("the 65th subscription: %v", err)
	}
	if err := cs.Unsubscribe(ctx, &sdk.UnsubscribeParams{URI: calls.WorkspaceURI(handle, "f")}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: calls.WorkspaceURI(handle, "one-more")}); err != nil {
		t.Fatalf("after an unsubscribe: %v", err)
	}
}
