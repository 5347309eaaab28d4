package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/policy"
)

func routerWith(t *testing.T, names ...string) *calls.Router {
	t.Helper()
	r := calls.NewRouter(&calls.RouterOptions{DefaultConcurrency: -1})
	for _, n := range names {
		err := r.Add(calls.Call{Name: n, Kind: calls.KindTool, InputSchema: json.RawMessage(`{"type":"object"}`),
			Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil })})
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func offeredNames(o offered) []string {
	var out []string
	for _, c := range o.List() {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

func TestSelectTools(t *testing.T) {
	r := routerWith(t, "sh", "python_run", "ollama_chat", "ollama_embed", "ollama_qwen3")
	for _, tc := range []struct {
		include, exclude []string
		want             []string
	}{
		{nil, nil, []string{"ollama_chat", "ollama_embed", "ollama_qwen3", "python_run", "sh"}},
		{[]string{"ollama_*"}, nil, []string{"ollama_chat", "ollama_embed", "ollama_qwen3"}},
		{[]string{"ollama_*", "sh"}, []string{"ollama_embed"}, []string{"ollama_chat", "ollama_qwen3", "sh"}},
		{nil, []string{"sh", "python_run"}, []string{"ollama_chat", "ollama_embed", "ollama_qwen3"}},
	} {
		o, err := selectTools(r, tc.include, tc.exclude)
		if err != nil {
			t.Fatalf("%v -%v: %v", tc.include, tc.exclude, err)
		}
		if got := offeredNames(o); !slices.Equal(got, tc.want) || o.Len() != len(tc.want) {
			t.Errorf("%v -%v: offered %v (Len %d), want %v", tc.include, tc.exclude, got, o.Len(), tc.want)
		}
		if v, ok := o.(*policy.View); ok {
			// A tool left out cannot be called either.
			if !slices.Contains(tc.want, "python_run") {
				if _, err := v.Call(t.Context(), "python_run", &calls.Request{}); err == nil {
					t.Errorf("%v -%v: python_run callable though not offered", tc.include, tc.exclude)
				}
			}
			v.Close()
		} else if len(tc.include)+len(tc.exclude) > 0 {
			t.Errorf("%v -%v: no view", tc.include, tc.exclude)
		}
	}
}

// TestSelectToolsUnmatched: a glob that matches no tool is refused by name
// and flag, with the tools there are; its neighbours that match pass.
func TestSelectToolsUnmatched(t *testing.T) {
	r := routerWith(t, "sh", "python_run")
	_, err := selectTools(r, []string{"sh", "shh"}, []string{"pyhton_*"})
	if err == nil {
		t.Fatal("typos accepted")
	}
	msg := err.Error()
	for _, want := range []string{"--tools shh", "--exclude-tools pyhton_*", "matches no tool", "python_run, sh"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "--tools sh,") || strings.Contains(msg, "--tools sh:") {
		t.Errorf("error names the glob that matched: %q", msg)
	}
	if _, err := selectTools(r, []string{"sh"}, []string{"python_*"}); err != nil {
		t.Errorf("matching globs refused: %v", err)
	}
	if _, err := selectTools(r, []string{"[oops"}, nil); err == nil {
		t.Error("bad glob accepted")
	}
}
