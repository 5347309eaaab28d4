// Package termsafe makes text from MCP servers and models safe to print on
// a terminal. Control characters, escape sequences (CSI, OSC, DCS and the
// rest all start with ESC or a C1 control), C1 controls, bytes that are not
// UTF-8 and bidirectional overrides are replaced by visible stand-ins, so
// that a terminal shows them and never acts on them. Printable text, with
// newlines and tabs, passes unchanged.
package termsafe

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// Unsafe reports whether r may not reach a terminal as is: a C0 control
// other than newline and tab, DEL, a C1 control, or a bidirectional
// embedding, override, isolate or mark.
func Unsafe(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == utf8.RuneError:
		return false // decided by the caller: a real U+FFFD is printable
	}
	return false
}

// visible is what an unsafe rune is shown as: a control picture for C0
// controls and DEL (ESC is ␛), else its code point in angle brackets.
func visible(b *strings.Builder, r rune) {
	switch {
	case r < 0x20:
		b.WriteRune(0x2400 + r)
	case r == 0x7f:
		b.WriteRune('␡')
	default:
		fmt.Fprintf(b, "<U+%04X>", r)
	}
}

// String returns s with every unsafe rune (see Unsafe) and every byte that
// is not UTF-8 replaced by a visible stand-in. A string that needs no
// change is returned as is, without copying.
func String(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case Unsafe(r):
			visible(&b, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Line is String for a one-line context (a spinner, a prompt header):
// newlines and tabs are shown as ↵ and a space too.
func Line(s string) string {
	s = String(s)
	if strings.ContainsAny(s, "\n\t") {
		s = strings.NewReplacer("\r\n", "↵", "\n", "↵", "\t", " ").Replace(s)
	}
	return s
}

// firstUnsafe returns the index of the first byte String would change, or
// -1.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n <= 1) || Unsafe(r) {
			return i
		}
		i += n
	}
	return -1
}

// Writer passes what is written to it on to W through String. A rune cut
// in two by the end of one Write is held until the next, so that text
// streamed in pieces is shown the same as when written at once. It is
// safe for concurrent use.
type Writer struct {
	W io.Writer

	mu   sync.Mutex
	hold []byte
}

// Write implements io.Writer; it reports len(p) when W took everything.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := append(w.hold, p...)
	cut := len(buf)
	// Keep back an incomplete rune at the end (at most 3 bytes).
	for k := 1; k <= 3 && k <= len(buf); k++ {
		c := buf[len(buf)-k]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(buf[len(buf)-k:]) {
				cut = len(buf) - k
			}
			break
		}
	}
	w.hold = append([]byte(nil), buf[cut:]...)
	if cut == 0 {
		return len(p), nil
	}
	if _, err := io.WriteString(w.W, String(string(buf[:cut]))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out a held incomplete rune, shown as the bytes it is.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.hold) == 0 {
		return nil
	}
	s := String(string(w.hold))
	w.hold = nil
	_, err := io.WriteString(w.W, s)
	return err
}

// JSON writes the C1 controls and bidi controls that json.Marshal
// leaves raw as \u escapes: the same JSON, safe to print on a terminal.
func JSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x80 && Unsafe(r) {
			if out == nil {
				out = append(make([]byte, 0, len(b)+16), b[:i]...)
			}
			out = fmt.Appendf(out, `\u%04x`, r)
		} else if out != nil {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}
