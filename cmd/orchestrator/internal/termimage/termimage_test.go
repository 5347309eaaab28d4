package termimage

import (
	"encoding/base64"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want Protocol
	}{
		{map[string]string{"TERM": "xterm-kitty"}, Kitty},
		{map[string]string{"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, Kitty},
		{map[string]string{"TERM_PROGRAM": "iTerm.app"}, ITerm2},
		{map[string]string{"LC_TERMINAL": "iTerm2"}, ITerm2},
		{map[string]string{"TERM": "xterm-256color"}, None},
		{map[string]string{"TERM": "dumb"}, None},
		{nil, None},
	} {
		if got := Detect(env(c.env)); got != c.want {
			t.Errorf("Detect(%v) = %q, want %q", c.env, got, c.want)
		}
	}
}

// payload strips p's escape framing from s and checks that what is left
// is base64 only: the escapes are ours, the rest cannot act on a terminal.
func payload(t *testing.T, p Protocol, s string) []byte {
	t.Helper()
	var b64 strings.Builder
	switch p {
	case Kitty:
		rest := strings.TrimSuffix(s, "\n")
		for i := 0; rest != ""; i++ {
			head := "\x1b_G"
			if i == 0 {
				head += "a=T,f=100,q=2,"
			}
			if !strings.HasPrefix(rest, head+"m=") {
				t.Fatalf("chunk %d does not start as kitty's: %q", i, rest[:min(len(rest), 40)])
			}
			rest = rest[len(head)+2:]
			end := strings.Index(rest, "\x1b\\")
			if end < 0 {
				t.Fatalf("chunk %d is not terminated", i)
			}
			more, data, _ := strings.Cut(rest[:end], ";")
			last := len(rest) == end+2
			if (more == "0") != last {
				t.Fatalf("chunk %d: m=%s, last=%v", i, more, last)
			}
			if len(data) > kittyChunk {
				t.Fatalf("chunk %d holds %d bytes, over %d", i, len(data), kittyChunk)
			}
			b64.WriteString(data)
			rest = rest[end+2:]
		}
	case ITerm2:
		rest, ok := strings.CutPrefix(s, "\x1b]1337;File=inline=1;size=")
		if !ok || !strings.HasSuffix(rest, "\a\n") {
			t.Fatalf("not iTerm2's framing: %q", s[:min(len(s), 60)])
		}
		_, data, _ := strings.Cut(strings.TrimSuffix(rest, "\a\n"), ":")
		b64.WriteString(data)
	}
	for _, r := range b64.String() {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", r) {
			t.Fatalf("a byte outside base64 in the payload: %q", r)
		}
	}
	out, err := base64.StdEncoding.DecodeString(b64.String())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEncodeCarriesTheBytesAndNothingElse(t *testing.T) {
	// Bytes a hostile server might send: escapes, BEL, ST, newlines.
	data := []byte("\x89PNG\r\n\x1a\n\x1b]52;c;evil\a\x1b\\\x1b[2J" + strings.Repeat("\x1b_Gx", 3000))
	for _, p := range []Protocol{Kitty, ITerm2} {
		s := p.Encode(data, "image/png")
		if got := payload(t, p, s); string(got) != string(data) {
			t.Errorf("%s: the payload is not the image", p)
		}
		if p == Kitty && strings.Count(s, "\x1b_G") < 3 {
			t.Errorf("kitty: a large image was not cut in chunks")
		}
	}
	if s := Kitty.Encode(data, "image/jpeg"); s != "" {
		t.Errorf("kitty drew a JPEG")
	}
	if s := ITerm2.Encode(data, "image/svg+xml"); s != "" {
		t.Errorf("iTerm2 drew an SVG")
	}
	if s := None.Encode(data, "image/png"); s != "" {
		t.Errorf("None drew")
	}
}
