// Package termimage draws images inline on terminals that have a protocol
// for it: kitty's graphics protocol (kitty, Ghostty) and iTerm2's inline
// images (iTerm2, WezTerm). The escape sequences are made here, from the
// image's bytes in base64 and numbers of our own: nothing a server sent
// reaches the terminal as it is.
package termimage

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Protocol is a way of drawing an image on a terminal.
type Protocol string

const (
	// None draws nothing.
	None Protocol = ""
	// Kitty is kitty's graphics protocol: PNG only.
	Kitty Protocol = "kitty"
	// ITerm2 is iTerm2's inline image protocol: PNG, JPEG, GIF.
	ITerm2 Protocol = "iterm2"
)

// Detect picks the protocol of the terminal the environment describes,
// or None.
func Detect(getenv func(string) string) Protocol {
	term, prog := getenv("TERM"), getenv("TERM_PROGRAM")
	switch {
	case term == "xterm-kitty" || getenv("KITTY_WINDOW_ID") != "" || term == "xterm-ghostty" || prog == "ghostty":
		return Kitty
	case prog == "iTerm.app" || getenv("LC_TERMINAL") == "iTerm2" || prog == "WezTerm":
		return ITerm2
	}
	return None
}

// Supports reports whether p can draw an image of MIME type mt.
func (p Protocol) Supports(mt string) bool {
	switch p {
	case Kitty:
		return mt == "image/png"
	case ITerm2:
		return mt == "image/png" || mt == "image/jpeg" || mt == "image/gif"
	}
	return false
}

// kittyChunk is the most base64 one kitty escape carries.
const kittyChunk = 4096

// Encode returns the escape sequence that draws data (of type mt) with p,
// followed by a newline, or "" when p cannot draw it.
func (p Protocol) Encode(data []byte, mt string) string {
	if !p.Supports(mt) || len(data) == 0 {
		return ""
	}
	b64 := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	switch p {
	case Kitty:
		for i := 0; i < len(b64); i += kittyChunk {
			chunk := b64[i:min(i+kittyChunk, len(b64))]
			more := "0"
			if i+kittyChunk < len(b64) {
				more = "1"
			}
			b.WriteString("\x1b_G")
			if i == 0 {
				b.WriteString("a=T,f=100,q=2,")
			}
			b.WriteString("m=" + more + ";" + chunk + "\x1b\\")
		}
	case ITerm2:
		b.WriteString("\x1b]1337;File=inline=1;size=" + strconv.Itoa(len(data)) + ";preserveAspectRatio=1:" + b64 + "\a")
	}
	b.WriteByte('\n')
	return b.String()
}
