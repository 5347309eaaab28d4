package settings

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/yamldoc"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileBytes caps a config file; anything larger is a mistake.
const MaxFileBytes = 4 << 20

// Load sets every setting from, lowest first, its default, the config
// file, the environment (getenv) and args (the command line without the
// program name), then runs every setting's checks. readFile reads the
// config file (nil means os.ReadFile): a reload passes the bytes it has
// already read, so that what is checked is what is used.
//
// It returns ErrHelp for -h or --help and ErrStop for a Def.Stop flag,
// before reading anything else. Otherwise the error joins an *Error per
// bad setting.
func (s *Set) Load(args []string, getenv func(string) string, readFile func(string) ([]byte, error)) error {
	if readFile == nil {
		readFile = os.ReadFile
	}
	for _, x := range s.list {
		x.reset()
		x.src, x.srcLine = FromDefault, 0
	}
	s.file, s.data, s.args = "", nil, nil

	given, rest, err := s.parseArgs(args)
	if err != nil {
		return err
	}
	s.args = rest
	for _, g := range given {
		if g.s.Stop && g.s.Kind == KindBool {
			if b, _ := ParseBool(g.v); b {
				return ErrStop
			}
		}
	}

	var errs []error
	if c := s.config; c != nil {
		path := ""
		if c.Env != "" {
			path = getenv(c.Env)
		}
		for _, g := range given {
			if g.s == c {
				path = g.v
			}
		}
		if path != "" {
			data, err := readFile(path)
			if err == nil && len(data) > MaxFileBytes {
				err = fmt.Errorf("%d bytes is too large for a config file (limit %d)", len(data), MaxFileBytes)
			}
			if err != nil {
				return &Error{Setting: c, Where: "config file", Msg: err.Error()}
			}
			s.file, s.data = path, data
			if err := s.decodeFile(data); err != nil {
				errs = append(errs, err)
			}
		}
	}

	for _, x := range s.list {
		if x.Env == "" {
			continue
		}
		v := getenv(x.Env)
		if v == "" {
			continue
		}
		x.src = FromEnv
		if x.Kind == KindList {
			x.clear()
			parts := strings.Split(v, ",")
			if x.EnvSplit != nil {
				parts = x.EnvSplit(v)
			}
			for _, part := range parts {
				if part = strings.TrimSpace(part); part != "" {
					_ = x.set(part)
				}
			}
			continue
		}
		if err := x.set(v); err != nil {
			errs = append(errs, &Error{Setting: x, Where: x.Env, Value: v, Msg: msgOf(err, v)})
		}
	}

	cleared := map[*Setting]bool{}
	for _, g := range given {
		x := g.s
		x.src = FromFlag
		if x.Kind == KindList {
			if !cleared[x] {
				x.clear()
				cleared[x] = true
			}
			vals := []string{g.v}
			if x.Split {
				vals = nil
				for part := range strings.SplitSeq(g.v, ",") {
					if part = strings.TrimSpace(part); part != "" {
						vals = append(vals, part)
					}
				}
			}
			for _, v := range vals {
				_ = x.set(v)
			}
			continue
		}
		if err := x.set(g.v); err != nil {
			errs = append(errs, &Error{Setting: x, Where: x.FlagName(), Value: g.v, Msg: msgOf(err, g.v)})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Checks run on the values the user gave; the defaults are known good
	// (a test checks them), and some, such as 0 for "all", mean something
	// no user value may.
	for _, x := range s.list {
		if x.src == FromDefault {
			continue
		}
		if err := x.check(); err != nil {
			e := &Error{Setting: x, Where: s.where(x), Msg: err.Error()}
			if x.Kind != KindList && x.Kind != KindValue {
				e.Value = x.text()
			}
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// CheckDefaults runs every setting's checks on its default; for tests.
func (s *Set) CheckDefaults() error {
	var errs []error
	for _, x := range s.list {
		x.reset()
		if err := x.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: default %q: %w", x.Label(), x.text(), err))
		}
	}
	return errors.Join(errs...)
}

// msgOf is a parse error's message without the value, which Error adds.
func msgOf(err error, v string) string {
	return strings.TrimPrefix(err.Error(), fmt.Sprintf("%q ", v))
}

type givenFlag struct {
	s *Setting
	v string
}

// parseArgs reads flags up to the first argument that is not one (or
// "--"), as the standard flag package does: -name, --name, -name=value,
// --name value.
func (s *Set) parseArgs(args []string) ([]givenFlag, []string, error) {
	var out []givenFlag
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return out, args[i+1:], nil
		}
		if len(a) < 2 || a[0] != '-' {
			return out, args[i:], nil
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		if name == "h" || name == "help" {
			return nil, nil, ErrHelp
		}
		var x *Setting
		for _, y := range s.list {
			if y.Flag == name && name != "" {
				x = y
			}
		}
		if x == nil {
			msg := "unknown flag"
			if near := calls.Nearest(name, s.flagNames()); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s.Lookup(near).FlagName())
			}
			return nil, nil, &Error{Where: a, Msg: fmt.Sprintf("%s; see %s --help", msg, s.Name)}
		}
		switch {
		case hasValue:
		case !x.takesValue():
			value = "true"
		case i+1 < len(args):
			i++
			value = args[i]
		default:
			return nil, nil, &Error{Setting: x, Where: x.FlagName(), Msg: fmt.Sprintf("needs a value (%s)", x.arg())}
		}
		out = append(out, givenFlag{x, value})
	}
	return out, nil, nil
}

func (s *Set) flagNames() []string {
	var out []string
	for _, x := range s.list {
		if x.Flag != "" {
			out = append(out, x.Flag)
		}
	}
	return out
}

// decodeFile applies a YAML or JSON document to the settings with keys.
func (s *Set) decodeFile(data []byte) error {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		// JSON is YAML, but for tabs: valid JSON has tabs only between
		// tokens (a tab in a string must be escaped), so they can become
		// spaces, and the errors keep YAML's line numbers.
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return &Error{Where: "config file " + s.file, Msg: cleanYAML(err.Error())}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &Error{Where: "config file " + s.file, Msg: "more than one YAML document; keep the settings in one"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	var errs []error
	s.walk(root, "", &errs)
	return errors.Join(errs...)
}

func (s *Set) fileErr(line int, key, msg string) error {
	where := fmt.Sprintf("config file %s: line %d", s.file, line)
	if key != "" {
		where += ": " + key
	}
	return &Error{Where: where, Msg: msg}
}

// walk applies the mapping n, whose keys sit under prefix.
func (s *Set) walk(n *yaml.Node, prefix string, errs *[]error) {
	n = yamldoc.Resolve(n)
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if prefix != "" {
			what = prefix
		}
		*errs = append(*errs, s.fileErr(n.Line, prefix, fmt.Sprintf("%s must be a mapping of keys to values, not %s", what, yamldoc.Words(n))))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], yamldoc.Resolve(n.Content[i+1])
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		if x := s.byKey(key); x != nil && x.Kind == KindValue {
			// A structured value's errors name their own lines and keys.
			if err := x.node(v); err != nil {
				for l := range strings.SplitSeq(err.Error(), "\n") {
					var n int
					if _, err := fmt.Sscanf(l, "line %d:", &n); err != nil {
						l = fmt.Sprintf("line %d: %s: %s", v.Line, key, l)
					} else if !strings.Contains(l, key) {
						l = strings.Replace(l, ":", ": "+key+":", 1)
					}
					*errs = append(*errs, &Error{Setting: x, Where: "config file " + s.file, Msg: l})
				}
			} else {
				x.src, x.srcLine = FromFile, v.Line
			}
			continue
		}
		if x := s.byKey(key); x != nil {
			if err := s.apply(x, v); err != nil {
				*errs = append(*errs, s.fileErr(v.Line, key, err.Error()))
			} else {
				x.src, x.srcLine = FromFile, v.Line
			}
			continue
		}
		if s.isSection(key) {
			s.walk(v, key, errs)
			continue
		}
		msg := "unknown key"
		if near := calls.Nearest(key, s.keys()); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		*errs = append(*errs, s.fileErr(k.Line, key, msg))
	}
}

// apply sets x from its file value.
func (s *Set) apply(x *Setting, v *yaml.Node) error {
	switch {
	case x.Kind == KindList && v.Kind == yaml.SequenceNode:
		x.clear()
		for _, item := range v.Content {
			item = yamldoc.Resolve(item)
			if item.Kind != yaml.ScalarNode {
				return fmt.Errorf("each item must be one value, not %s", yamldoc.Words(item))
			}
			_ = x.set(item.Value)
		}
		return nil
	case v.Kind != yaml.ScalarNode:
		return fmt.Errorf("must be %s, not %s", x.Kind.words(), yamldoc.Words(v))
	case x.Kind == KindList:
		x.clear()
		if v.Tag != "!!null" {
			_ = x.set(v.Value)
		}
		return nil
	}
	if err := x.set(v.Value); err != nil {
		return errors.New(err.Error())
	}
	return nil
}

func (s *Set) byKey(key string) *Setting {
	for _, x := range s.list {
		if x.Key == key {
			return x
		}
	}
	return nil
}

func (s *Set) isSection(key string) bool {
	for _, x := range s.list {
		if strings.HasPrefix(x.Key, key+".") {
			return true
		}
	}
	return false
}

func (s *Set) keys() []string {
	var out []string
	for _, x := range s.list {
		if x.Key != "" {
			out = append(out, x.Key)
		}
	}
	return out
}

// knownFields checks that every mapping key in n names a field of t (by
// its yaml tag), so that a typo in a structured value is an error that
// names the key and suggests the nearest.
func knownFields(n *yaml.Node, t reflect.Type, path string) error {
	var errs []error
	for _, p := range calls.CheckKeys(yamldoc.Doc, n, t, path) {
		msg := fmt.Sprintf("line %d: %s: given twice", p.Line, p.Field())
		if !p.Twice {
			msg = fmt.Sprintf("line %d: %s: unknown key", p.Line, p.Field())
			if p.Near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", p.Near)
			}
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}

var (
	yamlTypeRE = regexp.MustCompile("cannot unmarshal !!(\\w+) (?:`([^`]*)` )?into ([\\w.\\[\\]*]+)")
	goWords    = map[string]string{"string": "text", "int": "a whole number", "int64": "a whole number", "float64": "a number", "bool": "true or false"}
	yamlWords  = map[string]string{"seq": "a list", "map": "a mapping", "str": "text", "int": "a number", "float": "a number", "bool": "true or false", "null": "nothing"}
)

// cleanDecodeError turns yaml.v3's "cannot unmarshal !!seq into string"
// into words.
func cleanDecodeError(err error) error {
	msg := cleanYAML(err.Error())
	msg = yamlTypeRE.ReplaceAllStringFunc(msg, func(m string) string {
		sub := yamlTypeRE.FindStringSubmatch(m)
		got := yamlWords[sub[1]]
		if got == "" {
			got = "this value"
		}
		if sub[2] != "" {
			got = fmt.Sprintf("%q", sub[2])
		}
		want := goWords[sub[3]]
		switch {
		case want != "":
		case strings.HasPrefix(sub[3], "[]"):
			want = "a list"
		case strings.HasPrefix(sub[3], "map"), strings.Contains(sub[3], "."):
			want = "a mapping"
		default:
			want = "another kind of value"
		}
		return fmt.Sprintf("%s where %s was expected", got, want)
	})
	return errors.New(msg)
}

func cleanYAML(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	return msg
}

// Nearest returns the candidate closest to v, when it is close enough to
// be the one meant, else "": for "did you mean" hints of a program's own
// (calls.Nearest).
func Nearest(v string, candidates []string) string { return calls.Nearest(v, candidates) }

// Encode returns the current values of the settings that were given (by
// any source) and have a file key, as a config file document (YAML; JSON
// is YAML too). Loading it gives the same values back.
func (s *Set) Encode() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, x := range s.list {
		if x.Key == "" || x.src == FromDefault {
			continue
		}
		parts := strings.Split(x.Key, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			var next *yaml.Node
			for i := 0; i+1 < len(m.Content); i += 2 {
				if m.Content[i].Value == p {
					next = m.Content[i+1]
				}
			}
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode}
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, next)
			}
			m = next
		}
		var v yaml.Node
		if err := v.Encode(x.encode()); err != nil {
			return nil, fmt.Errorf("%s: %w", x.Key, err)
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: parts[len(parts)-1]}, &v)
	}
	return yaml.Marshal(root)
}
