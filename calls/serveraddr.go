package calls

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ServerAddress splits where a server is, as membrane names it (a base URL
// such as http://127.0.0.1:11434, or host:port), into OpenTelemetry's
// server.address, a bare host name or IP, and server.port (the scheme's
// when the URL gives none; 0 when unknown).
func ServerAddress(h string) (string, int) {
	if h == "" {
		return "", 0
	}
	if strings.Contains(h, "://") {
		u, err := url.Parse(h)
		if err != nil || u.Hostname() == "" {
			return h, 0
		}
		port, _ := strconv.Atoi(u.Port())
		if port == 0 {
			switch u.Scheme {
			case "http":
				port = 80
			case "https":
				port = 443
			}
		}
		return u.Hostname(), port
	}
	if host, p, err := net.SplitHostPort(h); err == nil {
		port, _ := strconv.Atoi(p)
		return host, port
	}
	return h, 0
}
