package mcp_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// initialize posts an initialize and returns the response and its session.
func initialize(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	resp := post(t, url, initBody, hdr)
	return resp, resp.Header.Get("Mcp-Session-Id")
}

func deleteSession(t *testing.T, url, sid string, hdr map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	req.Header.Set("Mcp-Session-Id", sid)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE session: %d", resp.StatusCode)
	}
}

// TestHTTPSessionBounds fills the server's and a token's session bounds:
// the initialize past each gets its status, Retry-After and
// CodeTooManySessions; closing a session makes room again.
func TestHTTPSessionBounds(t *testing.T) {
	t.Parallel()
	const token = "bounds-token"
	auth := map[string]string{"Authorization": "Bearer " + token}
	for _, tc := range []struct {
		name          string
		max, perToken int
		status        int
		full          int // sessions that fit
	}{
		{"server bound", 3, -1, http.StatusServiceUnavailable, 3},
		{"token bound", 10, 2, http.StatusTooManyRequests, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{Token: token, MaxSessions: tc.max, MaxSessionsPerToken: tc.perToken})
			url := base + "/mcp"
			var sids []string
			for i := range tc.full {
				resp, sid := initialize(t, url, auth)
				if resp.StatusCode != 200 || sid == "" {
					t.Fatalf("initialize %d of %d: %d", i+1, tc.full, resp.StatusCode)
				}
				sids = append(sids, sid)
			}
			resp, sid := initialize(t, url, auth)
			m := readSSE(t, resp)
			if resp.StatusCode != tc.status || sid != "" || errCode(m) != mcp.CodeTooManySessions || resp.Header.Get("Retry-After") == "" || m["id"] != 1.0 {
				t.Fatalf("initialize past the bound: %d %v %v, want %d and code %d", resp.StatusCode, resp.Header, m, tc.status, mcp.CodeTooManySessions)
			}
			if msg := fmt.Sprint(m["error"]); !strings.Contains(msg, "too many sessions") {
				t.Errorf("error message %q does not say what is full", msg)
			}
			// The sessions held still work.
			if resp := post(t, url, `{"jsonrpc":"2.0","id":5,"method":"ping"}`, map[string]string{"Authorization": auth["Authorization"], "Mcp-Session-Id": sids[0], "Mcp-Protocol-Version": "2025-11-25"}); resp.StatusCode != 200 {
				t.Errorf("ping on a held session: %d", resp.StatusCode)
			}
			// Allow: closing one makes room for one.
			deleteSession(t, url, sids[0], auth)
			deadline := time.Now().Add(20 * time.Second)
			for {
				resp, sid := initialize(t, url, auth)
				if resp.StatusCode == 200 && sid != "" {
					break
				}
				if resp.StatusCode != tc.status || time.Now().After(deadline) {
					t.Fatalf("initialize after DELETE: %d", resp.StatusCode)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// TestHTTPInitializeSize refuses an initialize whose clientInfo would make
// a session hold a large body, and serves an ordinary one.
func TestHTTPInitializeSize(t *testing.T) {
	t.Parallel()
	_, base := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{MaxInitializeBytes: 4 << 10})
	url := base + "/mcp"
	big := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"` +
		strings.Repeat("x", 8<<10) + `","version":"1"}}}`
	resp := post(t, url, big, nil)
	if m := readSSE(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge || errCode(m) != -32600 || resp.Header.Get("Mcp-Session-Id") != "" {
		t.Errorf("large initialize: %d %v, want 413 and -32600", resp.StatusCode, m)
	}
	// A large tools/call is still fine: the bound is for what a session keeps.
	hdr := initSession(t, base, "2025-11-25")
	resp = post(t, url, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`+strings.Repeat("y", 8<<10)+`"}}}`, hdr)
	if m := readSSE(t, resp); resp.StatusCode != 200 || m["result"] == nil {
		t.Errorf("large tools/call: %d %v", resp.StatusCode, m)
	}
}

// TestHTTPOriginScheme compares origins as scheme, host and port.
func TestHTTPOriginScheme(t *testing.T) {
	t.Parallel()
	_, base := serveHTTP(t, routerWithEcho(t), nil)
	u, _ := neturl.Parse(base)
	_, port, _ := net.SplitHostPort(u.Host)
	for _, tc := range []struct {
		origin, host string
		want         int
	}{
		{"http://" + u.Host, "", 200}, // same origin
		{"http://localhost:" + port, "localhost:" + port, 200},
		{"HTTP://LOCALHOST:" + port, "localhost:" + port, 200},
		{"http://localhost:80", "localhost", 200}, // default port made explicit
		{"http://localhost", "localhost:80", 200},
		{"https://" + u.Host, "", 403}, // another scheme
		{"https://localhost", "localhost", 403},
		{"null", "", 403},
		{"http://127.0.0.1:1", "", 403}, // another port
		{"http://" + u.Host + "/path", "", 403},
		{"http://user@" + u.Host, "", 403},
	} {
		hdr := map[string]string{"Origin": tc.origin}
		if tc.host != "" {
			hdr["Host"] = tc.host
		}
		resp := post(t, base+"/mcp", initBody, hdr)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != tc.want {
			t.Errorf("Origin %q to Host %q: %d, want %d", tc.origin, tc.host, resp.StatusCode, tc.want)
		}
	}
}

// rawRequest writes a request without a body on c.
func rawRequest(c net.Conn, host, method, path string, hdr ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host)
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_, err := c.Write([]byte(b.String()))
	return err
}

// closedByPeer reads from c until the server closes it (io.EOF), failing
// the test if that does not happen.
func closedByPeer(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the server did not close the connection: %v", err)
	}
}

// TestHTTPCloseAfterReject checks that a refused request (401 here) ends
// its keep-alive connection, while an authorized one keeps it.
func TestHTTPCloseAfterReject(t *testing.T) {
	t.Parallel()
	const token = "close-token"
	_, base := serveHTTP(t, routerWithEcho(t), &mcp.HTTPOptions{Token: token})
	u, _ := neturl.Parse(base)
	for range 5 {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rawRequest(c, u.Host, "GET", "/mcp", "Connection: keep-alive")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("without a token: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		closedByPeer(t, c, br)
	}
	// Allow: with the token, the connection serves a second request.
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 2 {
		rawRequest(c, u.Host, "GET", "/healthz")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d on a kept connection: %v %v", i+1, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
}

// serveListener serves s's handler on a real listener with the
// connection bounds of lo.
func serveListener(t *testing.T, r *calls.Router, o *mcp.HTTPOptions, lo *mcp.ListenOptions) string {
	t.Helper()
	srv := mcp.NewServer(r, nil)
	h, err := srv.HTTPHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := mcp.NewHTTPServer(h, lo)
	go hs.Serve(mcp.Listen(ln, lo))
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return ln.Addr().String()
}

// TestHTTPIdleConnClosed: a keep-alive connection with nothing in flight is
// closed after IdleTimeout, while a long call on a connection outlives it.
func TestHTTPIdleConnClosed(t *testing.T) {
	t.Parallel()
	h := newHang()
	r := calls.NewRouter(nil)
	mustAdd(t, r, h.call())
	const idle = 50 * time.Millisecond
	addr := serveListener(t, r, &mcp.HTTPOptions{WriteStallTimeout: idle}, &mcp.ListenOptions{IdleTimeout: idle})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	rawRequest(c, addr, "GET", "/healthz")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	closedByPeer(t, c, br)

	// Allow: a call that runs many idle periods still answers.
	hdr := initSession(t, "http://"+addr, "2025-11-25")
	call := rawPost(t, "http://"+addr, hangCall, hdr)
	wait(t, h.started, "the call started")
	time.Sleep(10 * idle) // not an assertion: let the timeouts pass
	h.releaseAndRead(t, call, "a call that outlived the idle and write timeouts")
}

// TestHTTPSlowBody: a body that does not arrive within BodyReadTimeout
// gets 408 and a closed connection; a whole body on time is served.
func TestHTTPSlowBody(t *testing.T) {
	t.Parallel()
	addr := serveListener(t, routerWithEcho(t), &mcp.HTTPOptions{BodyReadTimeout: 50 * time.Millisecond}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{\"json", addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := readSSE(t, resp); resp.StatusCode != http.StatusRequestTimeout || errCode(m) != -32600 {
		t.Errorf("slow body: %d %v, want 408", resp.StatusCode, m)
	}
	closedByPeer(t, c, br)
	// Allow.
	resp = post(t, "http://"+addr+"/mcp", initBody, nil)
	if readSSE(t, resp); resp.StatusCode != 200 {
		t.Errorf("initialize on time: %d", resp.StatusCode)
	}
}

// TestListenMaxConns: with MaxConns open, the next connection is accepted
// only after one closes.
func TestListenMaxConns(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := mcp.Listen(raw, &mcp.ListenOptions{MaxConns: 2})
	defer ln.Close()
	var accepted []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for range 2 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, c)
	}
	var closed atomic.Bool
	third := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			if !closed.Load() {
				err = errors.New("accepted a third connection while two were open")
			}
			c.Close()
		}
		third <- err
	}()
	closed.Store(true)
	accepted[0].Close()
	accepted[0].Close() // twice frees one slot, not two
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	// Closing the listener ends a waiting Accept.
	go func() { third <- func() error { _, err := ln.Accept(); return err }() }()
	ln.Close()
	if err := <-third; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}
