package calls

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// exactKeys checks that raw, a JSON value to be decoded into a value of type
// t, names every struct field exactly as its json tag (or Go name) spells
// it, and holds no object with the same key twice. encoding/json alone
// would fold case ("CMD" fills cmd; so do "ſ" for "s" and "K" for "k")
// and keep the last of two equal keys, so that a guard reading the
// arguments one way and the handler another could disagree.
func exactKeys(raw []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return checkValue(dec, t, "")
}

// checkValue consumes one value from dec, checking it against t (nil: any
// value, checked for duplicate keys only).
func checkValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	t = deref(t)
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && !opaque(t) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ]
		return err
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil && !opaque(t) {
			switch t.Kind() {
			case reflect.Struct:
				fields = structFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			where := path + "." + k
			if path == "" {
				where = k
			}
			if seen[k] {
				return fmt.Errorf("field %q appears twice", where)
			}
			seen[k] = true
			vt := elem
			if fields != nil {
				ft, ok := fields[k]
				if !ok {
					return unknownField(where, k, fields)
				}
				vt = ft
			}
			if err := checkValue(dec, vt, where); err != nil {
				return err
			}
		}
		_, err := dec.Token() // }
		return err
	}
	return nil
}

func unknownField(where, k string, fields map[string]reflect.Type) error {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if strings.EqualFold(n, k) {
			return fmt.Errorf("unknown field %q: field names are case-sensitive, did you mean %q?", where, n)
		}
	}
	return fmt.Errorf("unknown field %q (known: %s)", where, strings.Join(names, ", "))
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
)

// opaque reports whether t decodes itself (json.RawMessage, a type with its
// own UnmarshalJSON): its keys are its business, duplicates still refused.
func opaque(t reflect.Type) bool {
	return t == rawMessageType || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) ||
		t.Kind() == reflect.Interface
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// structFields returns the JSON names encoding/json gives t's fields (the
// tag's name, or the Go name), embedded structs' fields promoted.
func structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				if ft := deref(f.Type); ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := m[name]; !dup {
				m[name] = f.Type
			}
		}
	}
	walk(t)
	fieldCache.Store(t, m)
	return m
}

// DecodeArgs decodes raw tool arguments strictly into v, a pointer: field
// names must match exactly (case-sensitive, as the input schema spells
// them), no object may hold a key twice, unknown fields and trailing data
// are errors, and empty arguments decode as {}. The error says what was
// wrong in words a model can act on. Every tool's handler decodes its
// arguments with it.
func DecodeArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid arguments: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid arguments: trailing data after the JSON object")
	}
	if err := exactKeys(raw, reflect.TypeOf(v)); err != nil {
		return fmt.Errorf("invalid arguments: %v", err)
	}
	return nil
}
