package mcp_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// rawStdio is a client that writes raw lines to a server's stdin and reads
// its replies, one JSON object per line.
type rawStdio struct {
	t   *testing.T
	w   io.Writer
	r   *bufio.Reader
	out chan map[string]any
}

func startStdio(t *testing.T, r *calls.Router, limit int) *rawStdio {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	srv := mcp.NewServer(r, nil)
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(t.Context(), &mcp.ResilientStdioTransport{In: inR, Out: outW, MaxMessageBytes: limit})
		outW.Close()
	}()
	c := &rawStdio{t: t, w: inW, r: bufio.NewReaderSize(outR, 1<<20), out: make(chan map[string]any, 100)}
	go func() {
		for {
			line, err := c.r.ReadBytes('\n')
			if err != nil {
				close(c.out)
				return
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				m = map[string]any{"unparsable": string(line)}
			}
			c.out <- m
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after end of input = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after end of input")
		}
		srv.Close()
	})
	return c
}

func (c *rawStdio) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.w, line+"\n"); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv returns the next message that is not a notification.
func (c *rawStdio) recv() map[string]any {
	c.t.Helper()
	for {
		select {
		case m, ok := <-c.out:
			if !ok {
				c.t.Fatal("server closed its output")
			}
			if _, isNote := m["method"]; isNote && m["id"] == nil {
				continue
			}
			return m
		case <-time.After(20 * time.Second):
			c.t.Fatal("no reply")
		}
	}
}

func errCode(m map[string]any) float64 {
	e, _ := m["error"].(map[string]any)
	if e == nil {
		return 0
	}
	code, _ := e["code"].(float64)
	return code
}

const initLine = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// TestStdioAbuse sends what a broken or hostile client might, and checks
// each gets the right JSON-RPC error while the session keeps working.
func TestStdioAbuse(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	mustAdd(t, r, echoCall("echo"))
	// The 10 MB message is sent to the real binary in cmd/membrane; here a
	// smaller limit keeps the race detector quick.
	c := startStdio(t, r, 2<<20)

	alive := func(id int) {
		t.Helper()
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, id))
		m := c.recv()
		if m["id"] != float64(id) || m["error"] != nil {
			t.Fatalf("ping after abuse: %v", m)
		}
	}

	// A request before initialize.
	c.send(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if m := c.recv(); m["id"] != 1.0 || errCode(m) == 0 {
		t.Errorf("tools/list before initialize: %v, want an error", m)
	}
	c.send(initLine)
	if m := c.recv(); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	alive(2)

	big := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name string
		line string
		id   any // expected id in the reply
		code float64
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":3,"method":`, nil, -32700},
		{"not JSON at all", `hello`, nil, -32700},
		{"unknown method", `{"jsonrpc":"2.0","id":4,"method":"no/such"}`, 4.0, -32601},
		{"bad params type", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"oops"}`, 5.0, -32602},
		{"bad params fields", `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":7}}`, 6.0, -32602},
		{"unknown tool", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"nope","arguments":{}}}`, 7.0, -32602},
		{"batch array", `[{"jsonrpc":"2.0","id":8,"method":"ping"},{"jsonrpc":"2.0","id":9,"method":"ping"}]`, nil, -32600},
		{"empty batch", `[]`, nil, -32600},
		{"not a request", `{"jsonrpc":"2.0","foo":1}`, nil, -32600},
		{"wrong version", `{"jsonrpc":"1.0","id":10,"method":"ping"}`, 10.0, -32600},
		{"too large", `{"jsonrpc":"2.0","id":11,"method":"ping","params":{"pad":"` + big + big + `"}}`, nil, -32600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.line)
			m := c.recv()
			if errCode(m) != tc.code {
				t.Errorf("reply %v: code %v, want %v", trim(m), errCode(m), tc.code)
			}
			if m["id"] != tc.id {
				t.Errorf("reply id %v, want %v", m["id"], tc.id)
			}
			alive(100)
		})
	}
	c.t = t

	// A 1 MB message under the limit is served.
	c.send(`{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + big + `"}}}`)
	m := c.recv()
	res, _ := m["result"].(map[string]any)
	if res == nil || res["isError"] == true {
		t.Fatalf("1 MB call: %v", trim(m))
	}
	content := res["content"].([]any)[0].(map[string]any)
	if len(content["text"].(string)) != len(big) {
		t.Errorf("1 MB echo came back with %d bytes", len(content["text"].(string)))
	}

	// Invalid UTF-8 inside a string: served, with the bytes replaced.
	c.send("{\"jsonrpc\":\"2.0\",\"id\":21,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"a\xff\xfeb\"}}}")
	m = c.recv()
	if res, _ := m["result"].(map[string]any); res == nil {
		t.Errorf("invalid UTF-8: %v", m)
	} else if text := res["content"].([]any)[0].(map[string]any)["text"]; text != "a\uFFFD\uFFFDb" {
		t.Errorf("invalid UTF-8 echoed as %q", text)
	}
	// Invalid UTF-8 outside strings is not JSON.
	c.send("{\"jsonrpc\":\"2.0\",\"id\":22,\xff\"method\":\"ping\"}")
	if m := c.recv(); errCode(m) != -32700 {
		t.Errorf("invalid UTF-8 outside a string: %v", m)
	}
	alive(23)
}

func trim(m map[string]any) string {
	b, _ := json.Marshal(m)
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// TestHTTPAbuse sends the same kinds of bad input over HTTP: each gets a
// JSON-RPC error or a clean HTTP rejection, and the session survives.
func TestHTTPAbuse(t *testing.T) {
	t.Parallel()
	_, url := serveHTTP(t, routerWithEcho(t), nil)
	url += "/mcp"

	// A request before initialize, without a session.
	resp := post(t, url, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	if m := readSSE(t, resp); resp.StatusCode != 400 || errCode(m) != -32600 || m["id"] != 1.0 {
		t.Errorf("tools/list without a session: %d %v, want 400 and -32600", resp.StatusCode, m)
	}

	// A batch without a session (it used to get 200 with error code 0).
	resp = post(t, url, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, nil)
	if m := readSSE(t, resp); resp.StatusCode != 400 || errCode(m) != -32600 {
		t.Errorf("batch without a session: %d %v, want 400 and -32600", resp.StatusCode, m)
	}
	// Allow: a lone ping without a session is answered.
	resp = post(t, url, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, nil)
	if m := readSSE(t, resp); resp.StatusCode != 200 || m["result"] == nil {
		t.Errorf("ping without a session: %d %v", resp.StatusCode, m)
	}

	resp = post(t, url, initBody, nil)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	readSSE(t, resp)
	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
	if resp := post(t, url, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: %d", resp.StatusCode)
	}
	alive := func() {
		t.Helper()
		resp := post(t, url, `{"jsonrpc":"2.0","id":99,"method":"ping"}`, hdr)
		if m := readSSE(t, resp); resp.StatusCode != 200 || m["error"] != nil {
			t.Fatalf("ping after abuse: %d %v", resp.StatusCode, m)
		}
	}
	alive()
	for _, tc := range []struct {
		name   string
		body   string
		status int     // wanted HTTP status
		code   float64 // wanted JSON-RPC error code in the body
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":3,"method":`, 400, -32700},
		{"unknown method", `{"jsonrpc":"2.0","id":4,"method":"no/such"}`, 400, -32601},
		{"bad params", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"oops"}`, 200, -32602},
		{"unknown tool", `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope"}}`, 200, -32602},
		{"batch array", `[{"jsonrpc":"2.0","id":7,"method":"ping"},{"jsonrpc":"2.0","id":8,"method":"ping"}]`, 400, -32600},
		{"invalid UTF-8 outside strings", "{\"jsonrpc\":\"2.0\",\"id\":9,\xff}", 400, -32700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, url, tc.body, hdr)
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, tc.status)
			}
			if tc.code != 0 {
				if m := readSSE(t, resp); errCode(m) != tc.code {
					t.Errorf("reply %v, want code %v", m, tc.code)
				}
			}
			alive()
		})
	}
	// Invalid UTF-8 inside a string is served.
	resp = post(t, url, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"a\xffb\"}}}", hdr)
	if m := readSSE(t, resp); m["result"] == nil {
		t.Errorf("invalid UTF-8 in a string: %v", m)
	}
	alive()
}

// readSSE reads the first JSON-RPC message of a streamable HTTP reply, SSE
// or plain JSON.
func readSSE(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if err := json.NewDecoder(br).Decode(&m); err != nil {
			t.Fatalf("json reply: %v", err)
		}
		return m
	}
	for {
		line, err := br.ReadString('\n')
		if strings.HasPrefix(line, "data:") {
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, "data:"))), &m); err != nil {
				t.Fatalf("sse data %q: %v", line, err)
			}
			if _, isNote := m["method"]; isNote && m["id"] == nil {
				continue
			}
			return m
		}
		if err != nil {
			return map[string]any{}
		}
	}
}
