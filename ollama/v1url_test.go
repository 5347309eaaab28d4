package ollama_test

import (
	"testing"

	"github.com/membrane-mcp/membrane/ollama"
)

func TestOpenAIBaseURL(t *testing.T) {
	t.Setenv("OLLAMA_HOST", "envhost:9999")
	for host, want := range map[string]string{
		"gpu-box:11500":            "http://gpu-box:11500/v1",
		"https://ollama.example/":  "https://ollama.example:443/v1",
		"http://10.0.0.2:11434/ol": "http://10.0.0.2:11434/ol/v1",
		"":                         "http://envhost:9999/v1",
	} {
		if got, err := ollama.OpenAIBaseURL(host); err != nil || got != want {
			t.Errorf("OpenAIBaseURL(%q) = %q, %v; want %q", host, got, err, want)
		}
	}
	if got, err := ollama.OpenAIBaseURL("ftp://x"); err == nil {
		t.Errorf("a bad host gave %q, want an error", got)
	}
}
