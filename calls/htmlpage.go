package calls

import "strings"

// HTMLPage reports whether an error reply's body is a web page (a web
// server's or a proxy's error page, where an API's JSON was expected), and
// its title, trimmed and valid UTF-8 ("" when it has none). A message
// names such a page by its title rather than show its markup.
func HTMLPage(body string) (title string, page bool) {
	s := strings.TrimSpace(body)
	low := strings.ToLower(s)
	if !strings.HasPrefix(low, "<!doctype html") && !strings.HasPrefix(low, "<html") {
		return "", false
	}
	// low indexes s only where lowering kept every byte in place.
	if len(low) != len(s) {
		return "", true
	}
	i := strings.Index(low, "<title>")
	if i < 0 {
		return "", true
	}
	j := strings.Index(low[i:], "</title>")
	if j <= 0 {
		return "", true
	}
	return ValidUTF8(strings.TrimSpace(s[i+len("<title>") : i+j])), true
}
