// Package yamldoc reads gopkg.in/yaml.v3 trees for the config decoders of
// both programs (membrane's settings file and the agents file): the key
// check of calls.CheckKeys, aliases followed, and a node named in words
// for an error.
package yamldoc

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/membrane-mcp/membrane/calls"
)

// Doc reads a yaml.v3 tree for calls.CheckKeys.
var Doc = calls.Doc[*yaml.Node]{
	Mapping: func(n *yaml.Node) ([]*yaml.Node, bool) { n = Resolve(n); return n.Content, n.Kind == yaml.MappingNode },
	List:    func(n *yaml.Node) ([]*yaml.Node, bool) { n = Resolve(n); return n.Content, n.Kind == yaml.SequenceNode },
	Key:     func(n *yaml.Node) (string, int) { return n.Value, n.Line },
}

// maxAliases bounds how many aliases Resolve follows in a row.
const maxAliases = 64

// Resolve returns the node an alias stands for (n itself when it is none).
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliases; i++ {
		n = n.Alias
	}
	return n
}

// Words names n for an error: "a mapping", "a list", or its value quoted.
func Words(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}
