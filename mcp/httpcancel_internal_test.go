package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// FuzzIsReplyTo checks the reply detector that decides whether an
// abandoned call is cancelled: the SDK's own encoding of a response to id,
// as an SSE event or a JSON body, is always seen, and a notification or a
// response to another id, whatever it carries, never is.
func FuzzIsReplyTo(f *testing.F) {
	f.Add([]byte("hello"), int64(7), false, []byte("event: message\ndata: {}\n\n"))
	f.Add([]byte(`"id":7,"result":{}`), int64(-1), true, []byte(`{"jsonrpc":"2.0","id":7,"result":{}}`))
	f.Fuzz(func(t *testing.T, text []byte, n int64, strID bool, raw []byte) {
		var id, other jsonrpc.ID
		var err error
		if strID {
			id, err = jsonrpc.MakeID(fmt.Sprint(n))
			if err == nil {
				other, err = jsonrpc.MakeID(fmt.Sprint(n) + "x")
			}
		} else {
			id, err = jsonrpc.MakeID(float64(n % (1 << 52)))
			if err == nil {
				other, err = jsonrpc.MakeID(float64(n%(1<<52) + 1))
			}
		}
		if err != nil {
			t.Skip()
		}
		result, _ := json.Marshal(map[string]string{"text": string(text)})
		enc := func(m jsonrpc.Message) []byte {
			b, err := jsonrpc.EncodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		reply := enc(&jsonrpc.Response{ID: id, Result: result})
		for _, p := range [][]byte{reply, []byte("event: message\ndata: " + string(reply) + "\n\n")} {
			if !isReplyTo(p, id) {
				t.Fatalf("response to %v not seen in %q", id.Raw(), p)
			}
			if isReplyTo(p, other) {
				t.Fatalf("response to %v taken for one to %v", id.Raw(), other.Raw())
			}
		}
		note := enc(&jsonrpc.Request{Method: "notifications/progress", Params: result})
		if isReplyTo([]byte("event: message\ndata: "+string(note)+"\n\n"), id) {
			t.Fatalf("notification taken for a response: %s", note)
		}
		// The quick reading, when it is sure, agrees with the whole decode.
		for _, p := range [][]byte{reply, note, bytes.TrimSpace(raw)} {
			if is, sure := replyIsQuick(p, id); sure {
				m, err := jsonrpc.DecodeMessage(p)
				resp, ok := m.(*jsonrpc.Response)
				if full := err == nil && ok && resp.ID == id; full != is {
					t.Fatalf("quick reading of %q says %v, the decode %v", p, is, full)
				}
			}
		}
		// Arbitrary bytes: no panic; a yes for raw is a yes for one of its
		// lines or for the whole.
		if isReplyTo(raw, id) && !replyIs(bytes.TrimSpace(raw), id) {
			found := false
			for line := range bytes.Lines(raw) {
				if d, ok := bytes.CutPrefix(line, []byte("data:")); ok && replyIs(bytes.TrimSpace(d), id) {
					found = true
				}
			}
			if !found {
				t.Fatalf("%q taken for a response to %v", raw, id.Raw())
			}
		}
	})
}

// TestSDKWritesIDFirst pins the go-sdk behaviour replyIsQuick relies on:
// a response is written with its id ahead of its result or error, so the
// reply to a tools/list is told without decoding the tool list. Were the
// order to change, the quick reading would stop being sure and every reply
// would be decoded whole (slower, still right): this test says so.
func TestSDKWritesIDFirst(t *testing.T) {
	t.Parallel()
	for _, raw := range []any{int64(7), "call-7"} {
		id, err := jsonrpc.MakeID(raw)
		if err != nil {
			if n, ok := raw.(int64); ok {
				id, err = jsonrpc.MakeID(float64(n))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		other, _ := jsonrpc.MakeID("other")
		for _, m := range []jsonrpc.Message{
			&jsonrpc.Response{ID: id, Result: json.RawMessage(`{"tools":[{"name":"sh"}]}`)},
			&jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: 1, Message: "no"}},
		} {
			data, err := jsonrpc.EncodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			if is, sure := replyIsQuick(data, id); !sure || !is {
				t.Errorf("%s: quick reading (is %v, sure %v); want a sure yes", data, is, sure)
			}
			if is, sure := replyIsQuick(data, other); !sure || is {
				t.Errorf("%s for another id: quick reading (is %v, sure %v); want a sure no", data, is, sure)
			}
		}
	}
}
