package calls

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

type inner struct {
	Role string `json:"role"`
	N    *int   `json:"n,omitempty"`
}

type common struct {
	TimeoutS *float64 `json:"timeout_s,omitempty"`
}

// argsUnderTest has the shapes tool arguments take: a plain field, an
// embedded struct's promoted field, a nested struct list, a map and an
// opaque raw value.
type argsUnderTest struct {
	Cmd string `json:"cmd"`
	common
	Msgs    []inner           `json:"messages,omitempty"`
	Opts    map[string]any    `json:"options,omitempty"`
	Format  json.RawMessage   `json:"format,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

func TestDecodeArgsExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw, want string // want "" means accepted
	}{
		{`{"cmd":"x"}`, ""},
		{`{"cmd":"x","timeout_s":2,"messages":[{"role":"user"}],"options":{"a":1},"format":{"type":"object"}}`, ""},
		{``, ""},
		{`null`, ""},
		{`{"CMD":"x"}`, `unknown field "CMD": field names are case-sensitive, did you mean "cmd"?`},
		{`{"Cmd":"x"}`, `did you mean "cmd"`},
		{`{"cmſ":"x"}`, `unknown field "cmſ"`},
		{`{"cmd\u0000":"x"}`, `unknown field`},
		{`{"cmd":"x","cmd":"y"}`, `field "cmd" appears twice`},
		{`{"cmd":"x","Timeout_S":1}`, `unknown field "Timeout_S"`},
		{`{"cmd":"x","messages":[{"ROLE":"user"}]}`, `unknown field "messages[0].ROLE"`},
		{`{"cmd":"x","messages":[{"role":"a","role":"b"}]}`, `appears twice`},
		{`{"cmd":"x","options":{"k":1,"k":2}}`, `field "options.k" appears twice`},
		{`{"cmd":"x","format":{"a":1,"a":2}}`, `appears twice`},
		{`{"cmd":"x"} {}`, `trailing data`},
		{`{"cmd":"x","extra":1}`, `unknown field`},
	} {
		var a argsUnderTest
		err := DecodeArgs(json.RawMessage(tc.raw), &a)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.raw, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error with %q", tc.raw, err, tc.want)
		}
	}
	// Allow: the accepted value is what the client meant.
	var a argsUnderTest
	if err := DecodeArgs(json.RawMessage(`{"cmd":"echo","timeout_s":1.5}`), &a); err != nil || a.Cmd != "echo" || *a.TimeoutS != 1.5 {
		t.Fatalf("%+v %v", a, err)
	}
}

// FuzzDecodeArgs checks the exact decoder's promise: whatever it accepts
// names only declared fields, exactly, each once, at every level it knows;
// and the value decoded re-encodes to JSON that decodes to the same value.
func FuzzDecodeArgsExact(f *testing.F) {
	for _, s := range []string{
		`{"cmd":"x"}`, `{"CMD":"x"}`, `{"cmd":"x","cmd":"y"}`, `{"cmſ":"x"}`, `{"cmd\u0000":"x"}`,
		`{"cmd":"x","timeout_s":1,"messages":[{"role":"u","n":2}],"options":{"a":[1,{"b":null}]},"format":"json"}`,
		`{"messages":[{"Role":"u"}]}`, `{"options":{"a":1,"a":1}}`, `{"headers":{"x":"1"}}`, `{"timeout_s":1,"TIMEOUT_S":2}`,
	} {
		f.Add([]byte(s))
	}
	fields := structFields(reflect.TypeFor[argsUnderTest]())
	innerFields := structFields(reflect.TypeFor[inner]())
	f.Fuzz(func(t *testing.T, raw []byte) {
		var a argsUnderTest
		if err := DecodeArgs(raw, &a); err != nil {
			if !strings.HasPrefix(err.Error(), "invalid arguments") {
				t.Fatalf("error does not say what was wrong: %v", err)
			}
			return
		}
		// Every key is declared, exactly, once: at the top and in messages.
		var top map[string]json.RawMessage
		if len(raw) > 0 && string(raw) != "null" {
			if err := json.Unmarshal(raw, &top); err != nil {
				t.Fatalf("accepted %q, which is not an object: %v", raw, err)
			}
		}
		for k := range top {
			if _, ok := fields[k]; !ok {
				t.Fatalf("accepted undeclared key %q in %q", k, raw)
			}
		}
		if countKeys(t, raw) != len(top) {
			t.Fatalf("accepted a duplicate key in %q", raw)
		}
		if m, ok := top["messages"]; ok && string(m) != "null" {
			var msgs []map[string]json.RawMessage
			if err := json.Unmarshal(m, &msgs); err != nil {
				t.Fatalf("messages: %v", err)
			}
			for _, msg := range msgs {
				for k := range msg {
					if _, ok := innerFields[k]; !ok {
						t.Fatalf("accepted undeclared nested key %q in %q", k, raw)
					}
				}
			}
		}
		// Round trip.
		enc, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var b argsUnderTest
		if err := DecodeArgs(enc, &b); err != nil {
			t.Fatalf("the re-encoding %s of accepted %q is refused: %v", enc, raw, err)
		}
		enc2, _ := json.Marshal(b)
		if string(enc) != string(enc2) {
			t.Fatalf("round trip changed the value: %s -> %s", enc, enc2)
		}
	})
}

// countKeys counts the keys of the top-level object of raw, duplicates
// included.
func countKeys(t *testing.T, raw []byte) int {
	if len(raw) == 0 || string(raw) == "null" {
		return 0
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// FuzzTraceParent: ValidTraceParent accepts only what the W3C format
// allows, and TraceID of an accepted value is its 32 lowercase hex digits,
// never all zeros.
func FuzzTraceParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, tp string) {
		id := TraceID(tp)
		if !ValidTraceParent(tp) {
			if id != "" {
				t.Fatalf("TraceID(%q) = %q for an invalid traceparent", tp, id)
			}
			return
		}
		if len(tp) != 55 && (tp[:2] == "00" || tp[55] != '-') {
			t.Fatalf("accepted %q: version 00 is exactly 55 bytes, later ones go on with '-'", tp)
		}
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || id == strings.Repeat("0", 32) || id != tp[3:35] {
			t.Fatalf("TraceID(%q) = %q", tp, id)
		}
		if tp[:2] == "ff" || tp[36:52] == strings.Repeat("0", 16) || strings.Trim(tp[:2]+tp[36:52]+tp[53:55], "0123456789abcdef") != "" {
			t.Fatalf("accepted %q", tp)
		}
	})
}
