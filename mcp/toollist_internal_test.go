package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
)

// TestSDKListsSchemaAsGiven pins the go-sdk behaviour toolOf relies on: a
// tool added with a json.RawMessage schema is listed with those very bytes,
// not re-encoded, so a schema compacted once at add is what every
// tools/list encodes.
func TestSDKListsSchemaAsGiven(t *testing.T) {
	t.Parallel()
	schema := json.RawMessage(`{"type":"object","properties":{"x":{"type":"string"}}}`)
	s := sdk.NewServer(&sdk.Implementation{Name: "pin", Version: "1"}, nil)
	s.AddTool(&sdk.Tool{Name: "t", InputSchema: schema}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return &sdk.CallToolResult{}, nil
	})
	var listed any
	s.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			res, err := next(ctx, method, req)
			if lr, ok := res.(*sdk.ListToolsResult); ok && len(lr.Tools) == 1 {
				listed = lr.Tools[0].InputSchema
			}
			return res, err
		}
	})
	st, ct := sdk.NewInMemoryTransports()
	ss, err := s.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "c"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	got, ok := listed.(json.RawMessage)
	if !ok || !bytes.Equal(got, schema) || &got[0] != &schema[0] {
		t.Fatalf("the SDK listed the schema as %T %s; want the json.RawMessage it was given", listed, listed)
	}
}

// TestToolOfCompactsAndTrims: the schema goes out compacted and with the
// same meaning; a read-only tool has no destructiveHint, and a writing one
// keeps it (both values).
func TestToolOfCompactsAndTrims(t *testing.T) {
	t.Parallel()
	in := "{\n  \"type\": \"object\",\n  \"properties\": { \"cmd\": { \"type\": \"string\", \"description\": \"a b\" } }\n}"
	for _, c := range []calls.Call{
		{Name: "r", ReadOnly: true, InputSchema: json.RawMessage(in)},
		{Name: "w", Destructive: true, InputSchema: json.RawMessage(in)},
		{Name: "w2", Destructive: false, InputSchema: json.RawMessage(in)},
	} {
		tool := toolOf(&c)
		raw := tool.InputSchema.(json.RawMessage)
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, want.Bytes()) {
			t.Errorf("%s: schema %s; want %s", c.Name, raw, want.Bytes())
		}
		switch d := tool.Annotations.DestructiveHint; {
		case c.ReadOnly && d != nil:
			t.Errorf("%s: read-only tool has destructiveHint %v", c.Name, *d)
		case !c.ReadOnly && (d == nil || *d != c.Destructive):
			t.Errorf("%s: destructiveHint %v; want %v", c.Name, d, c.Destructive)
		}
	}
	// A schema that is not JSON goes to the SDK as it came, for it to refuse.
	bad := calls.Call{Name: "bad", InputSchema: json.RawMessage(`{"type":`)}
	if got := toolOf(&bad).InputSchema.(json.RawMessage); string(got) != `{"type":` {
		t.Errorf("bad schema changed to %s", got)
	}
}

// FuzzPlainParams: the HTTP fast path takes tools/list params as plain
// only when the SDK, decoding the same bytes, sees a plain first page too
// (what captureToolList keys the cache by): no cursor, no _meta entries.
func FuzzPlainParams(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `{"_meta":{}}`, `{"cursor":""}`, `{"cursor":"x"}`,
		`{"_meta":{"progressToken":1}}`, `{"_meta":null}`, `[]`, `{"a":1}`, ` { } `, `{"_meta":{},"_meta":{"x":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !plainParams(raw) {
			return
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			return // no params: the SDK's nil, plain by definition
		}
		var p sdk.ListToolsParams
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("plainParams took %q, which does not decode as params: %v", raw, err)
		}
		if !plainListParams(&p) {
			t.Fatalf("plainParams took %q, which the SDK reads as %+v", raw, p)
		}
	})
}

// TestToolOfSharesCompactSchema: tools whose schema comes compact already
// (ollama's model tools, which share one per shape) keep those very bytes,
// so a server with hundreds of them holds one copy; a schema with space
// in it is compacted into bytes of its own (the control).
func TestToolOfSharesCompactSchema(t *testing.T) {
	t.Parallel()
	shared := json.RawMessage(`{"type":"object","properties":{"prompt":{"type":"string"}}}`)
	a, b := calls.Call{Name: "a", InputSchema: shared}, calls.Call{Name: "b", InputSchema: shared}
	ra, rb := toolOf(&a).InputSchema.(json.RawMessage), toolOf(&b).InputSchema.(json.RawMessage)
	if &ra[0] != &shared[0] || &rb[0] != &shared[0] {
		t.Errorf("a compact schema was copied")
	}
	spaced := json.RawMessage(`{"type": "object"}`)
	c := calls.Call{Name: "c", InputSchema: spaced}
	if rc := toolOf(&c).InputSchema.(json.RawMessage); &rc[0] == &spaced[0] || string(rc) != `{"type":"object"}` {
		t.Errorf("a spaced schema came out as %s", rc)
	}
}

// TestToolListCacheBounds: the cache keeps entries up to its byte bound
// and its entry bound, and nothing past them, and a change empties the
// entries and the accepted params, so that the bounds start over.
func TestToolListCacheBounds(t *testing.T) {
	t.Parallel()
	var c toolListCache
	v, _ := c.snapshot()
	big := make([]byte, maxToolListBytes/2)
	c.put(v, "a", big)
	c.put(v, "b", big)
	c.put(v, "c", []byte("x"))
	if c.get(v, "a") == nil || c.get(v, "b") == nil {
		t.Fatal("entries within the byte bound were not kept")
	}
	if c.get(v, "c") != nil {
		t.Fatal("an entry past the byte bound was kept")
	}
	var d paramsDigest
	c.accept(v, d)
	if !c.isAccepted(v, d) {
		t.Fatal("accepted params were not kept")
	}
	c.invalidate()
	v2, _ := c.snapshot()
	if c.get(v2, "a") != nil || c.isAccepted(v2, d) || c.isAccepted(v, d) {
		t.Fatal("a change left entries or accepted params")
	}
	for i := range maxToolListEntries + 1 {
		c.put(v2, fmt.Sprint(i), []byte("x"))
	}
	if c.get(v2, "0") == nil || c.get(v2, fmt.Sprint(maxToolListEntries)) != nil {
		t.Fatal("the entry bound does not hold")
	}
	for i := range maxAcceptedParams + 1 {
		var d paramsDigest
		d[0], d[1], d[2] = byte(i), byte(i>>8), 1
		c.accept(v2, d)
	}
	if len(c.accepted) != maxAcceptedParams {
		t.Fatalf("%d params accepted, the bound is %d", len(c.accepted), maxAcceptedParams)
	}
}
