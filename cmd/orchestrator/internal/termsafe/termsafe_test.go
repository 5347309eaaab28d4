package termsafe

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// dangerous reports the first byte or rune of s that a terminal could act
// on: ESC, any C0 control but newline and tab, DEL, a C1 control (as a
// raw byte or encoded), or a bidi control.
func dangerous(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("output is not UTF-8: %q", s)
	}
	for i, r := range s {
		if Unsafe(r) {
			t.Fatalf("output keeps %U at %d: %q", r, i, s)
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			t.Fatalf("output keeps ESC at %d: %q", i, s)
		}
	}
}

// printable is text that must pass unchanged.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || Unsafe(r) || !(unicode.IsPrint(r) || r == '\n' || r == '\t') {
			return false
		}
	}
	return utf8.ValidString(s)
}

var corpus = []struct{ name, in, want string }{
	{"plain", "hello, wörld ✓ 你好\n\tnext", "hello, wörld ✓ 你好\n\tnext"},
	{"osc52 clipboard", "\x1b]52;c;cm0gLXJmIH4=\x07", "␛]52;c;cm0gLXJmIH4=␇"},
	{"osc0 title", "\x1b]0;pwned\x1b\\", "␛]0;pwned␛\\"},
	{"csi cursor and forged text", "\x1b[1A\x1b[2K✓ all checks passed", "␛[1A␛[2K✓ all checks passed"},
	{"screen clear", "\x1b[2J\x1b[H", "␛[2J␛[H"},
	{"dcs", "\x1bP1$r\x1b\\", "␛P1$r␛\\"},
	{"c1 csi encoded", "a\u009b2Jb", "a<U+009B>2Jb"},
	{"c1 raw byte", "a\x9b2Jb", `a\x9b2Jb`},
	{"bidi override", "safe\u202egnp.exe", "safe<U+202E>gnp.exe"},
	{"bidi isolate", "\u2066x\u2069", "<U+2066>x<U+2069>"},
	{"carriage return", "ok\rforged", "ok␍forged"},
	{"backspace and bell", "a\bb\a", "a␈b␇"},
	{"nul and del", "\x00\x7f", "␀␡"},
}

func TestString(t *testing.T) {
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			got := String(c.in)
			if got != c.want {
				t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
			}
			dangerous(t, got)
		})
	}
}

func TestLine(t *testing.T) {
	if got := Line("a\nb\tc\x1b[2J"); got != "a↵b c␛[2J" {
		t.Errorf("Line = %q", got)
	}
}

// The writer shows a stream the same however it is cut.
func TestWriterSplits(t *testing.T) {
	in := "héllo ✓ \x1b[2J 你好 \u202e end \xff"
	want := String(in)
	for cut := 0; cut <= len(in); cut++ {
		var b bytes.Buffer
		w := &Writer{W: &b}
		w.Write([]byte(in[:cut]))
		w.Write([]byte(in[cut:]))
		w.Flush()
		if b.String() != want {
			t.Fatalf("cut at %d: %q, want %q", cut, b.String(), want)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, c := range corpus {
		f.Add(c.in)
	}
	f.Add("\xe2\x80")
	f.Fuzz(func(t *testing.T, in string) {
		out := String(in)
		dangerous(t, out)
		if printable(in) && out != in {
			t.Fatalf("printable %q changed to %q", in, out)
		}
		if String(out) != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, String(out))
		}
		// Streamed in two pieces, the result is safe too.
		var b bytes.Buffer
		w := &Writer{W: &b}
		half := len(in) / 2
		w.Write([]byte(in[:half]))
		w.Write([]byte(in[half:]))
		w.Flush()
		dangerous(t, b.String())
		if !strings.Contains(in, "\xff") && utf8.ValidString(in) && b.String() != out {
			t.Fatalf("streamed %q = %q, at once %q", in, b.String(), out)
		}
	})
}

func BenchmarkString(b *testing.B) {
	s := strings.Repeat("a plain tool description, with ünïcode ✓ and no escapes. ", 20)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		String(s)
	}
}
