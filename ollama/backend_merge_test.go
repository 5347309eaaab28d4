package ollama_test

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/ollama"
)

func TestMergeBackends(t *testing.T) {
	t.Parallel()
	file := []ollama.Backend{
		{Name: "vllm", URL: "http://old:1/v1", Models: map[string]ollama.BackendModel{"*": {Vision: true}}},
		{Name: "lms", URL: "http://127.0.0.1:1234/v1"},
	}
	got := ollama.MergeBackends(file, []string{"vllm=http://gpu1:8000/v1,key-env=VLLM_KEY", "not a backend", "lite=http://proxy:4000"})
	if len(got) != 3 || got[0].Name != "vllm" || got[0].URL != "http://gpu1:8000/v1" || got[0].KeyEnv != "VLLM_KEY" || !got[0].Models["*"].Vision ||
		got[1].Name != "lms" || got[2].Name != "lite" {
		t.Errorf("merged = %+v", got)
	}
	if file[0].URL != "http://old:1/v1" {
		t.Errorf("the file's backends were changed: %+v", file[0])
	}
	twice := ollama.MergeBackends(nil, []string{"vllm=http://a:1/v1", "vllm=http://b:1/v1"})
	if err := ollama.ValidateBackends(twice); len(twice) != 2 || err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("two values of one name: %+v, %v", twice, err)
	}
}

func TestValidateNumCtx(t *testing.T) {
	t.Parallel()
	if err := ollama.ValidateNumCtx(map[string]int{"a": 256, "b": 1 << 24}); err != nil {
		t.Errorf("the bounds themselves: %v", err)
	}
	for _, n := range []int{255, 1<<24 + 1, 0, -1} {
		if err := ollama.ValidateNumCtx(map[string]int{"m": n}); err == nil || !strings.Contains(err.Error(), "num_ctx of m") {
			t.Errorf("%d: %v", n, err)
		}
	}
}
