package sandbox

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var argSeeds = []string{
	`{"cmd":"echo hi"}`, `{"cmd":"true","timeout_s":1.5,"stdin":"x"}`, `{}`, `null`, ``,
	`{"cmd":"a\u0000b"}`, `{"cmd":1}`, `{"cmd":"x","extra":true}`, `{"cmd":"x"} {}`,
	`{"code":"print(1)","timeout_s":-1}`, `{"code":"print(1)","timeout_s":1e308}`, `[1,2]`,
	`{"cmd":"x","Cmd":"y"}`, `{"cmd":"x","cmd":"y"}`, `{"cmſ":"x"}`, "{\"cmd\":\"\xff\"}",
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
		checkTimeout(t, s, a.runArgs)
	})
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

// FuzzCapture checks the output capture: valid UTF-8 always, never more than
// the limit plus the marker, and a marker exactly when bytes were dropped.
func FuzzCapture(f *testing.F) {
	f.Add([]byte("hello"), 3)
	f.Add([]byte("\xff\x00\x1b[2J"), 100)
	f.Add([]byte("héllo"), 2)
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
		if c.truncated() != (len(data) > limit) || strings.Contains(out, "truncated:") != (len(data) > limit) {
			t.Fatalf("truncation of %d bytes at %d: %q", len(data), limit, out)
		}
		if len(c.buf) > limit {
			t.Fatalf("kept %d bytes over the limit %d", len(c.buf), limit)
		}
	})
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }
