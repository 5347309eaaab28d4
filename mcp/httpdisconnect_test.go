package mcp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// hang is a tool that runs until it is cancelled or released.
type hang struct {
	started   chan struct{}
	cancelled chan struct{}
	release   chan struct{}
}

func newHang() *hang {
	return &hang{started: make(chan struct{}, 16), cancelled: make(chan struct{}, 16), release: make(chan struct{})}
}

// run is the tool's body: it returns nil when released.
func (h *hang) run(ctx context.Context) error {
	h.started <- struct{}{}
	select {
	case <-ctx.Done():
		h.cancelled <- struct{}{}
		return ctx.Err()
	case <-h.release:
		return nil
	}
}

func (h *hang) call() calls.Call {
	return call("hang", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		if err := h.run(ctx); err != nil {
			return nil, err
		}
		return calls.Text("released"), nil
	})
}

// releaseAndRead lets the running calls end and checks that the one whose
// response comes on c answers "released" and that none was cancelled.
func (h *hang) releaseAndRead(t *testing.T, c net.Conn, what string) {
	t.Helper()
	close(h.release)
	if reply := readReply(t, c); !strings.Contains(reply, "released") || strings.Contains(reply, `error`) {
		t.Errorf("%s: %s", what, reply)
	}
	select {
	case <-h.cancelled:
		t.Errorf("%s: the call was cancelled", what)
	default:
	}
}

// wait waits for ch; the timeout only turns a hang into a failure.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("never happened: %s", what)
	}
}

// rawPost writes one POST to base's /mcp on a fresh TCP connection and
// returns the connection, for the test to read or close.
func rawPost(t *testing.T, base, body string, hdr map[string]string) net.Conn {
	t.Helper()
	u, err := neturl.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n", u.Host, len(body))
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + body)
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	return c
}

// initSession opens a stateful session of protocol version v over raw
// HTTP and returns the headers its later requests carry.
func initSession(t *testing.T, base, v string) map[string]string {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + v + `","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	resp := post(t, base+"/mcp", body, nil)
	sid := resp.Header.Get("Mcp-Session-Id")
	if m := readSSE(t, resp); resp.StatusCode != 200 || sid == "" || m["result"] == nil {
		t.Fatalf("initialize %s: %d %v", v, resp.StatusCode, m)
	}
	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": v}
	if resp := post(t, base+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: %d", resp.StatusCode)
	}
	return hdr
}

const hangCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hang","arguments":{}}}`

// newProtoHang is a tools/call of the sessionless 2026-07-28 protocol.
const newProtoHang = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hang","arguments":{},"_meta":{` +
	`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},` +
	`"io.modelcontextprotocol/clientCapabilities":{}}}}`

var newProtoHdr = map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "hang"}

// TestHTTPDisconnectCancels closes the TCP connection of a running
// tools/call, for each protocol version membrane serves, stateful and
// stateless: the call's context is cancelled. Beside each, the allow
// control: the same call on a connection that stays open runs to its end.
func TestHTTPDisconnectCancels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		stateless bool
		version   string // "" : the 2026-07-28 sessionless request
	}{
		{"stateful 2025-03-26", false, "2025-03-26"},
		{"stateful 2025-06-18", false, "2025-06-18"},
		{"stateful 2025-11-25", false, "2025-11-25"},
		{"stateless 2025-11-25", true, "2025-11-25"},
		{"stateless 2026-07-28", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHang()
			r := calls.NewRouter(nil)
			mustAdd(t, r, h.call())
			_, base := serveHTTP(t, r, &mcp.HTTPOptions{Stateless: tc.stateless})
			hdr, body := newProtoHdr, newProtoHang
			if tc.version != "" {
				body = hangCall
				hdr = map[string]string{"Mcp-Protocol-Version": tc.version}
				if !tc.stateless {
					hdr = initSession(t, base, tc.version)
				}
			}

			// Deny: the client goes away mid-call.
			c := rawPost(t, base, body, hdr)
			wait(t, h.started, "the call started")
			c.Close()
			wait(t, h.cancelled, "closing the connection cancelled the call")

			// Allow: the connection stays open; the call ends on its own.
			c = rawPost(t, base, strings.Replace(body, `"id":7`, `"id":8`, 1), hdr)
			wait(t, h.started, "the second call started")
			h.releaseAndRead(t, c, "a call on an open connection")
		})
	}
}

// readReply reads a raw HTTP response from c up to the JSON-RPC response
// (the first data line with an id and no method, or a JSON body).
func readReply(t *testing.T, c net.Conn) string {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(readSSE(t, resp))
}

// TestHTTPGetStreamCloseKeepsCalls closes a session's GET SSE stream while
// a call of that session runs on its own POST: the call is not cancelled.
func TestHTTPGetStreamCloseKeepsCalls(t *testing.T) {
	t.Parallel()
	h := newHang()
	r := calls.NewRouter(nil)
	mustAdd(t, r, h.call())
	_, base := serveHTTP(t, r, nil)
	hdr := initSession(t, base, "2025-11-25")

	call := rawPost(t, base, hangCall, hdr)
	wait(t, h.started, "the call started")

	u, _ := neturl.Parse(base)
	g, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(g, "GET /mcp HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: 2025-11-25\r\n\r\n", u.Host, hdr["Mcp-Session-Id"])
	resp, err := http.ReadResponse(bufio.NewReader(g), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET stream: %v %v", resp, err)
	}
	g.Close()
	// The session still answers after the stream is gone.
	if resp := post(t, base+"/mcp", `{"jsonrpc":"2.0","id":99,"method":"ping"}`, hdr); resp.StatusCode != 200 {
		t.Fatalf("ping after the GET stream closed: %d", resp.StatusCode)
	}
	h.releaseAndRead(t, call, "a call after its session's GET stream closed")
}

// TestSDKDisconnectContract pins the go-sdk behaviour that
// cancelAbandoned works around: with PropagateRequestCancellation, closing
// the connection of a 2026-07-28 request cancels its handler, but closing
// that of an earlier protocol's request in a stateful session does not.
// If this fails after an SDK upgrade, the SDK now does the job itself:
// drop the workaround in mcp/httpcancel.go.
func TestSDKDisconnectContract(t *testing.T) {
	t.Parallel()
	h := newHang()
	srv := sdk.NewServer(&sdk.Implementation{Name: "bare", Version: "1"}, nil)
	srv.AddTool(&sdk.Tool{Name: "hang", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, _ *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		if err := h.run(ctx); err != nil {
			return nil, err
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "released"}}}, nil
	})
	t.Cleanup(func() {
		for ss := range srv.Sessions() {
			ss.Close()
		}
	})
	posts := make(chan struct{}, 16) // one per finished POST
	serve := func(stateless bool) string {
		sh := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
			&sdk.StreamableHTTPOptions{Stateless: stateless, PropagateRequestCancellation: true})
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sh.ServeHTTP(w, r)
			if r.Method == http.MethodPost {
				posts <- struct{}{}
			}
		}))
		t.Cleanup(ts.Close)
		return ts.URL
	}

	// 2026-07-28 (served statelessly): the SDK cancels.
	base := serve(true)
	c := rawPost(t, base, newProtoHang, newProtoHdr)
	wait(t, h.started, "2026-07-28 call started")
	c.Close()
	wait(t, h.cancelled, "the SDK cancels a 2026-07-28 call whose connection closed")
	<-posts

	// 2025-11-25, stateless: the SDK does not (and closing the
	// throwaway session waits for the handler).
	c = rawPost(t, base, hangCall, map[string]string{"Mcp-Protocol-Version": "2025-11-25"})
	wait(t, h.started, "stateless 2025-11-25 call started")
	c.Close()
	if resp := post(t, base+"/mcp", `{"jsonrpc":"2.0","id":99,"method":"ping"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("ping: %d", resp.StatusCode)
	}
	<-posts
	select {
	case <-h.cancelled:
		t.Fatal("the go-sdk now cancels a stateless older protocol's call when its connection closes: remove endWithRequest")
	default:
	}
	h.release <- struct{}{}
	<-posts

	// 2025-11-25 in a session: the SDK does not.
	base = serve(false)
	hdr := initSession(t, base, "2025-11-25")
	<-posts
	<-posts
	c = rawPost(t, base, hangCall, hdr)
	wait(t, h.started, "2025-11-25 call started")
	c.Close()
	wait(t, posts, "the POST handler returned after the connection closed")
	if resp := post(t, base+"/mcp", `{"jsonrpc":"2.0","id":99,"method":"ping"}`, hdr); resp.StatusCode != 200 {
		t.Fatalf("ping: %d", resp.StatusCode)
	}
	select {
	case <-h.cancelled:
		t.Fatal("the go-sdk now cancels an older protocol's call when its connection closes: remove cancelAbandoned")
	default:
	}
	close(h.release)
}
