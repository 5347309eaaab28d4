package httpget

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// A BlockedError says that a fetch was refused because of where it would
// have gone: an address that is not on the public internet, a scheme, a
// port or a host the allow-list does not name.
type BlockedError struct {
	// URL is the address that was refused (a redirect hop, perhaps), without
	// its query.
	URL string
	// Addr is the IP address that was refused, when the refusal is about
	// one.
	Addr netip.Addr
	// Reason says why, in words a model can act on.
	Reason string
}

func (e *BlockedError) Error() string {
	if e.Addr.IsValid() {
		return fmt.Sprintf("http_get: refused %s: %s is %s", e.URL, e.Addr, e.Reason)
	}
	return fmt.Sprintf("http_get: refused %s: %s", e.URL, e.Reason)
}

// blockedPrefix is a range of addresses http_get never dials, with the name
// it gives in a refusal.
type blockedPrefix struct {
	p    netip.Prefix
	name string
}

// blocked lists what is refused after DNS resolution. IPv4-mapped IPv6
// addresses are unmapped before the check, and the IPv4 address inside a
// NAT64 or 6to4 address is checked too.
var blocked = func() []blockedPrefix {
	var out []blockedPrefix
	for _, b := range []struct{ cidr, name string }{
		// Named first, so that a refusal says what the address is.
		{"169.254.169.254/32", "a cloud metadata address"},
		{"fd00:ec2::254/128", "a cloud metadata address"},
		{"100.100.100.200/32", "a cloud metadata address"},
		{"0.0.0.0/8", "an unspecified (\"this network\") address"},
		{"10.0.0.0/8", "a private (RFC 1918) address"},
		{"100.64.0.0/10", "a carrier-grade NAT (RFC 6598) address"},
		{"127.0.0.0/8", "a loopback address"},
		{"169.254.0.0/16", "a link-local address"},
		{"172.16.0.0/12", "a private (RFC 1918) address"},
		{"192.0.0.0/24", "an IETF protocol-assignment address"},
		{"192.168.0.0/16", "a private (RFC 1918) address"},
		{"198.18.0.0/15", "a benchmarking-network address"},
		{"224.0.0.0/4", "a multicast address"},
		{"240.0.0.0/4", "a reserved address"},
		{"::/128", "an unspecified address"},
		{"::1/128", "a loopback address"},
		{"::/96", "an IPv4-compatible address"},
		{"64:ff9b:1::/48", "a local-use NAT64 address"},
		{"100::/64", "a discard-only address"},
		{"2001::/32", "a Teredo address"},
		{"fc00::/7", "a unique local (private) address"},
		{"fe80::/10", "a link-local address"},
		{"fec0::/10", "a site-local address"},
		{"ff00::/8", "a multicast address"},
	} {
		out = append(out, blockedPrefix{netip.MustParsePrefix(b.cidr), b.name})
	}
	return out
}()

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// BlockedReason reports why http_get refuses to connect to a, or "" when a
// is a public address it may dial.
func BlockedReason(a netip.Addr) string {
	if !a.IsValid() {
		return "not an IP address"
	}
	if a.Zone() != "" {
		return "an address with a zone"
	}
	a = a.Unmap()
	for _, b := range blocked {
		if b.p.Contains(a) {
			return b.name
		}
	}
	if a.Is6() {
		b := a.As16()
		var inner netip.Addr
		switch {
		case nat64.Contains(a):
			inner = netip.AddrFrom4([4]byte(b[12:16]))
		case sixTo4.Contains(a):
			inner = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if inner.IsValid() {
			if why := BlockedReason(inner); why != "" {
				return why + " inside an IPv6 address"
			}
		}
	}
	return ""
}

// controlDial is the last check before a socket connects: whatever resolved
// the address, the kernel is only asked to connect to a public one.
func controlDial(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{URL: address, Reason: "the dialer was given something that is not an IP address and port"}
	}
	if why := BlockedReason(ap.Addr()); why != "" {
		return &BlockedError{URL: address, Addr: ap.Addr(), Reason: why}
	}
	return nil
}

// parseLegacyIPv4 reads the forms of an IPv4 address that inet_aton(3)
// accepts and URL parsers do not: one to four parts, each decimal, octal
// (leading 0) or hexadecimal (leading 0x), the last filling the remaining
// bytes, as in 2130706433, 0x7f.1 or 0177.0.0.1. Resolvers built on the C
// library turn such a host into an address without a DNS query, so the
// host must be read the same way before it is judged.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base, digits := 10, p
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
			if digits == "" {
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i := range last {
		if vals[i] > 0xff {
			return netip.Addr{}, false
		}
		n |= vals[i] << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
