package metrics

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/ollama"
)

func TestModelOptions(t *testing.T) {
	if o := ModelOptions(nil); o.Hosts != nil || o.Queues != nil {
		t.Fatal("ModelOptions(nil) exports hosts")
	}
	m, err := ollama.New(ollama.Config{Hosts: []string{"127.0.0.1:1", "127.0.0.1:2"}}, calls.NewRouter(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := ModelOptions(m)
	hs := o.Hosts()
	if len(hs) != 2 || !strings.Contains(hs[0].URL, "127.0.0.1:1") || !strings.Contains(hs[1].URL, "127.0.0.1:2") {
		t.Fatalf("hosts = %+v, want the two configured, in order", hs)
	}
	if hs[0].Up || hs[0].Models != 0 {
		t.Errorf("a host never listed: %+v", hs[0])
	}
}
