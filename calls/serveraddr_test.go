package calls

import "testing"

// TestServerAddress: a model host, as membrane names it (Ollama's base URL,
// an OpenAI-compatible /v1 URL, or host:port), becomes the semantic
// conventions' server.address (a host name or IP, no scheme, no port)
// and server.port.
func TestServerAddress(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		port int
	}{
		{"http://127.0.0.1:11434", "127.0.0.1", 11434},
		{"https://api.example.com/v1", "api.example.com", 443},
		{"http://gpu-box/", "gpu-box", 80},
		{"http://[::1]:11434", "::1", 11434},
		{"127.0.0.1:11434", "127.0.0.1", 11434},
		{"gpu-box", "gpu-box", 0},
	} {
		host, port := ServerAddress(c.in)
		if host != c.host || port != c.port {
			t.Errorf("ServerAddress(%q) = %q, %d; want %q, %d", c.in, host, port, c.host, c.port)
		}
	}
}
