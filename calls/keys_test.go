package calls_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
)

func TestNearest(t *testing.T) {
	t.Parallel()
	keys := []string{"sandbox.timeout", "sandbox.memory", "http.addr"}
	for in, want := range map[string]string{"sandbox.timout": "sandbox.timeout", "http.timeout": "sandbox.timeout",
		"memroy": "sandbox.memory", "zzzzzz": "", "a": "", strings.Repeat("x", 200): ""} {
		if got := calls.Nearest(in, keys); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

// node is a tiny document tree for CheckKeys: a mapping (kv), a list
// (items) or a scalar (neither).
type node struct {
	key   string
	line  int
	kv    []*node
	items []*node
}

var doc = calls.Doc[*node]{
	Mapping: func(n *node) ([]*node, bool) { return n.kv, n.kv != nil },
	List:    func(n *node) ([]*node, bool) { return n.items, n.items != nil },
	Key:     func(n *node) (string, int) { return n.key, n.line },
}

func mapping(kv ...*node) *node    { return &node{kv: kv} }
func key(k string, line int) *node { return &node{key: k, line: line} }

type inner struct {
	Command string `yaml:"command"`
	Args    []string
	Hidden  string `yaml:"-"`
}

type outer struct {
	Name    string            `yaml:"name,omitempty"`
	Servers map[string]inner  `yaml:"servers"`
	Items   []*inner          `yaml:"items"`
	Labels  map[string]string `yaml:"labels"`
}

// CheckKeys names each unknown key with its path, line and nearest known
// key, and each key given twice, through maps and lists; every known key
// at any depth passes (the control).
func TestCheckKeys(t *testing.T) {
	t.Parallel()
	scalar := &node{}
	good := mapping(
		key("name", 1), scalar,
		key("servers", 2), mapping(key("s", 3), mapping(key("command", 3), scalar, key("args", 3), &node{items: []*node{scalar}})),
		key("items", 4), &node{items: []*node{mapping(key("command", 5), scalar)}},
		key("labels", 6), mapping(key("anything", 6), scalar),
	)
	if got := calls.CheckKeys(doc, good, reflect.TypeFor[outer](), ""); len(got) != 0 {
		t.Fatalf("a good document: %+v", got)
	}
	bad := mapping(
		key("nme", 1), scalar,
		key("name", 2), scalar,
		key("name", 3), scalar,
		key("servers", 4), mapping(key("s", 5), mapping(key("comand", 5), scalar)),
		key("items", 6), &node{items: []*node{mapping(key("hidden", 7), scalar)}},
	)
	got := calls.CheckKeys(doc, bad, reflect.TypeFor[outer](), "top")
	want := []calls.KeyProblem{
		{Path: "top", Key: "nme", Line: 1, Near: "name"},
		{Path: "top", Key: "name", Line: 3, Twice: true},
		{Path: "top.servers.s", Key: "comand", Line: 5, Near: "command"},
		{Path: "top.items[0]", Key: "hidden", Line: 7},
	}
	if len(got) != len(want) {
		t.Fatalf("problems = %+v, want %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Path != w.Path || g.Key != w.Key || g.Line != w.Line || g.Twice != w.Twice || g.Near != w.Near {
			t.Errorf("problem %d = %+v, want %+v", i, g, w)
		}
	}
	if f := got[2].Field(); f != "top.servers.s.comand" {
		t.Errorf("Field() = %q", f)
	}
	if k := strings.Join(got[3].Known, ","); k != "command,args" {
		t.Errorf("known keys of inner = %q, want command,args (the tagged name, the lower-cased one, not the yaml:\"-\")", k)
	}
}
