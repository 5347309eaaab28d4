package ollama

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/membrane-mcp/membrane/calls"
)

// decodeArgs decodes tool arguments with calls.DecodeArgs, then checks that
// they name every field exactly as the schema spells it and hold no object
// with a key twice. encoding/json alone folds case ("MODEL" fills model)
// and keeps the last of two equal keys, so a guard that reads the raw
// arguments and the handler that decodes them could disagree.
//
// TODO(lead): calls.DecodeArgs is being made exact on the sandbox branch;
// once it is, this wrapper is redundant and every caller can use it alone.
func decodeArgs(raw json.RawMessage, v any) error {
	if err := calls.DecodeArgs(raw, v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := exactValue(dec, reflect.TypeOf(v), ""); err != nil {
		return fmt.Errorf("invalid arguments: %v", err)
	}
	return nil
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// exactValue consumes one JSON value from dec, checked against t: the keys
// of a struct exactly its json names; the keys of any object unique. A nil
// t (or an interface, or json.RawMessage) checks uniqueness only.
func exactValue(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || t.Kind() == reflect.Interface) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := exactValue(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		} else if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k := kt.(string)
			where := k
			if path != "" {
				where = path + "." + k
			}
			if seen[k] {
				return fmt.Errorf("field %q appears twice", where)
			}
			seen[k] = true
			vt := elem
			if fields != nil {
				ft, ok := fields[k]
				if !ok {
					return fmt.Errorf("unknown field %q (field names are case-sensitive)", where)
				}
				vt = ft
			}
			if err := exactValue(dec, vt, where); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	_, err = dec.Token() // the closing ] or }
	return err
}

// jsonFields maps the json names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}
