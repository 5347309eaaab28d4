package mcp

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/ollama"
)

func TestModelBackends(t *testing.T) {
	if ModelBackends(nil) != nil {
		t.Fatal("ModelBackends(nil) reports backends")
	}
	m, err := ollama.New(ollama.Config{Hosts: []string{"127.0.0.1:1", "127.0.0.1:2"}}, calls.NewRouter(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	bs := ModelBackends(m)()
	if len(bs) != 2 || !strings.Contains(bs[0].URL, "127.0.0.1:1") || !strings.Contains(bs[1].URL, "127.0.0.1:2") {
		t.Fatalf("backends = %+v, want the two configured, in order", bs)
	}
	if bs[0].Up {
		t.Errorf("a host never listed is up: %+v", bs[0])
	}
}
