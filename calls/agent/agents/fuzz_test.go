package agents_test

import (
	"reflect"
	"testing"

	"github.com/membrane-mcp/membrane/calls/agent/agents"
)

// FuzzParse: whatever Parse accepts is valid, and writing it out and
// reading it back gives the same agents.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("agents:\n  - {name: a, model: m}"))
	f.Add([]byte(`{"agents": [{"name": "a", "model": "m", "timeout": 3, "temperature": 1.5}]}`))
	f.Add([]byte("agents:\n  - &x {name: a, model: m}\n  - *x"))
	f.Add([]byte("agents: [{name: a, model: m, system: \"\\u00e9\\t\", tools: ['*'], mcp_servers: {s: {url: 'http://h'}}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := agents.Parse(data)
		if err != nil {
			return
		}
		if err := agents.Validate(specs); err != nil {
			t.Fatalf("Parse accepted agents Validate refuses: %v", err)
		}
		b, err := agents.Encode(specs)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		again, err := agents.Parse(b)
		if err != nil {
			t.Fatalf("Parse(Encode(x)) failed: %v\n%s", err, b)
		}
		if len(specs) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(specs, again) {
			t.Fatalf("round trip changed the agents:\n%+v\n%+v\n%s", specs, again, b)
		}
	})
}
