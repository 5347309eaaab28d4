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
