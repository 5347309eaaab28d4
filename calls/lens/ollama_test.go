package lens

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/ollama"
)

func TestUseModels(t *testing.T) {
	var none Options
	none.UseModels(nil)
	if none.Hosts != nil || none.ModelOf != nil || none.Queues != nil {
		t.Fatal("UseModels(nil) set a model view")
	}
	m, err := ollama.New(ollama.Config{Hosts: []string{"127.0.0.1:1", "127.0.0.1:2"}}, calls.NewRouter(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	var o Options
	o.UseModels(m)
	hs := o.Hosts()
	if len(hs) != 2 || !strings.Contains(hs[0].URL, "127.0.0.1:1") || !strings.Contains(hs[1].URL, "127.0.0.1:2") {
		t.Fatalf("hosts = %+v, want the two configured, in order", hs)
	}
	if hs[0].Up {
		t.Errorf("a host never listed is up: %+v", hs[0])
	}
	if _, ok := o.ModelOf("sh"); ok {
		t.Error("ModelOf found a model behind a tool ollama does not own")
	}
	if q := o.Queues(); len(q) != 0 {
		t.Errorf("queues = %v, want none", q)
	}
}
