package mcptest

import (
	"encoding/json"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// OutputSchemas lists the tools of cs and returns each one's output
// schema, resolved for validation. A tool without one fails the test,
// unless allowMissing says it may lack one.
func OutputSchemas(t testing.TB, cs *sdk.ClientSession, allowMissing func(tool string) bool) map[string]*jsonschema.Resolved {
	t.Helper()
	res, err := cs.ListTools(contextOf(t), nil)
	if err != nil {
		t.Fatalf("mcptest: list tools: %v", err)
	}
	out := map[string]*jsonschema.Resolved{}
	for _, tool := range res.Tools {
		if tool.OutputSchema == nil {
			if allowMissing == nil || !allowMissing(tool.Name) {
				t.Errorf("tool %s declares no outputSchema", tool.Name)
			}
			continue
		}
		out[tool.Name] = ResolveSchema(t, tool.Name, tool.OutputSchema)
	}
	return out
}

// ResolveSchema turns a schema as a client decoded it into one that
// validates.
func ResolveSchema(t testing.TB, name string, schema any) *jsonschema.Resolved {
	t.Helper()
	b, err := json.Marshal(schema)
	if err != nil {
		t.Fatalf("mcptest: %s: marshal schema: %v", name, err)
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("mcptest: %s: the schema does not parse: %v\n%s", name, err, b)
	}
	rs, err := s.Resolve(nil)
	if err != nil {
		t.Fatalf("mcptest: %s: the schema does not resolve: %v\n%s", name, err, b)
	}
	return rs
}

// CheckStructured fails the test unless res carries structured content
// that rs accepts.
func CheckStructured(t testing.TB, name string, rs *jsonschema.Resolved, res *sdk.CallToolResult) {
	t.Helper()
	if res.StructuredContent == nil {
		t.Errorf("%s: the result has no structuredContent:\n%s", name, TextOf(res))
		return
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Errorf("%s: marshal structuredContent: %v", name, err)
		return
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Errorf("%s: structuredContent: %v", name, err)
		return
	}
	if err := rs.Validate(v); err != nil {
		t.Errorf("%s: structuredContent does not match the outputSchema: %v\n%s", name, err, b)
	}
}

// CheckSchema fails the test unless structured (a call's
// Result.Structured, before any transport) matches the output schema
// declared as JSON.
func CheckSchema(t testing.TB, name string, schema json.RawMessage, structured any) {
	t.Helper()
	if len(schema) == 0 {
		t.Errorf("%s declares no output schema", name)
		return
	}
	var s any
	if err := json.Unmarshal(schema, &s); err != nil {
		t.Fatalf("%s: output schema: %v", name, err)
	}
	CheckStructured(t, name, ResolveSchema(t, name, s), &sdk.CallToolResult{StructuredContent: structured})
}
