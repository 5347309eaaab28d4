package openaicompat_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
)

// FuzzDecodeChatRequest: a request the decoder accepts ends with a user
// message, answers only calls that were made, and reads back the same
// after EncodeMessages; a refusal is always a 4xx error object with a
// message.
func FuzzDecodeChatRequest(f *testing.F) {
	f.Add([]byte(hello), true)
	f.Add([]byte(`{"model":"a","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"developer","content":[{"type":"text","text":"s"}]},{"role":"user","content":"q"}]}`), true)
	f.Add([]byte(`{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"sh","arguments":"{\"command\":\"ls\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"user","content":"y"}],"conversation_id":"k","trace":true}`), false)
	f.Add([]byte(`{"model":"a","messages":[{"role":"tool","tool_call_id":"zz","content":"r"}]}`), true)
	f.Add([]byte(`{"model":"a","n":3,"messages":[]}`), true)
	f.Fuzz(func(t *testing.T, body []byte, needModel bool) {
		req, rerr := openaicompat.DecodeChatRequest(body, needModel)
		if rerr != nil {
			if req != nil || rerr.Status < 400 || rerr.Status > 499 || rerr.Msg == "" || rerr.Type == "" {
				t.Fatalf("bad refusal: %+v", rerr)
			}
			return
		}
		if needModel && req.Model == "" {
			t.Fatal("accepted a request without a model")
		}
		n := len(req.Messages)
		if n == 0 || n > openaicompat.MaxMessages || req.Messages[n-1].Role != agent.RoleUser {
			t.Fatalf("accepted %d messages, the last from %v", n, req.Messages[n-1].Role)
		}
		made := map[string]bool{}
		for _, m := range req.Messages {
			for _, c := range m.ToolCalls {
				made[c.ID] = true
			}
			if m.Role == agent.RoleTool && !made[m.ToolCallID] {
				t.Fatalf("a tool message answers %q, which no call made", m.ToolCallID)
			}
		}
		again, err := json.Marshal(map[string]any{"model": req.Model, "messages": openaicompat.EncodeMessages(req.Messages)})
		if err != nil {
			t.Fatal(err)
		}
		req2, rerr := openaicompat.DecodeChatRequest(again, needModel)
		if rerr != nil {
			t.Fatalf("re-encoded request refused: %v\n%s", rerr, again)
		}
		if !reflect.DeepEqual(req.Messages, req2.Messages) {
			t.Fatalf("round trip changed the messages:\n%+v\n%+v", req.Messages, req2.Messages)
		}
	})
}
