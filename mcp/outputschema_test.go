package mcp_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// A call's output schema reaches tools/list, and its structured result the
// client. The SDK does not check a raw tool's structured content against
// its schema, on either side (pinned here): the adapter's error results
// carry {"reason": …} whatever the schema, which the MCP spec allows for
// errors.
func TestOutputSchema(t *testing.T) {
	schema := `{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`
	r := calls.NewRouter(nil)
	with := call("with_schema", func(context.Context, *calls.Request) (*calls.Result, error) {
		return &calls.Result{Content: []calls.Content{{Type: calls.ContentText, Text: "42"}}, Structured: map[string]any{"answer": "42"}}, nil
	})
	with.OutputSchema = json.RawMessage(schema)
	busy := call("busy_with_schema", func(context.Context, *calls.Request) (*calls.Result, error) {
		res := calls.Errorf("busy")
		res.Reason = calls.ReasonBusy
		return res, nil
	})
	busy.OutputSchema = json.RawMessage(schema)
	mustAdd(t, r, with, busy, echoCall("plain"))
	cs := mcptest.Connect(t, r, nil)

	schemas := map[string]any{}
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		schemas[tool.Name] = tool.OutputSchema
	}
	var got jsonschema.Schema
	b, _ := json.Marshal(schemas["with_schema"])
	if err := json.Unmarshal(b, &got); err != nil || len(got.Required) != 1 || got.Required[0] != "answer" {
		t.Fatalf("listed output schema = %s (%v)", b, err)
	}
	if schemas["plain"] != nil {
		t.Fatalf("a call without an output schema is listed with %v", schemas["plain"])
	}

	res, _ := mcptest.CallText(t, cs, "with_schema", nil)
	rs, err := got.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || rs.Validate(res.StructuredContent) != nil {
		t.Fatalf("structured = %#v: %v", res.StructuredContent, rs.Validate(res.StructuredContent))
	}
	res, _ = mcptest.CallText(t, cs, "busy_with_schema", nil)
	m, ok := res.StructuredContent.(map[string]any)
	if !res.IsError || !ok || m["reason"] != "busy" {
		t.Fatalf("an error result under an output schema = %+v", res)
	}
	if rs.Validate(res.StructuredContent) == nil {
		t.Fatal("the error's structured content now matches the schema; the pin above is stale")
	}
}
