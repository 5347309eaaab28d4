package mcp

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/jsonschema-go/jsonschema"
)

// ErrBadSchema is wrapped by the errors CheckSchema returns.
var ErrBadSchema = errors.New("bad input schema")

// CheckSchema reports whether raw is an input schema a chat API can be
// given: JSON nested at most maxDepth deep (zero means
// DefaultSchemaDepth), a valid JSON Schema (every keyword of the right
// type: "properties" an object of schemas, "required" an array of
// strings, and so on) with every $ref resolvable inside it, of type
// "object", and every property an object schema (chat APIs reject the
// boolean shorthand). The error wraps ErrBadSchema and says what is wrong.
func CheckSchema(raw json.RawMessage, maxDepth int) error {
	if maxDepth <= 0 {
		maxDepth = DefaultSchemaDepth
	}
	if d := jsonDepth(raw); d > maxDepth {
		return fmt.Errorf("%w: nested %d deep, more than %d", ErrBadSchema, d, maxDepth)
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSchema, err)
	}
	if s.Type != "object" {
		return fmt.Errorf("%w: type is not \"object\"", ErrBadSchema)
	}
	var props struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &props); err != nil {
		return fmt.Errorf("%w: properties: %v", ErrBadSchema, err)
	}
	for name, p := range props.Properties {
		if len(p) == 0 || p[0] != '{' {
			return fmt.Errorf("%w: property %q is not an object schema", ErrBadSchema, name)
		}
	}
	if _, err := s.Resolve(nil); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSchema, err)
	}
	return nil
}

// jsonDepth returns how deep objects and arrays nest in the JSON text b.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
