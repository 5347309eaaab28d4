package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// The HTTP bounds and disconnects, against the real binary where they
// broke: a client that closed its connection left `sleep` running, and a
// flood of sessions grew the server without bound.

// rawHTTP writes one request on a fresh connection to base and returns it
// with a reader for the response.
func rawHTTP(t *testing.T, base, method, body string, hdr map[string]string) (net.Conn, *bufio.Reader) {
	t.Helper()
	u, _ := neturl.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n", method, u.Host, len(body))
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + body)
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// rpcReply reads the response on br and returns its first JSON-RPC
// response (SSE or JSON), the status and the headers.
func rpcReply(t *testing.T, br *bufio.Reader) (map[string]any, *http.Response) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		_ = json.NewDecoder(rd).Decode(&m)
		return m, resp
	}
	for {
		line, err := rd.ReadString('\n')
		if data, ok := strings.CutPrefix(line, "data:"); ok {
			var m map[string]any
			if json.Unmarshal([]byte(strings.TrimSpace(data)), &m) == nil && m["id"] != nil {
				return m, resp
			}
		}
		if err != nil {
			return nil, resp
		}
	}
}

func rpc(t *testing.T, base, body string, hdr map[string]string) (map[string]any, *http.Response) {
	t.Helper()
	_, br := rawHTTP(t, base, http.MethodPost, body, hdr)
	return rpcReply(t, br)
}

func initBody(v, clientName string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + v +
		`","capabilities":{},"clientInfo":{"name":"` + clientName + `","version":"1"}}}`
}

// session opens a stateful session of protocol v and returns the headers
// of its later requests.
func session(t *testing.T, base, v string) map[string]string {
	t.Helper()
	m, resp := rpc(t, base, initBody(v, "raw"), nil)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" || m["result"] == nil {
		t.Fatalf("initialize %s: %d %v", v, resp.StatusCode, m)
	}
	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": v}
	if _, resp := rpc(t, base, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: %d", resp.StatusCode)
	}
	return hdr
}

func shCall(id int, cmd string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"sh","arguments":{"cmd":%q}}}`, id, cmd)
}

const newProto = "2026-07-28"

// newProtoShCall is a tools/call of sh in the sessionless 2026-07-28
// protocol.
func newProtoShCall(id int, cmd string) (string, map[string]string) {
	return newProtoCall(id, "sh", fmt.Sprintf(`{"cmd":%q}`, cmd))
}

// waitProcs waits until the number of processes whose command line holds
// marker satisfies ok.
func waitProcs(t *testing.T, marker string, ok func(n int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(len(processesWith(marker))) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes with %q: %v", what, marker, processesWith(marker))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHTTPDisconnectKillsSandboxBinary posts `sh "sleep 1111…"` and closes
// the TCP connection: the sandboxed sleep is gone from /proc, for every
// protocol version membrane serves. The allow control beside each: a call
// on a connection that stays open runs to its end and answers.
func TestHTTPDisconnectKillsSandboxBinary(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		version   string
		stateless bool
	}{
		{"2025-06-18", false},
		{"2025-11-25", false},
		{newProto, true},
		{"2025-11-25", true},
	} {
		name := tc.version
		if tc.stateless {
			name += " stateless"
		}
		t.Run(name, func(t *testing.T) {
			// A sandbox timeout far past the wait below, so that only the
			// disconnect can end the sleep in time.
			args := append([]string{"--timeout", "10m", "--max-timeout", "10m"}, noOllama...)
			if tc.stateless {
				args = append(args, "--stateless")
			}
			_, base, _, _ := startHTTP(t, bin, args...)
			call := func(id int, cmd string) (string, map[string]string) {
				if tc.version == newProto {
					return newProtoShCall(id, cmd)
				}
				hdr := map[string]string{"Mcp-Protocol-Version": tc.version}
				if !tc.stateless {
					hdr = session(t, base, tc.version)
				}
				return shCall(id, cmd), hdr
			}

			// Allow: the connection stays open.
			body, hdr := call(2, "sleep 0.3; echo finished-normally")
			m, resp := rpc(t, base, body, hdr)
			text := fmt.Sprint(m)
			res, _ := m["result"].(map[string]any)
			isErr := res == nil || res["isError"] == true
			if isErr && (strings.Contains(text, "bubblewrap") || strings.Contains(text, "bwrap")) {
				mcptest.Require(t, "the sandbox cannot run here: "+text)
			}
			if resp.StatusCode != 200 || isErr || !strings.Contains(text, "finished-normally") {
				t.Fatalf("call on an open connection: %d %s", resp.StatusCode, text)
			}

			// Deny: the client closes the connection mid-call.
			marker := uniqueMarker(1111)
			body, hdr = call(3, "sleep "+marker)
			c, _ := rawHTTP(t, base, http.MethodPost, body, hdr)
			waitProcs(t, marker, func(n int) bool { return n > 0 }, "the sleep never started")
			c.Close()
			waitProcs(t, marker, func(n int) bool { return n == 0 }, "closing the connection left the sleep running")
		})
	}
}

// TestHTTPSessionFloodBinary floods the real binary with initializes: ones
// with a 100 KB clientInfo get 413 and cost nothing; small ones fill
// --max-sessions and the rest get 503 with code -32005 and Retry-After;
// RSS stays bounded; closing a session makes room (the allow control).
func TestHTTPSessionFloodBinary(t *testing.T) {
	bin := binary(t)
	const maxSessions = 40
	cmd, base, _, _ := startHTTP(t, bin, append([]string{"--max-sessions", fmt.Sprint(maxSessions)}, noOllama...)...)
	pid := cmd.Process.Pid
	before := rssMB(pid)

	var sids []string
	flood := func(n int, body string) map[int]int {
		var mu sync.Mutex
		statuses := map[int]int{}
		var next atomic.Int64
		var wg sync.WaitGroup
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		defer client.CloseIdleConnections()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusServiceUnavailable {
						var m struct {
							Error struct {
								Code    int
								Message string
							}
						}
						if json.Unmarshal(b, &m) != nil || m.Error.Code != -32005 || !strings.Contains(m.Error.Message, "too many sessions") || resp.Header.Get("Retry-After") == "" {
							t.Errorf("503 without the JSON-RPC error and Retry-After: %v %s", resp.Header, b)
						}
					}
					mu.Lock()
					statuses[resp.StatusCode]++
					if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
						sids = append(sids, sid)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return statuses
	}

	big := initBody("2025-11-25", strings.Repeat("x", 100<<10))
	if got := flood(1500, big); got[http.StatusRequestEntityTooLarge] != 1500 {
		t.Errorf("1500 initializes with a 100 KB clientInfo: statuses %v, want all 413", got)
	}
	got := flood(600, initBody("2025-11-25", "flood"))
	if got[200] != maxSessions || got[http.StatusServiceUnavailable] != 600-maxSessions {
		t.Errorf("600 small initializes: statuses %v, want %d × 200 and the rest 503", got, maxSessions)
	}
	after := rssMB(pid)
	t.Logf("RSS %.1f MB before the flood, %.1f MB after (%d sessions held)", before, after, maxSessions)
	if after-before > 64 {
		t.Errorf("RSS grew by %.1f MB over the flood", after-before)
	}

	// Allow: the sessions held work, and a DELETE makes room for one more.
	if len(sids) != maxSessions {
		t.Fatalf("%d session ids, want %d", len(sids), maxSessions)
	}
	hdr := map[string]string{"Mcp-Session-Id": sids[0], "Mcp-Protocol-Version": "2025-11-25"}
	if m, resp := rpc(t, base, `{"jsonrpc":"2.0","id":5,"method":"ping"}`, hdr); resp.StatusCode != 200 || m["result"] == nil {
		t.Fatalf("ping on a held session: %d %v", resp.StatusCode, m)
	}
	_, br := rawHTTP(t, base, http.MethodDelete, "", hdr)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, resp := rpc(t, base, initBody("2025-11-25", "after"), nil)
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("initialize after a DELETE: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHTTPConnectionsClosedBinary: 50 keep-alive connections that got 401
// are all closed by the server, and so is an authorized one left idle past
// --idle-timeout; the allow control, an authorized connection in use,
// serves request after request.
func TestHTTPConnectionsClosedBinary(t *testing.T) {
	bin := binary(t)
	const token = "conn-token-0123456789"
	_, base, _, _ := startHTTP(t, bin, append([]string{"--token", token, "--idle-timeout", "300ms"}, noOllama...)...)
	u, _ := neturl.Parse(base)
	get := func(c net.Conn, br *bufio.Reader, auth bool) int {
		t.Helper()
		req := "GET /mcp HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\nConnection: keep-alive\r\n"
		if auth {
			req = "GET /healthz HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + token + "\r\n"
		}
		if _, err := c.Write([]byte(req + "\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	closed := func(c net.Conn, br *bufio.Reader) error {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, br) // nil at EOF
		return err
	}

	var wg sync.WaitGroup
	var stillOpen atomic.Int64
	for range 50 {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if code := get(c, br, false); code != http.StatusUnauthorized {
			t.Fatalf("without a token: %d", code)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if closed(c, br) != nil {
				stillOpen.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := stillOpen.Load(); n != 0 {
		t.Errorf("%d of 50 connections that got 401 were left open", n)
	}

	// Allow: an authorized connection serves several requests in a row.
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 3 {
		if code := get(c, br, true); code != 200 {
			t.Fatalf("request %d on a kept connection: %d", i+1, code)
		}
	}
	// Then left idle, it is closed.
	if err := closed(c, br); err != nil {
		t.Errorf("an idle connection was not closed after --idle-timeout: %v", err)
	}
}
