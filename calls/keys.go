package calls

import (
	"reflect"
	"strconv"
	"strings"
)

// A Doc reads the nodes of a decoded document (a YAML tree, say) of node
// type N for CheckKeys.
type Doc[N any] struct {
	// Mapping gives a mapping's keys and values, alternating (as yaml.v3
	// keeps them), or false when n is not a mapping.
	Mapping func(n N) (kv []N, ok bool)
	// List gives a list's items, or false when n is not a list.
	List func(n N) ([]N, bool)
	// Key gives the text of a key node and the line it stands on.
	Key func(n N) (string, int)
}

// A KeyProblem is a key of a document that names no field of the struct it
// is decoded into, or a key given twice in one mapping.
type KeyProblem struct {
	// Path is where the mapping stands, dotted ("limits",
	// "items[0]"); "" at the top.
	Path string
	Key  string
	Line int
	// Twice: the key was given before in the same mapping.
	Twice bool
	// Near is the known key nearest Key (Nearest), or "".
	Near string
	// Known lists the keys known there, in field order.
	Known []string
}

// Field is the dotted name of the key: Path and Key.
func (p KeyProblem) Field() string { return JoinKey(p.Path, p.Key) }

// JoinKey joins a dotted path and a key.
func JoinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// CheckKeys walks the document node n as a value of the Go type t and
// reports every mapping key that names no field of the struct there, and
// every key given twice. Fields are known by the name in their yaml tag,
// else by their name in lower case, as gopkg.in/yaml.v3 reads them. It
// follows pointers, lists, arrays and maps; a node of the wrong kind is
// left for the decoder to name.
func CheckKeys[N any](d Doc[N], n N, t reflect.Type, path string) []KeyProblem {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []KeyProblem
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		items, _ := d.List(n)
		for i, item := range items {
			out = append(out, CheckKeys(d, item, t.Elem(), path+"["+strconv.Itoa(i)+"]")...)
		}
	case reflect.Map:
		kv, _ := d.Mapping(n)
		for i := 0; i+1 < len(kv); i += 2 {
			key, _ := d.Key(kv[i])
			out = append(out, CheckKeys(d, kv[i+1], t.Elem(), JoinKey(path, key))...)
		}
	case reflect.Struct:
		kv, ok := d.Mapping(n)
		if !ok {
			return nil
		}
		fields := map[string]reflect.Type{}
		var names []string
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(kv); i += 2 {
			key, line := d.Key(kv[i])
			ft, ok := fields[key]
			switch {
			case !ok:
				out = append(out, KeyProblem{Path: path, Key: key, Line: line, Near: Nearest(key, names), Known: names})
			case seen[key]:
				out = append(out, KeyProblem{Path: path, Key: key, Line: line, Twice: true, Known: names})
			default:
				seen[key] = true
				out = append(out, CheckKeys(d, kv[i+1], ft, JoinKey(path, key))...)
			}
		}
	}
	return out
}

// Nearest returns the candidate closest to v when it is close enough to be
// the one meant ("timout" -> "timeout"), else "": the rule behind every
// "did you mean" of a name (a key, a flag, a tool). A dotted candidate is
// also compared by its last part, so that http.timeout finds
// sandbox.timeout. A v longer than 128 bytes is matched to nothing, which
// bounds the cost (EditDistance).
func Nearest(v string, candidates []string) string {
	if len(v) > 128 {
		return ""
	}
	best, bestD := "", -1
	for _, c := range candidates {
		if len(c) > 128 {
			continue
		}
		d := EditDistance(v, c)
		if i := strings.LastIndexByte(c, '.'); i >= 0 {
			last := v
			if j := strings.LastIndexByte(v, '.'); j >= 0 {
				last = v[j+1:]
			}
			d = min(d, EditDistance(last, c[i+1:]))
		}
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(v)/3) || bestD >= len(v) {
		return ""
	}
	return best
}
