package httpget

import (
	"strings"
	"testing"
)

// FuzzAllowList checks the URL gate against properties rather than
// examples:
//   - whatever parses is http or https, has no user information, and is
//     not a literal address that BlockedReason refuses;
//   - normalising is idempotent: the URL sent, parsed again, is the same
//     URL and the same target, so what the allow-list judged is what goes
//     out;
//   - a match is justified: the host is the entry's (or a subdomain of a
//     *. entry), the port is the entry's, the path starts with the entry's
//     path on a segment boundary.
func FuzzAllowList(f *testing.F) {
	for _, seed := range [][2]string{
		{"example.com", "https://example.com/a"},
		{"example.com", "https://EXAMPLE.com./a/../b"},
		{"*.example.com", "http://a.b.example.com/"},
		{"*.example.com", "http://example.com/"},
		{"https://go.dev/doc/", "https://go.dev/doc/../admin"},
		{"https://go.dev/doc", "https://go.dev/documents"},
		{"https://go.dev/doc", "https://go.dev/doc%2F..%2Fadmin"},
		{"example.com:8080", "http://example.com:8080/"},
		{"*", "http://[::ffff:127.0.0.1]/"},
		{"*", "http://2130706433/"},
		{"*", "http://user@example.com/"},
		{"*", "file:///etc/passwd"},
		{"bücher.de", "https://xn--bcher-kva.de/"},
		{"example.com", "https://example.com:443/"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, raw string) {
		r, err := parseRule(pattern)
		if err != nil {
			return
		}
		u, tg, err := parseTarget(raw)
		if err != nil {
			return
		}
		if tg.scheme != "http" && tg.scheme != "https" {
			t.Fatalf("scheme %q passed", tg.scheme)
		}
		if u.User != nil {
			t.Fatalf("user information passed: %s", u)
		}
		if tg.ip.IsValid() && BlockedReason(tg.ip) != "" {
			t.Fatalf("blocked literal %s passed", tg.ip)
		}
		sent := u.String()
		u2, tg2, err := parseTarget(sent)
		if err != nil {
			t.Fatalf("the URL sent, %q, does not parse again: %v", sent, err)
		}
		if *tg2 != *tg || u2.String() != sent {
			t.Fatalf("normalising is not idempotent: %q -> %+v, again %q -> %+v", raw, *tg, u2, *tg2)
		}
		if !r.match(tg) {
			return
		}
		if r.match(tg2) != true {
			t.Fatal("match changed after normalising again")
		}
		switch {
		case r.all:
			if tg.port != "" {
				t.Fatalf("* matched port %s", tg.port)
			}
			return
		case r.wild:
			if !strings.HasSuffix(tg.host, "."+r.host) {
				t.Fatalf("%q matched host %q", pattern, tg.host)
			}
		default:
			if tg.host != r.host {
				t.Fatalf("%q matched host %q", pattern, tg.host)
			}
		}
		if tg.port != r.port {
			t.Fatalf("%q matched port %q", pattern, tg.port)
		}
		if r.path != "" {
			if !strings.HasPrefix(tg.path, r.path) {
				t.Fatalf("%q matched path %q", pattern, tg.path)
			}
			if len(tg.path) > len(r.path) && !strings.HasSuffix(r.path, "/") && tg.path[len(r.path)] != '/' {
				t.Fatalf("%q matched %q off a segment boundary", pattern, tg.path)
			}
			if strings.Contains(tg.path, "/../") || strings.HasSuffix(tg.path, "/..") {
				t.Fatalf("dot segments survived in %q", tg.path)
			}
		}
	})
}
