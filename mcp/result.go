package mcp

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultMaxResultBytes bounds the encoded size of one tool result when
// ServerOptions.MaxResultBytes is zero. It is half of the 16 MiB line that
// go-sdk's CommandTransport (and so many MCP clients, the bundled
// orchestrator among them) accepts before it drops the whole session, which
// leaves room for the JSON-RPC envelope and for clients with smaller
// buffers.
const DefaultMaxResultBytes = 8 << 20

// cutMarker ends a text content that boundResult shortened.
const cutMarker = "\n[membrane: this result was cut from %d to %d encoded bytes to stay under the %d-byte limit of one MCP message; ask for less output, or write it to a file and read it in parts]"

// boundResult makes sure res encodes to at most limit bytes of JSON. A
// result that fits is returned as it is. One that does not loses, in turn
// until it fits: its structured content (a copy of what the text says, for
// the tools here), its images, and then the tail of its longest texts,
// which end with a marker saying what happened. If even that cannot fit, a
// tool error that says so replaces it.
func boundResult(res *sdk.CallToolResult, limit int) *sdk.CallToolResult {
	if limit <= 0 || upperBound(res) <= limit {
		return res
	}
	size := measure(res)
	if size <= limit {
		return res
	}
	orig := size
	out := *res
	out.Content = append([]sdk.Content(nil), res.Content...)
	if out.StructuredContent != nil {
		out.StructuredContent = nil
		if size = measure(&out); size <= limit {
			return &out
		}
	}
	dropped := 0
	for i, c := range out.Content {
		if _, ok := c.(*sdk.TextContent); !ok {
			out.Content[i] = nil
			dropped++
		}
	}
	if dropped > 0 {
		kept := out.Content[:0]
		for _, c := range out.Content {
			if c != nil {
				kept = append(kept, c)
			}
		}
		out.Content = append(kept, &sdk.TextContent{Text: fmt.Sprintf("[membrane: %d non-text parts of this result were left out: the result was %d encoded bytes, over the %d-byte limit of one MCP message]", dropped, orig, limit)})
		if size = measure(&out); size <= limit {
			return &out
		}
	}
	// Cut the longest text to what the budget leaves it, and again (the
	// next longest) until the whole fits.
	markerLen := len(fmt.Sprintf(cutMarker, orig, limit, limit)) + 2
	for range len(out.Content) {
		i, longest := -1, 0
		for j, c := range out.Content {
			if t, ok := c.(*sdk.TextContent); ok && len(t.Text) > longest {
				i, longest = j, len(t.Text)
			}
		}
		if i < 0 || longest <= markerLen {
			break
		}
		text := out.Content[i].(*sdk.TextContent).Text
		others := size - escapedLen(text)
		keep := prefixWithin(text, limit-others-2*markerLen)
		out.Content[i] = &sdk.TextContent{Text: text[:keep] + fmt.Sprintf(cutMarker, orig, limit, limit)}
		if size = measure(&out); size <= limit {
			return &out
		}
	}
	return toolError(fmt.Sprintf("the result of this call was %d encoded bytes, over the %d-byte limit of one MCP message, and could not be shortened; ask for less output", orig, limit))
}

// escapeCost is how many bytes json.Marshal writes for the rune r that
// takes n bytes of a string.
func escapeCost(r rune, n int) int {
	switch {
	case r == utf8.RuneError && n == 1:
		return 6 // \ufffd
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return 6
	}
	return n
}

// escapedLen is the encoded size of s as a JSON string, quotes included.
func escapedLen(s string) int {
	n := 2
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		n += escapeCost(r, size)
		s = s[size:]
	}
	return n
}

// prefixWithin returns the length of the longest prefix of s, cut on a
// rune boundary, whose encoded size is at most budget bytes.
func prefixWithin(s string, budget int) int {
	used, i := 2, 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		c := escapeCost(r, size)
		if used+c > budget {
			break
		}
		used += c
		i += size
	}
	return i
}

// upperBound is a cheap bound on the encoded size of res: every text byte
// escaped to six bytes, images in base64, plus the structured content as
// encoded.
func upperBound(res *sdk.CallToolResult) int {
	n := 256
	for _, c := range res.Content {
		switch c := c.(type) {
		case *sdk.TextContent:
			n += 6*len(c.Text) + 64
		case *sdk.ImageContent:
			n += (len(c.Data)+2)/3*4 + len(c.MIMEType) + 64
		case *sdk.ResourceLink:
			n += 6*(len(c.URI)+len(c.Name)+len(c.MIMEType)) + 128
		default:
			return int(^uint(0) >> 1) // unknown: measure it
		}
	}
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return int(^uint(0) >> 1)
		}
		n += len(b)
	}
	return n
}

// measure is encodedSize without encoding the texts: each is counted by
// escapedLen, which is what encoding/json writes for it, or more.
func measure(res *sdk.CallToolResult) int {
	skel := *res
	skel.Content = make([]sdk.Content, len(res.Content))
	texts := 0
	for i, c := range res.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			cp := *t
			cp.Text = ""
			skel.Content[i] = &cp
			texts += escapedLen(t.Text) - 2
			continue
		}
		skel.Content[i] = c
	}
	return encodedSize(&skel) + texts
}

// encodedSize is the size of res as JSON, or a huge number when it does not
// encode (the SDK then fails the call itself).
func encodedSize(res *sdk.CallToolResult) int {
	b, err := json.Marshal(res)
	if err != nil {
		return int(^uint(0) >> 1)
	}
	return len(b)
}
