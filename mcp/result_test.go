package mcp

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestBoundResult(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	ctrl := strings.Repeat("\x01", 40<<10) // 6 bytes each once encoded
	for _, tc := range []struct {
		name string
		res  *sdk.CallToolResult
		same bool   // returned unchanged
		want string // in the text when shortened
	}{
		{"small passes", &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "hi"}}}, true, ""},
		{"just under passes", &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: strings.Repeat("a", limit-100)}}}, true, ""},
		{"structured copy dropped first", &sdk.CallToolResult{
			Content:           []sdk.Content{&sdk.TextContent{Text: strings.Repeat("a", 40<<10)}},
			StructuredContent: map[string]any{"stdout": strings.Repeat("a", 40<<10)},
		}, false, ""},
		{"escaped text cut", &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: ctrl}}}, false, "was cut from"},
		{"two texts cut", &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: ctrl}, &sdk.TextContent{Text: "é" + ctrl + "é"}}}, false, "was cut from"},
		{"image dropped", &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "caption"}, &sdk.ImageContent{Data: make([]byte, limit), MIMEType: "image/png"}}}, false, "non-text parts"},
		{"marker only room", &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: strings.Repeat("<", limit)}}}, false, "was cut from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := boundResult(tc.res, limit)
			if (out == tc.res) != tc.same {
				t.Fatalf("returned the same result: %v, want %v", out == tc.res, tc.same)
			}
			if n := encodedSize(out); n > limit {
				t.Errorf("encoded size %d, over the limit %d", n, limit)
			}
			var text strings.Builder
			for _, c := range out.Content {
				if tc, ok := c.(*sdk.TextContent); ok {
					if !utf8.ValidString(tc.Text) {
						t.Errorf("cut text is not valid UTF-8")
					}
					text.WriteString(tc.Text)
				}
			}
			if !strings.Contains(text.String(), tc.want) {
				t.Errorf("text %.200q does not say %q", text.String(), tc.want)
			}
			if !tc.same && out.IsError != tc.res.IsError {
				t.Errorf("IsError changed from %v to %v", tc.res.IsError, out.IsError)
			}
		})
	}
	// A bound that cannot hold even the marker: a tool error.
	out := boundResult(&sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: ctrl}}}, 200)
	if !out.IsError || !strings.Contains(out.Content[0].(*sdk.TextContent).Text, "could not be shortened") {
		t.Errorf("tiny limit: %+v", out)
	}
	// No bound at all.
	if in := (&sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: ctrl}}}); boundResult(in, -1) != in {
		t.Error("a negative limit changed the result")
	}
}

// FuzzBoundResult: whatever the texts, a shortened result encodes within
// the limit, stays valid UTF-8, and a result that fits is left alone.
func FuzzBoundResult(f *testing.F) {
	f.Add("hello", "\x01\x02<>&\"\\", 300, true)
	f.Add(strings.Repeat("\u2028é", 100), "\xff\xfe", 500, false)
	f.Fuzz(func(t *testing.T, a, b string, limit int, structured bool) {
		limit = 300 + abs(limit)%4000
		a = strings.Repeat(a, 1+4000/max(1, len(a)))
		res := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: a}, &sdk.TextContent{Text: b}}}
		if structured {
			res.StructuredContent = map[string]any{"a": a}
		}
		before := encodedSize(res)
		out := boundResult(res, limit)
		if before <= limit && out != res {
			t.Fatalf("a result of %d bytes under %d was changed", before, limit)
		}
		if n := encodedSize(out); n > limit {
			t.Fatalf("encoded %d bytes, limit %d", n, limit)
		}
		b2, _ := json.Marshal(out)
		var back sdk.CallToolResult
		if err := json.Unmarshal(b2, &back); err != nil {
			t.Fatalf("does not decode: %v", err)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if -n < 0 {
			return 0
		}
		return -n
	}
	return n
}

func TestEscapedLenMatchesEncoding(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "abc", "\x00\x1f\n\t\"\\", "<>&", "\u2028\u2029", "é中", "\xff\xfe", "a\xc3"} {
		b, _ := json.Marshal(s)
		if got := escapedLen(s); got < len(b) {
			t.Errorf("escapedLen(%q) = %d, below the real %d", s, got, len(b))
		}
	}
}
