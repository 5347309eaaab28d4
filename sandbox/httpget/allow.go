package httpget

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// maxURLLen caps the URL a model may ask for.
const maxURLLen = 4096

// A rule is one allow-list entry, parsed.
type rule struct {
	raw    string
	all    bool   // "*": every public host, on the default ports
	host   string // ASCII, lower case; for wild, the parent domain
	wild   bool   // "*.example.com": any subdomain, not the domain itself
	scheme string // "" means http or https
	port   string // "" means the scheme's default port only
	path   string // "" means any path; else a path prefix on a segment boundary
}

// target is a URL as the allow-list sees it, after normalisation.
type target struct {
	scheme string
	host   string // ASCII, lower case, no brackets
	port   string // "" for the scheme's default port
	path   string // cleaned
	ip     netip.Addr
}

// parseRule reads one allow-list entry: "*", a host ("docs.python.org"),
// a host with a port ("example.com:8080"), any subdomain
// ("*.example.com"), or a URL prefix ("https://go.dev/doc/").
func parseRule(s string) (rule, error) {
	s = strings.TrimSpace(s)
	r := rule{raw: s}
	switch {
	case s == "":
		return r, errors.New("empty entry")
	case s == "*":
		r.all = true
		return r, nil
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil {
			return r, err
		}
		t, err := normalize(u)
		if err != nil {
			return r, err
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return r, errors.New("a URL prefix may not have a query or fragment")
		}
		r.scheme, r.host, r.port = t.scheme, t.host, t.port
		if t.path != "/" {
			r.path = t.path
		}
		return r, nil
	case strings.ContainsAny(s, "/?#@"):
		return r, fmt.Errorf("not a host name; write a URL prefix with its scheme, such as https://%s", s)
	}
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return r, fmt.Errorf("port %q must be a number from 1 to 65535", p)
		}
		host, r.port = h, p
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		r.wild, host = true, rest
	}
	h, _, err := normalizeHost(host)
	if err != nil {
		return r, err
	}
	r.host = h
	return r, nil
}

// match reports whether the rule lets t be fetched.
func (r *rule) match(t *target) bool {
	if r.all {
		return t.port == ""
	}
	if r.scheme != "" && r.scheme != t.scheme {
		return false
	}
	if r.wild {
		if !strings.HasSuffix(t.host, "."+r.host) {
			return false
		}
	} else if t.host != r.host {
		return false
	}
	if t.port != r.port {
		return false
	}
	if r.path == "" || t.path == r.path {
		return true
	}
	return strings.HasPrefix(t.path, r.path) &&
		(strings.HasSuffix(r.path, "/") || t.path[len(r.path)] == '/')
}

// parseTarget checks and normalises a URL a model asked for: http or https
// only, no user information, a host in canonical form (IDNA, lower case,
// dotted-decimal IPv4), a cleaned path. It rewrites u to what will be sent,
// so that what the allow-list judged is what goes out.
func parseTarget(raw string) (*url.URL, *target, error) {
	if len(raw) > maxURLLen {
		return nil, nil, &BlockedError{URL: raw[:64] + "…", Reason: fmt.Sprintf("the URL is longer than %d bytes", maxURLLen)}
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, nil, &BlockedError{URL: shown(raw), Reason: "not a valid URL: " + err.Error()}
	}
	t, err := normalize(u)
	if err != nil {
		var be *BlockedError
		if errors.As(err, &be) {
			return nil, nil, be
		}
		return nil, nil, &BlockedError{URL: shown(raw), Reason: err.Error()}
	}
	return u, t, nil
}

// normalize checks u and rewrites it in canonical form.
func normalize(u *url.URL) (*target, error) {
	t := &target{scheme: strings.ToLower(u.Scheme)}
	switch t.scheme {
	case "http", "https":
	case "":
		return nil, errors.New("the URL has no scheme; write it in full, such as https://example.com/")
	default:
		return nil, fmt.Errorf("only http and https URLs can be fetched, not %s URLs", t.scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, errors.New("the URL has no host")
	}
	if u.User != nil {
		return nil, errors.New("user information (user:password@) in a URL is not allowed; credentials come only from the server's configuration")
	}
	host, ip, err := normalizeHost(u.Hostname())
	if err != nil {
		return nil, err
	}
	t.host, t.ip = host, ip
	if ip.IsValid() {
		if why := BlockedReason(ip); why != "" {
			return nil, &BlockedError{URL: t.scheme + "://" + u.Host, Addr: ip, Reason: why}
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q must be a number from 1 to 65535", p)
		}
		if !(t.scheme == "http" && n == 80 || t.scheme == "https" && n == 443) {
			t.port = strconv.Itoa(n)
		}
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	clean := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	t.path = clean
	u.Scheme = t.scheme
	hostport := host
	if ip.Is6() {
		hostport = "[" + host + "]"
	}
	if t.port != "" {
		hostport += ":" + t.port
	}
	u.Host = hostport
	u.Path, u.RawPath = clean, ""
	u.Fragment, u.RawFragment = "", ""
	return t, nil
}

// normalizeHost returns host in canonical form, and the address when it is
// an IP literal. Numeric forms that are not dotted decimal (2130706433,
// 0x7f.1, 0177.0.0.1) are refused: a C resolver would read them as an
// address, and a loopback one is named as such.
func normalizeHost(host string) (string, netip.Addr, error) {
	if host == "" {
		return "", netip.Addr{}, errors.New("the URL has no host")
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return "", netip.Addr{}, fmt.Errorf("host %q is not a valid IPv6 address", host)
		}
		if a.Zone() != "" {
			return "", netip.Addr{}, &BlockedError{URL: host, Addr: a, Reason: BlockedReason(a)}
		}
		if a.Is4In6() {
			a4 := a.Unmap()
			if why := BlockedReason(a4); why != "" {
				return "", netip.Addr{}, &BlockedError{URL: host, Addr: a, Reason: why + " (an IPv4-mapped IPv6 address)"}
			}
			return a4.String(), a4, nil
		}
		return a.String(), a, nil
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(h); err == nil && a.Is4() && a.String() == h {
		return h, a, nil
	}
	if a, ok := parseLegacyIPv4(h); ok {
		if why := BlockedReason(a); why != "" {
			return "", netip.Addr{}, &BlockedError{URL: host, Addr: a, Reason: why + fmt.Sprintf(" (%s is another way to write it)", host)}
		}
		return "", netip.Addr{}, fmt.Errorf("host %q is a number; write the IP address as four decimal parts, %s", host, a)
	}
	ascii, err := idna.Lookup.ToASCII(h)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("host %q is not a valid domain name: %v", host, err)
	}
	if ascii == "" || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", netip.Addr{}, fmt.Errorf("host %q is not a valid domain name", host)
	}
	return ascii, netip.Addr{}, nil
}

// shown is a URL as an error shows it: short, without its query.
func shown(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if len(raw) > 200 {
		raw = raw[:200] + "…"
	}
	return raw
}
