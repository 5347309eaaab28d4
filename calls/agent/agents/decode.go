package agents

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/yamldoc"
)

// MaxFileBytes bounds a file of agents.
const MaxFileBytes = 4 << 20

// Parse decodes the "agents" key of a YAML or JSON document and checks the
// agents (Validate). Other top-level keys are left alone, so that the file
// membrane reads with --config can hold the agents too; within an agent an
// unknown key is an error naming its line and the nearest known key. A
// document without an "agents" key holds no agents.
func Parse(data []byte) ([]Spec, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("agents: the file is %d bytes; at most %d", len(data), MaxFileBytes)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		// Valid JSON has tabs only between tokens; YAML refuses them there.
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("agents: not YAML or JSON: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("agents: more than one YAML document; keep the agents in one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	root = yamldoc.Resolve(root)
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: agents: the file must be a mapping with an agents key, not %s", root.Line, yamldoc.Words(root))
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "agents" {
			list = yamldoc.Resolve(root.Content[i+1])
		}
	}
	if list == nil {
		return nil, nil
	}
	return DecodeNode(list)
}

// DecodeNode decodes and checks a YAML list of agents, as Parse does with
// the value of the "agents" key.
func DecodeNode(list *yaml.Node) ([]Spec, error) {
	list = yamldoc.Resolve(list)
	if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: agents must be a list of agents, not %s", list.Line, yamldoc.Words(list))
	}
	if len(list.Content) > MaxAgents {
		return nil, fmt.Errorf("line %d: agents: %d agents; at most %d fit in one file", list.Line, len(list.Content), MaxAgents)
	}
	specs := make([]Spec, len(list.Content))
	var errs []error
	lines := make([]int, len(list.Content))
	for i, n := range list.Content {
		n = yamldoc.Resolve(n)
		lines[i] = n.Line
		who := fmt.Sprintf("agents[%d]", i)
		if n.Kind != yaml.MappingNode {
			errs = append(errs, &Error{Agent: who, Line: n.Line, Msg: "must be a mapping (name, model, ...), not " + yamldoc.Words(n)})
			continue
		}
		if name := field(n, "name"); name != nil && NamePattern.MatchString(name.Value) {
			who = name.Value
		}
		if err := known(n, reflect.TypeFor[Spec](), who); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := n.Decode(&specs[i]); err != nil {
			errs = append(errs, &Error{Agent: who, Line: n.Line, Msg: cleanYAML(err)})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := Validate(specs); err != nil {
		// Put the agent's line on each problem.
		var out []error
		for _, e := range unjoin(err) {
			var ae *Error
			if errors.As(e, &ae) {
				for i := range specs {
					if ae.Agent == specs[i].Name || ae.Agent == fmt.Sprintf("agents[%d]", i) {
						ae.Line = lines[i]
						break
					}
				}
			}
			out = append(out, e)
		}
		return nil, errors.Join(out...)
	}
	return specs, nil
}

// Encode writes specs as a document Parse reads back.
func Encode(specs []Spec) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Agents []Spec `yaml:"agents"`
	}{specs}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// known checks that every key of the mapping n names a field of the struct
// t (by its yaml tag), at any depth, and that none is given twice.
func known(n *yaml.Node, t reflect.Type, who string) error {
	var errs []error
	for _, p := range calls.CheckKeys(yamldoc.Doc, n, t, "") {
		msg := "given twice"
		if !p.Twice {
			msg = "unknown key"
			if p.Near != "" {
				msg += " (did you mean " + calls.JoinKey(p.Path, p.Near) + "?)"
			} else {
				msg += "; the keys are " + strings.Join(p.Known, ", ")
			}
		}
		errs = append(errs, &Error{Agent: who, Line: p.Line, Field: p.Field(), Msg: msg})
	}
	return errors.Join(errs...)
}

func field(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return yamldoc.Resolve(n.Content[i+1])
		}
	}
	return nil
}

// cleanYAML turns yaml.v3's decode errors into words.
func cleanYAML(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(msg, "yaml: ")
	var parts []string
	for l := range strings.SplitSeq(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		for from, to := range map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!str": "text", "!!int": "a number",
			"!!float": "a number", "!!bool": "true or false", "into agents.Duration": "into a duration",
			"into []string": "into a list of text", "into string": "into text", "into int64": "into a whole number",
			"into int": "into a whole number", "into float64": "into a number", "into bool": "into true or false"} {
			l = strings.ReplaceAll(l, from, to)
		}
		parts = append(parts, l)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}
