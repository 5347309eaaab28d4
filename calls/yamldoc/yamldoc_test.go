package yamldoc

import (
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/membrane-mcp/membrane/calls"
)

func TestResolveAndWords(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: &x {k: 1}\nb: *x\nc: [1]\nd: text\n"), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0]
	b := m.Content[3]
	if b.Kind != yaml.AliasNode || Resolve(b).Kind != yaml.MappingNode {
		t.Fatalf("Resolve(%v) = %v", b.Kind, Resolve(b).Kind)
	}
	for i, want := range []string{"a mapping", "a mapping", "a list", `"text"`} {
		if got := Words(Resolve(m.Content[2*i+1])); got != want {
			t.Errorf("Words(value %d) = %q, want %q", i, got, want)
		}
	}
}

func TestDocFindsUnknownKeysThroughAliases(t *testing.T) {
	type inner struct {
		K int `yaml:"k"`
	}
	type top struct {
		A inner `yaml:"a"`
		B inner `yaml:"b"`
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: &x {k: 1, kk: 2}\nb: *x\n"), &doc); err != nil {
		t.Fatal(err)
	}
	probs := calls.CheckKeys(Doc, doc.Content[0], reflect.TypeFor[top](), "")
	if len(probs) != 2 {
		t.Fatalf("problems %+v, want kk under a and under b (through the alias)", probs)
	}
	for _, p := range probs {
		if p.Key != "kk" {
			t.Errorf("problem %+v names the wrong key", p)
		}
	}
}
