package calls

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHTMLPage(t *testing.T) {
	for _, tt := range []struct {
		in, title string
		page      bool
	}{
		{"<!DOCTYPE HTML>\n<html><head><title> Error response </title></head></html>", "Error response", true},
		{"  <html><TITLE>Bad Gateway</TITLE></html>", "Bad Gateway", true},
		{"<html><body>no title</body></html>", "", true},
		{"<html><title>İ</title>", "", true}, // lowering moved bytes: no title, still a page
		{`{"error":"<html>"}`, "", false},
		{"404 page not found", "", false},
	} {
		title, page := HTMLPage(tt.in)
		if title != tt.title || page != tt.page {
			t.Errorf("HTMLPage(%q) = %q, %v; want %q, %v", tt.in, title, page, tt.title, tt.page)
		}
	}
}

// FuzzHTMLPage: a page is what starts with <html or <!doctype html, and a
// title is valid UTF-8 text of the body.
func FuzzHTMLPage(f *testing.F) {
	f.Add("<html><title>x</title>")
	f.Add("<!doctype html><TITLE>\xff</title>")
	f.Fuzz(func(t *testing.T, body string) {
		title, page := HTMLPage(body)
		low := strings.ToLower(strings.TrimSpace(body))
		if page != (strings.HasPrefix(low, "<!doctype html") || strings.HasPrefix(low, "<html")) {
			t.Fatalf("HTMLPage(%q): page %v", body, page)
		}
		if !utf8.ValidString(title) || (!page && title != "") || strings.Contains(strings.ToLower(title), "</title>") {
			t.Fatalf("HTMLPage(%q): title %q", body, title)
		}
	})
}
