package ollama

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

func TestParseModelTools(t *testing.T) {
	for in, want := range map[string]ModelTools{"": ModelToolsPerModel, "per-model": ModelToolsPerModel, "generic": ModelToolsGeneric, " off ": ModelToolsOff} {
		if got, err := ParseModelTools(in); err != nil || got != want {
			t.Errorf("ParseModelTools(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseModelTools("all"); err == nil {
		t.Error("all accepted")
	}
	if _, err := New(Config{ModelTools: "some"}, calls.NewRouter(nil), nil); err == nil {
		t.Error("New took a bad mode")
	}
}

// TestGenericEnumIsStable: the enum is sorted, so a refresh that finds the
// same models (in any order) changes nothing and sends no list_changed.
func TestGenericEnumIsStable(t *testing.T) {
	f := newFake(t, chatModelFake("b:1b"), chatModelFake("a:1b"), embedModelFake("e:latest", 4))
	m, r := newModels(t, Config{Hosts: []string{f.URL}, ModelTools: ModelToolsGeneric})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(r), " "); got != "ollama_chat ollama_embed ollama_models" {
		t.Fatalf("tools = %s", got)
	}
	c, _ := r.Lookup(ToolChat)
	if !strings.Contains(string(c.InputSchema), `"enum":["a:1b","b:1b"]`) {
		t.Fatalf("chat schema: %s", c.InputSchema)
	}
	var changes atomic.Int32
	first := true
	defer r.Subscribe(func(calls.Change) {
		if first {
			first = false // the snapshot Subscribe sends
			return
		}
		changes.Add(1)
	})()
	f.setModels(embedModelFake("e:latest", 4), chatModelFake("a:1b"), chatModelFake("b:1b"))
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := changes.Load(); n != 0 {
		t.Fatalf("%d changes for the same models", n)
	}
	// The allow control: a model gone is one change.
	f.setModels(embedModelFake("e:latest", 4), chatModelFake("a:1b"))
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := changes.Load(); n != 1 {
		t.Fatalf("%d changes for a model gone, want 1", n)
	}
}

// TestToolListSize50Models reports the size of tools/list, in bytes, for 50
// models (40 chat, 10 embedding) under per-model and generic, through a
// real MCP client; the README quotes it. Generic must be much smaller.
func TestToolListSize50Models(t *testing.T) {
	ms := make([]fakeModel, 50)
	for i := range ms {
		if i%5 == 4 {
			ms[i] = embedModelFake(fmt.Sprintf("embed-%02d:latest", i), 768)
		} else {
			ms[i] = chatModelFake(fmt.Sprintf("qwen3-%02d:8b", i))
		}
	}
	f := newFake(t, ms...)
	size := map[ModelTools]int{}
	for _, mode := range []ModelTools{ModelToolsPerModel, ModelToolsGeneric} {
		m, r := newModels(t, Config{Hosts: []string{f.URL}, ModelTools: mode})
		if err := m.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		cs := mcptest.Connect(t, r, nil)
		res, err := cs.ListTools(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res)
		size[mode] = len(b)
		t.Logf("tools/list for 50 models, %s: %d tools, %d bytes", mode, len(res.Tools), len(b))
		if want := map[ModelTools]int{ModelToolsPerModel: 53, ModelToolsGeneric: 3}[mode]; len(res.Tools) != want {
			t.Fatalf("%s: %d tools, want %d", mode, len(res.Tools), want)
		}
	}
	if size[ModelToolsGeneric]*5 > size[ModelToolsPerModel] {
		t.Fatalf("generic is %d bytes, per-model %d: not much smaller", size[ModelToolsGeneric], size[ModelToolsPerModel])
	}
}
