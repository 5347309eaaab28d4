package sandbox

import "unicode/utf8"

// jsonLen is the number of bytes encoding/json (as go-sdk uses it, HTML
// escaping on) writes for the characters of s, without the quotes: a
// control byte, '<', '>', '&', U+2028 and U+2029 take six (\u0001), the
// usual escapes (\n, \", \\) two, and an invalid byte the three of the
// U+FFFD it becomes. It is an upper bound for invalid input, whose runs
// become a single U+FFFD.
func jsonLen(s []byte) int {
	n := 0
	for i := 0; i < len(s); {
		c, w := jsonRune(s[i:])
		n += c
		i += w
	}
	return n
}

// jsonRune returns the encoded length and the width of the first rune of
// s, which is not empty.
func jsonRune(s []byte) (enc, width int) {
	b := s[0]
	if b < utf8.RuneSelf {
		switch {
		case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t' || b == '\b' || b == '\f':
			return 2, 1
		case b < 0x20 || b == '<' || b == '>' || b == '&':
			return 6, 1
		}
		return 1, 1
	}
	r, w := utf8.DecodeRune(s)
	switch {
	case r == utf8.RuneError && w == 1:
		return 3, 1
	case r == '\u2028' || r == '\u2029':
		return 6, w
	}
	return w, w
}

// encodedPrefix returns the length of the longest prefix of s, cut at a
// rune boundary, whose JSON encoding takes at most budget bytes.
func encodedPrefix(s []byte, budget int64) int {
	var n int64
	for i := 0; i < len(s); {
		c, w := jsonRune(s[i:])
		if n+int64(c) > budget {
			return i
		}
		n += int64(c)
		i += w
	}
	return len(s)
}
