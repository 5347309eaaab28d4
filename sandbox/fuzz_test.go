package sandbox

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls"
)

var argSeeds = []string{
	`{"cmd":"echo hi"}`, `{"cmd":"true","timeout_s":1.5,"stdin":"x"}`, `{}`, `null`, ``,
	`{"cmd":"a\u0000b"}`, `{"cmd":1}`, `{"cmd":"x","extra":true}`, `{"cmd":"x"} {}`,
	`{"code":"print(1)","timeout_s":-1}`, `{"code":"print(1)","timeout_s":1e308}`, `[1,2]`,
	`{"cmd":"x","Cmd":"y"}`, `{"cmd":"x","cmd":"y"}`, `{"cmſ":"x"}`, "{\"cmd\":\"\xff\"}",
	`{"CMD":"x"}`, `{"cmd\u0000":"x"}`, `{"cmd":"x","TIMEOUT_S":1}`, `{"cmd":"x","stdin":"a","stdin":"b"}`,
}

// FuzzDecodeShArgs checks that sh's argument decoder never panics, and that
// whatever it accepts is a usable command with a sane timeout.
func FuzzDecodeShArgs(f *testing.F) {
	for _, s := range argSeeds {
		f.Add([]byte(s))
	}
	s := &Sandbox{cfg: DefaultConfig()}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := decodeShArgs(json.RawMessage(raw))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid arguments") && !strings.Contains(err.Error(), "cmd") {
				t.Fatalf("error does not say what was wrong: %v", err)
			}
			return
		}
		if strings.TrimSpace(a.Cmd) == "" || strings.IndexByte(a.Cmd, 0) >= 0 {
			t.Fatalf("accepted an unusable cmd %q", a.Cmd)
		}
		exactKeysOnly(t, raw, "cmd", "timeout_s", "stdin")
		checkTimeout(t, s, a.runArgs)
	})
}

// FuzzDecodePythonArgs does the same for python_run.
func FuzzDecodePythonArgs(f *testing.F) {
	for _, s := range argSeeds {
		f.Add([]byte(strings.ReplaceAll(s, "cmd", "code")))
	}
	s := &Sandbox{cfg: DefaultConfig()}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := decodePythonArgs(json.RawMessage(raw))
		if err != nil {
			return
		}
		if strings.TrimSpace(a.Code) == "" {
			t.Fatal("accepted blank code")
		}
		exactKeysOnly(t, raw, "code", "timeout_s", "stdin")
		checkTimeout(t, s, a.runArgs)
	})
}

// exactKeysOnly fails unless the object raw names only the given keys,
// exactly, each once.
func exactKeysOnly(t *testing.T, raw []byte, keys ...string) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("accepted %q, not an object", raw)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		k := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if seen[k] || !slices.Contains(keys, k) {
			t.Fatalf("accepted key %q (duplicate: %v) in %q", k, seen[k], raw)
		}
		seen[k] = true
	}
}

func checkTimeout(t *testing.T, s *Sandbox, a runArgs) {
	d, note, err := s.timeout(a)
	if err != nil {
		if a.TimeoutS == nil || *a.TimeoutS > 0 {
			t.Fatalf("rejected timeout %v: %v", a.TimeoutS, err)
		}
		return
	}
	if d <= 0 || d > s.cfg.MaxTimeout {
		t.Fatalf("timeout %v outside (0, %v]", d, s.cfg.MaxTimeout)
	}
	if note != "" && !utf8.ValidString(note) {
		t.Fatal("invalid note")
	}
}

// FuzzCapture checks the output capture: valid UTF-8 always, never more
// than the limit on the wire (JSON-encoded, escapes counted) plus the
// marker, the output whole and unmarked exactly when it fits, and a marker
// exactly when bytes were dropped.
func FuzzCapture(f *testing.F) {
	f.Add([]byte("hello"), 3)
	f.Add([]byte("\xff\x00\x1b[2J"), 100)
	f.Add([]byte("héllo"), 2)
	f.Add([]byte("\x01\x01\x01<>&\u2028"), 13)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if limit <= 0 || limit > 1<<16 {
			return
		}
		c := &capture{limit: int64(limit)}
		c.readFrom(readCloser{strings.NewReader(string(data))})
		out := c.text("stdout")
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8: %q", out)
		}
		fits := jsonLen(data) <= limit
		if c.truncated() == fits || strings.Contains(out, "truncated:") == fits {
			t.Fatalf("truncation of %d bytes (%d encoded) at %d: %q", len(data), jsonLen(data), limit, out)
		}
		if fits && out != calls.ValidUTF8(string(data)) {
			t.Fatalf("output that fits was altered: %q -> %q", data, out)
		}
		shown, _, _ := strings.Cut(out, "\n[membrane: stdout truncated")
		enc, _ := json.Marshal(shown)
		if len(enc)-2 > limit {
			t.Fatalf("%d bytes on the wire for a limit of %d", len(enc)-2, limit)
		}
	})
}

// FuzzJSONLen checks jsonLen against encoding/json: exact for valid UTF-8,
// and for invalid input an upper bound of the encoding of what the result
// carries, the text made valid (runs of bad bytes become one U+FFFD).
func FuzzJSONLen(f *testing.F) {
	for _, s := range []string{"", "a", "\x00\x01\x1f\x7f", "<>&\"\\\n\t", "\u2028\u2029é✓", "\xff\xfe", "a\xc3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		enc, err := json.Marshal(calls.ValidUTF8(string(s)))
		if err != nil {
			t.Fatal(err)
		}
		got, want := jsonLen(s), len(enc)-2
		if utf8.Valid(s) && got != want || got < want {
			t.Fatalf("jsonLen(%q) = %d, encoding/json writes %d", s, got, want)
		}
		if n := encodedPrefix(s, int64(want)); utf8.Valid(s) && n != len(s) {
			t.Fatalf("encodedPrefix with the whole budget kept %d of %d", n, len(s))
		}
	})
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }
