package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// stdioLister is a client of membrane's stdio transport that reads the
// server's lines as they come; sdkLists counts the tools/list requests
// the SDK handled.
type stdioLister struct {
	t        *testing.T
	w        io.Writer
	rd       *bufio.Reader
	sdkLists *atomic.Int64
}

// serveStdioLister serves r with Run over the stdio transport on pipes.
func serveStdioLister(t *testing.T, r *calls.Router) *stdioLister {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	srv := mcp.NewServer(r, nil)
	var lists atomic.Int64
	srv.SDK().AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if method == "tools/list" {
				lists.Add(1)
			}
			return next(ctx, method, req)
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(context.Background(), &mcp.ResilientStdioTransport{In: inR, Out: outW})
		outW.Close()
	}()
	t.Cleanup(func() { inW.Close(); outR.Close(); <-done; srv.Close() })
	return &stdioLister{t: t, w: inW, rd: bufio.NewReaderSize(outR, 1<<20), sdkLists: &lists}
}

// call sends one line and returns the server's line answering id (a
// notification before it is skipped); with id "" it returns nothing.
func (c *stdioLister) call(line, id string) []byte {
	c.t.Helper()
	if _, err := io.WriteString(c.w, line+"\n"); err != nil {
		c.t.Fatal(err)
	}
	if id == "" {
		return nil
	}
	for {
		got, err := c.rd.ReadBytes('\n')
		if err != nil {
			c.t.Fatalf("reading the answer to %s: %v", line, err)
		}
		if bytes.HasPrefix(got, []byte(`{"jsonrpc":"2.0","id":`+id+`,`)) {
			return bytes.TrimSuffix(got, []byte("\n"))
		}
	}
}

// TestStdioToolListCache: on the stdio transport, a tools/list with the
// params of one the SDK answered before in the session is answered from
// that answer, byte for byte (the id aside), without the SDK, for a
// session of 2025-11-25 and one of the sessionless 2026-07-28; other
// params take the SDK's path once; a change of the tool set reaches the
// next list; what the SDK refused is refused again, never kept.
func TestStdioToolListCache(t *testing.T) {
	t.Parallel()
	const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`
	for _, tc := range []struct {
		name           string
		initialize     bool
		params, others string
		bad            string // params the SDK refuses
		badSDK         int64  // how many of two refusals reach the middleware
	}{
		{"2025-11-25", true, `{}`, `{"_meta":{"progressToken":"p"}}`, `{"cursor":"bm9wZQ"}`, 2},
		// The SDK refuses a bad _meta before its middleware.
		{"2026-07-28", false, `{` + modernMeta + `}`, `{` + strings.Replace(modernMeta, `"raw"`, `"other"`, 1) + `}`,
			`{` + strings.Replace(modernMeta, `,"io.modelcontextprotocol/clientCapabilities":{}`, ``, 1) + `}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := defaultToolsRouter(t)
			mustAdd(t, r, calls.Call{
				Name: "zz_escapes", Kind: calls.KindTool, Description: `<b>&amp;</b> "quoted" \ é ☃ ` + "\u2028",
				InputSchema: []byte(`{"type":"object","properties":{"a":{"type":"string","description":"<&>"}}}`),
				Handler:     calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil }),
			})
			c := serveStdioLister(t, r)
			if tc.initialize {
				c.call(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, "0")
				c.call(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, "")
			}
			list := func(id, params string) []byte {
				t.Helper()
				return c.call(`{"jsonrpc":"2.0","id":`+id+`,"method":"tools/list","params":`+params+`}`, id)
			}
			wantSDK := func(n int64, when string) {
				t.Helper()
				if got := c.sdkLists.Load(); got != n {
					t.Fatalf("%s: the SDK handled %d lists, want %d", when, got, n)
				}
			}
			sdkMsg := list(`1`, tc.params)
			head := `{"jsonrpc":"2.0","id":1,`
			if !bytes.HasPrefix(sdkMsg, []byte(head+`"result":`)) || !bytes.Contains(sdkMsg, []byte(`"name":"zz_escapes"`)) {
				t.Fatalf("first list: %.300s", sdkMsg)
			}
			wantSDK(1, "the first list")
			for _, id := range []string{`"id-<&>"`, `2`} {
				want := append([]byte(`{"jsonrpc":"2.0","id":`+id+`,`), sdkMsg[len(head):]...)
				if got := list(id, tc.params); !bytes.Equal(got, want) {
					t.Fatalf("id %s: the kept list differs from the SDK's:\nkept %.300s\nsdk  %.300s", id, got, want)
				}
			}
			wantSDK(1, "lists with the same params")
			if got := list(`3`, tc.others); !bytes.Equal(got[len(`{"jsonrpc":"2.0","id":3,`):], sdkMsg[len(head):]) {
				t.Fatalf("other params: %.300s", got)
			}
			wantSDK(2, "a list with other params")

			mustAdd(t, r, calls.Call{Name: "added_later", Kind: calls.KindTool, InputSchema: []byte(`{"type":"object"}`),
				Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil })})
			for i := range 2 {
				if got := list(`4`, tc.params); !bytes.Contains(got, []byte(`"name":"added_later"`)) {
					t.Fatalf("list %d after the change lacks the new tool: %.300s", i, got)
				}
			}
			wantSDK(3, "two lists after a change")
			r.Remove("added_later")
			if got := list(`5`, tc.params); bytes.Contains(got, []byte(`"name":"added_later"`)) {
				t.Fatalf("the list after the removal still has the tool")
			}
			wantSDK(4, "a list after the removal")

			for i := range 2 {
				if got := list(`6`, tc.bad); !bytes.Contains(got, []byte(`"error"`)) || bytes.Contains(got, []byte(`"tools"`)) {
					t.Fatalf("refused params, %d: %.300s", i, got)
				}
			}
			wantSDK(4+tc.badSDK, "refused params")
			if got := list(`7`, tc.params); !bytes.Contains(got, []byte(`"name":"sh"`)) {
				t.Fatalf("control after the refusals: %.300s", got)
			}
			wantSDK(4+tc.badSDK, "the control (kept)")
		})
	}
}

// TestStdioToolListCacheNotBeforeInitialize: a session that has not been
// answered gets the SDK's refusal for a list, even with params another
// session's cache would answer (the cache is the session's own), and its
// first list after initialize comes from the SDK.
func TestStdioToolListCacheNotBeforeInitialize(t *testing.T) {
	t.Parallel()
	r := defaultToolsRouter(t)
	warm := serveStdioLister(t, r)
	warm.call(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, "0")
	for id := range 2 {
		if got := warm.call(`{"jsonrpc":"2.0","id":1`+strings.Repeat("0", id)+`,"method":"tools/list"}`, `1`+strings.Repeat("0", id)); !bytes.Contains(got, []byte(`"tools"`)) {
			t.Fatalf("control: a list of an initialized session: %.200s", got)
		}
	}
	if n := warm.sdkLists.Load(); n != 1 {
		t.Fatalf("control: the SDK handled %d lists, want 1", n)
	}
	cold := serveStdioLister(t, r)
	for i := range 2 {
		if got := cold.call(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, `1`); !bytes.Contains(got, []byte(`"error"`)) || bytes.Contains(got, []byte(`"tools"`)) {
			t.Fatalf("list %d before initialize: %.200s", i, got)
		}
	}
	cold.call(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, "0")
	if got := cold.call(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, `1`); !bytes.Contains(got, []byte(`"tools"`)) {
		t.Fatalf("the list after initialize: %.200s", got)
	}
}
