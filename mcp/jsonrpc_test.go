package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// strictCases are requests whose id or params MCP refuses and go-sdk
// v1.8.0 accepts, each with the error code and id it must get; ok cases
// beside them must be served. %d is replaced by a fresh number.
var strictCases = []struct {
	name string
	line string
	code float64 // 0: served
	id   any     // the id of the answer
}{
	{"fractional id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, -32600, nil},
	{"exponent id", `{"jsonrpc":"2.0","id":1e2,"method":"ping"}`, -32600, nil},
	{"boolean id", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, -32600, nil},
	{"object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, -32600, nil},
	{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, -32600, nil},
	{"id past 2^53", `{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}`, -32600, nil},
	{"folded member name", `{"jsonrpc":"2.0","ID":41,"method":"ping"}`, -32600, nil},
	{"largest exact id", `{"jsonrpc":"2.0","id":9007199254740991,"method":"ping"}`, 0, 9007199254740991.0},
	{"negative id", `{"jsonrpc":"2.0","id":-3,"method":"ping"}`, 0, -3.0},
	{"string id", `{"jsonrpc":"2.0","id":"1.5","method":"ping"}`, 0, "1.5"},
	{"bad log level", `{"jsonrpc":"2.0","id":42,"method":"logging/setLevel","params":{"level":"loud"}}`, -32602, 42.0},
	{"log level", `{"jsonrpc":"2.0","id":43,"method":"logging/setLevel","params":{"level":"warning"}}`, 0, 43.0},
	{"object progress token", `{"jsonrpc":"2.0","id":44,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta":{"progressToken":{"a":1}}}}`, -32602, 44.0},
	{"boolean progress token", `{"jsonrpc":"2.0","id":45,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta":{"progressToken":true}}}`, -32602, 45.0},
	{"fractional progress token", `{"jsonrpc":"2.0","id":46,"method":"tools/list","params":{"_meta":{"progressToken":2.5}}}`, -32602, 46.0},
	{"string progress token", `{"jsonrpc":"2.0","id":47,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta":{"progressToken":"t"}}}`, 0, 47.0},
	{"integer progress token", `{"jsonrpc":"2.0","id":48,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta":{"progressToken":7}}}`, 0, 48.0},
}

func TestStdioStrictJSONRPC(t *testing.T) {
	t.Parallel()
	c := startStdio(t, routerWithEcho(t), 0)
	c.send(initLine)
	if m := c.recv(); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	for _, tc := range strictCases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.line)
			m := c.recv()
			if errCode(m) != tc.code || m["id"] != tc.id {
				t.Errorf("reply %v: code %v id %v, want code %v id %v", trim(m), errCode(m), m["id"], tc.code, tc.id)
			}
			if tc.code != 0 {
				if e, _ := m["error"].(map[string]any); !strings.Contains(fmt.Sprint(e["message"]), "invalid") {
					t.Errorf("error %v does not say what was invalid", e)
				}
			}
		})
	}
	c.t = t
	// A response from the client with an id that cannot be ours gets no
	// answer (a response is never answered); the next reply is the ping's.
	c.send(`{"jsonrpc":"2.0","id":2.5,"result":{}}`)
	c.send(`{"jsonrpc":"2.0","id":50,"method":"ping"}`)
	if m := c.recv(); m["id"] != 50.0 {
		t.Errorf("after a response with a bad id: %v, want the ping's reply", m)
	}
}

func TestHTTPStrictJSONRPC(t *testing.T) {
	t.Parallel()
	url, hdr := httpSession(t, routerWithEcho(t))
	for _, tc := range strictCases {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, url, tc.line, hdr)
			m := readSSE(t, resp)
			if errCode(m) != tc.code || m["id"] != tc.id {
				t.Errorf("%d %v: code %v id %v, want code %v id %v", resp.StatusCode, trim(m), errCode(m), m["id"], tc.code, tc.id)
			}
			if tc.code == -32600 && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	// A batch with one bad id is refused whole.
	resp := post(t, url, `[{"jsonrpc":"2.0","id":60,"method":"ping"},{"jsonrpc":"2.0","id":6.5,"method":"ping"}]`, hdr)
	if m := readSSE(t, resp); errCode(m) != -32600 || m["id"] != nil {
		t.Errorf("batch with a bad id: %d %v", resp.StatusCode, m)
	}
}

// httpSession serves r over HTTP and opens an initialized session on it:
// the endpoint and the headers of the session.
func httpSession(t *testing.T, r *calls.Router) (string, map[string]string) {
	t.Helper()
	_, url := serveHTTP(t, r, nil)
	url += "/mcp"
	resp := post(t, url, initBody, nil)
	sid := resp.Header.Get("Mcp-Session-Id")
	readSSE(t, resp)
	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
	post(t, url, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr)
	return url, hdr
}

// blockingRouter has echo and "hold", which runs until release is closed.
func blockingRouter(t *testing.T) (*calls.Router, chan struct{}, chan struct{}) {
	r := routerWithEcho(t)
	started, release := make(chan struct{}, 10), make(chan struct{})
	mustAdd(t, r, call("hold", func(ctx context.Context, _ *calls.Request) (*calls.Result, error) {
		started <- struct{}{}
		select {
		case <-release:
			return calls.Text("held"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}))
	return r, started, release
}

// TestStdioDuplicateID: a request reusing the id of one in flight gets
// -32600 with that id, and the first one is answered when it ends. Once
// answered, the id is free again.
func TestStdioDuplicateID(t *testing.T) {
	t.Parallel()
	r, started, release := blockingRouter(t)
	c := startStdio(t, r, 0)
	c.send(initLine)
	c.recv()
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	c.send(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hold","arguments":{}}}`)
	<-started
	c.send(`{"jsonrpc":"2.0","id":7,"method":"ping"}`)
	if m := c.recv(); m["id"] != 7.0 || errCode(m) != -32600 {
		t.Fatalf("duplicate id: %v, want -32600 with id 7", m)
	}
	close(release)
	m := c.recv()
	if res, _ := m["result"].(map[string]any); m["id"] != 7.0 || res == nil || res["isError"] == true {
		t.Fatalf("first request: %v, want its result", trim(m))
	}
	c.send(`{"jsonrpc":"2.0","id":7,"method":"ping"}`)
	if m := c.recv(); m["id"] != 7.0 || m["error"] != nil {
		t.Errorf("id reused after its answer: %v", m)
	}
}

// serveSDKStdio serves r over go-sdk's own stdio transport (not ours) on
// pipes, and returns the server's input and output.
func serveSDKStdio(t *testing.T, r *calls.Router) (io.WriteCloser, io.Reader) {
	srv := mcp.NewServer(r, nil)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	go func() {
		_ = srv.Run(context.Background(), &sdk.IOTransport{Reader: inR, Writer: outW})
		outW.Close()
	}()
	t.Cleanup(func() {
		inW.Close()
		srv.Close()
	})
	return inW, outR
}

// TestSDKDuplicateIDs pins what go-sdk v1.8.0 does with a reused id: over
// its own stdio transport the second request gets no answer at all (which
// mcp.ResilientStdioTransport works around); over streamable HTTP it answers 400
// with -32600 and that id itself.
func TestSDKDuplicateIDs(t *testing.T) {
	t.Parallel()
	t.Run("stdio", func(t *testing.T) {
		r, started, release := blockingRouter(t)
		inW, outR := serveSDKStdio(t, r)
		lines := make(chan string, 10)
		go func() {
			sc := bufio.NewScanner(outR)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		fmt.Fprintln(inW, initLine)
		<-lines
		fmt.Fprintln(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		fmt.Fprintln(inW, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hold","arguments":{}}}`)
		<-started
		fmt.Fprintln(inW, `{"jsonrpc":"2.0","id":7,"method":"ping"}`)
		fmt.Fprintln(inW, `{"jsonrpc":"2.0","id":8,"method":"ping"}`)
		var got []string
		for l := range lines {
			if strings.Contains(l, `"id":8`) {
				break
			}
			got = append(got, l)
		}
		for _, l := range got {
			if strings.Contains(l, `"id":7`) {
				t.Errorf("go-sdk answered the reused id before the next request: %s; mcp.ResilientStdioTransport's check may be redundant now", l)
			}
		}
		close(release)
	})
	t.Run("http", func(t *testing.T) {
		r, started, release := blockingRouter(t)
		url, hdr := httpSession(t, r)
		first := make(chan map[string]any, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hold","arguments":{}}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				first <- nil
				return
			}
			first <- readSSE(t, resp)
		}()
		<-started
		resp := post(t, url, `{"jsonrpc":"2.0","id":7,"method":"ping"}`, hdr)
		if m := readSSE(t, resp); resp.StatusCode != 400 || errCode(m) != -32600 || m["id"] != 7.0 {
			t.Errorf("go-sdk over HTTP answered a reused id with %d %v; want 400, -32600, id 7", resp.StatusCode, m)
		}
		close(release)
		if m := <-first; m == nil || m["id"] != 7.0 || m["result"] == nil {
			t.Errorf("first request: %v", m)
		}
	})
}

// TestSDKRoundsIDs pins the go-sdk behaviour idProblem works around: its
// decoder turns an id of 1.5 into 1.
func TestSDKRoundsIDs(t *testing.T) {
	t.Parallel()
	m, err := jsonrpc.DecodeMessage([]byte(`{"jsonrpc":"2.0","id":1.5,"method":"ping"}`))
	if err != nil {
		t.Fatalf("go-sdk now refuses a fractional id (%v): the check in mcp may go", err)
	}
	if id := m.(*jsonrpc.Request).ID.Raw(); id != int64(1) {
		t.Errorf("go-sdk decodes id 1.5 as %#v, want int64(1) as pinned", id)
	}
}

// TestStdioHoldsNotificationsUntilInitialized: a tool added while the
// client connects sends list_changed only after notifications/initialized,
// and the initialize reply is the first thing the client reads.
func TestStdioHoldsNotificationsUntilInitialized(t *testing.T) {
	t.Parallel()
	r := routerWithEcho(t)
	c := startStdio(t, r, 0)
	mustAdd(t, r, echoCall("early")) // the session exists: the SDK notifies it
	c.send(initLine)
	m := <-c.out
	if m["id"] != 0.0 || m["result"] == nil {
		t.Fatalf("first message %v, want the initialize reply", trim(m))
	}
	mustAdd(t, r, echoCall("later"))
	c.send(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	if m := <-c.out; m["id"] != 1.0 {
		t.Fatalf("before initialized: %v, want only the ping's reply", trim(m))
	}
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if m := <-c.out; m["method"] != "notifications/tools/list_changed" {
		t.Fatalf("after initialized: %v, want the held list_changed", trim(m))
	}
}

// TestStdioGate drives the transport directly: before initialize is
// answered only replies go out; then pings and log messages; everything
// once notifications/initialized arrives, held messages first, in order,
// identical ones once.
func TestStdioGate(t *testing.T) {
	t.Parallel()
	inR, inW := io.Pipe()
	var out syncBuf
	conn, err := (&mcp.ResilientStdioTransport{In: inR, Out: &out}).Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	write := func(m jsonrpc.Message) {
		t.Helper()
		if err := conn.Write(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	read := func(line string) jsonrpc.Message {
		t.Helper()
		go fmt.Fprintln(inW, line)
		m, err := conn.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	note := func(method string) *jsonrpc.Request {
		return &jsonrpc.Request{Method: method, Params: json.RawMessage(`{}`)}
	}
	write(note("notifications/tools/list_changed"))
	write(note("notifications/tools/list_changed"))
	write(note("notifications/message"))
	if got := out.String(); got != "" {
		t.Fatalf("before initialize the transport wrote %q", got)
	}
	init := read(initLine).(*jsonrpc.Request)
	write(&jsonrpc.Response{ID: init.ID, Result: json.RawMessage(`{"protocolVersion":"2025-11-25"}`)})
	write(note("notifications/message"))
	write(&jsonrpc.Request{ID: mustID(t, 99.0), Method: "ping"})
	write(note("notifications/resources/list_changed"))
	want := []string{`"id":0,"result"`, `"method":"notifications/message"`, `"method":"ping"`}
	if got := methodsOf(out.String()); !equalPrefixes(got, want) {
		t.Fatalf("after the initialize reply: %q, want %q", got, want)
	}
	read(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	want = append(want, `"method":"notifications/tools/list_changed"`, `"method":"notifications/message"`, `"method":"notifications/resources/list_changed"`)
	if got := methodsOf(out.String()); !equalPrefixes(got, want) {
		t.Fatalf("after initialized: %q, want %q", got, want)
	}
}

func mustID(t *testing.T, v any) jsonrpc.ID {
	id, err := jsonrpc.MakeID(v)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func methodsOf(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

func equalPrefixes(lines, want []string) bool {
	if len(lines) != len(want) {
		return false
	}
	for i := range lines {
		if !strings.Contains(lines[i], want[i]) {
			return false
		}
	}
	return true
}

// syncBuf is mcptest.SyncBuffer.
type syncBuf = mcptest.SyncBuffer

// TestSDKNotifiesBeforeInitialize pins the go-sdk behaviour the gate
// exists for: over its own stdio transport, a tool added after the
// session connected sends list_changed before any initialize.
func TestSDKNotifiesBeforeInitialize(t *testing.T) {
	t.Parallel()
	r := routerWithEcho(t)
	_, outR := serveSDKStdio(t, r)
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(outR).ReadString('\n')
		got <- line
		io.Copy(io.Discard, outR)
	}()
	// The session connects in Run; add tools until it has seen one.
	for i := 0; ; i++ {
		mustAdd(t, r, echoCall(fmt.Sprint("t", i)))
		select {
		case line := <-got:
			if !strings.Contains(line, "notifications/tools/list_changed") {
				t.Fatalf("go-sdk wrote %q first", line)
			}
			return
		case <-time.After(50 * time.Millisecond):
			if i > 200 {
				t.Fatal("go-sdk no longer notifies an uninitialized session: mcp.ResilientStdioTransport's gate may go")
			}
		}
	}
}

// FuzzStdioIDs feeds lines to the transport with a server that answers
// every call it is handed, after the input ends: every request line with a
// valid id gets exactly one answer with that id (its result, or an error
// when the id was in flight already or the line was bad otherwise), and
// every request with an invalid id gets -32600 with id null.
func FuzzStdioIDs(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":1.5,"method":"ping"}` + "\n" + `{"jsonrpc":"2.0","id":1,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":"a","method":"x"}` + "\n" + `{"jsonrpc":"2.0","id":"a","method":"y"}`,
		`{"jsonrpc":"2.0","id":true,"method":"ping"}` + "\n" + `{"jsonrpc":"2.0","id":null,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}` + "\n" + `{"jsonrpc":"1.0","id":3,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":2,"result":{}}` + "\n" + `{"jsonrpc":"2.0","id":-0,"method":"ping"}` + "\n" + `{"jsonrpc":"2.0","ID":4,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":5,"method":7}` + "\n" + `{"jsonrpc":"2.0","id":1e1,"method":"ping"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var out bytes.Buffer
		conn, err := (&mcp.ResilientStdioTransport{In: strings.NewReader(input), Out: &out, MaxMessageBytes: 1 << 20}).Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var calls []*jsonrpc.Request
		for {
			m, err := conn.Read(context.Background())
			if err != nil {
				break
			}
			if r, ok := m.(*jsonrpc.Request); ok && r.IsCall() {
				calls = append(calls, r)
			}
		}
		for _, r := range calls {
			if err := conn.Write(context.Background(), &jsonrpc.Response{ID: r.ID, Result: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close()

		wantByID := map[string]int{}
		mayByID := map[string]int{} // a line without a method may get an error with its id
		wantNull := 0
		for _, line := range strings.Split(input, "\n") {
			id, valid, request := oracleID(line)
			switch {
			case !request && valid:
				mayByID[id]++
			case !request:
			case valid:
				wantByID[id]++
			default:
				wantNull++
			}
		}
		gotByID := map[string]int{}
		gotNull := 0
		written := out.String()
		sc := bufio.NewScanner(strings.NewReader(written))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("wrote %q", sc.Bytes())
			}
			if string(m["id"]) == "null" {
				var e struct{ Code int }
				_ = json.Unmarshal(m["error"], &e)
				if e.Code == -32600 {
					gotNull++
				}
				continue
			}
			gotByID[canonID(m["id"])]++
		}
		for id, n := range wantByID {
			if got := gotByID[id]; got < n || got > n+mayByID[id] {
				t.Errorf("id %s: %d answers, want %d\ninput %q\noutput %q", id, got, n, input, written)
			}
		}
		for id, n := range gotByID {
			if wantByID[id]+mayByID[id] < n {
				t.Errorf("id %s answered %d times, asked %d\ninput %q\noutput %q", id, n, wantByID[id], input, written)
			}
		}
		if gotNull < wantNull {
			t.Errorf("%d -32600 answers with id null, want at least %d\ninput %q\noutput %q", gotNull, wantNull, input, written)
		}
	})
}

var intID = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// oracleID says, independently of the transport, whether line is a
// request (a JSON object with "id" and "method", member names exact) and
// whether its id is valid (a string, or an integer within ±(2^53-1)).
func oracleID(line string) (id string, valid, request bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] != '{' || len(line) > 1<<20 || !json.Valid([]byte(line)) {
		return "", false, false
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return "", false, false
	}
	folded := false
	for k := range m {
		for _, name := range []string{"jsonrpc", "id", "method", "params", "result", "error"} {
			if k != name && strings.EqualFold(k, name) {
				folded = true
			}
		}
	}
	raw, hasID := m["id"]
	_, hasMethod := m["method"]
	if folded {
		return "", false, true
	}
	if !hasID {
		return "", false, false
	}
	request = hasMethod
	switch v := raw.(type) {
	case string:
		b, _ := json.Marshal(v)
		return string(b), true, request
	case json.Number:
		if !intID.MatchString(string(v)) {
			return "", false, request
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n > 1<<53-1 || n < -(1<<53-1) {
			return "", false, request
		}
		return strconv.FormatInt(n, 10), true, request
	}
	return "", false, request
}

// canonID writes a raw answered id the way oracleID does.
func canonID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		b, _ := json.Marshal(s)
		return string(b)
	}
	return string(raw)
}
