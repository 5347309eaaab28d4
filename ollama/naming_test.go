package ollama

import (
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
)

func TestToolName(t *testing.T) {
	long := "hf.co/" + strings.Repeat("verylongorganisation", 3) + "/Model-GGUF:Q4_K_M"
	tests := []struct {
		prefix, model, want string
	}{
		{prefixChat, "qwen3:0.6b", "chat_qwen3_0_6b"},
		{prefixChat, "llama3.2:latest", "chat_llama3_2"},
		{prefixChat, "llama3.2", "chat_llama3_2"},
		{prefixEmbed, "nomic-embed-text:latest", "embed_nomic_embed_text"},
		{prefixChat, "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "chat_hf_co_bartowski_llama_3_2_1b_instruct_gguf_q4_k_m"},
		{prefixChat, "registry.local:5000/team/coder", "chat_registry_local_5000_team_coder"},
		{prefixChat, "日本語:latest", "chat_" + shortHash("日本語")},
		{prefixChat, long, hashedToolName(prefixChat, long)},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			got := toolName(tt.prefix, tt.model)
			if got != tt.want {
				t.Errorf("toolName(%q, %q) = %q, want %q", tt.prefix, tt.model, got, tt.want)
			}
			if !calls.NamePattern.MatchString(got) {
				t.Errorf("%q does not match %s", got, calls.NamePattern)
			}
		})
	}
}

func TestHashedNameFitsAndIsStable(t *testing.T) {
	long := "hf.co/" + strings.Repeat("x", 200) + ":q8_0"
	n := toolName(prefixChat, long)
	if len(n) > maxToolName || !calls.NamePattern.MatchString(n) {
		t.Fatalf("toolName = %q (%d chars)", n, len(n))
	}
	if !strings.HasSuffix(n, "_"+shortHash(long)) {
		t.Errorf("long name %q lacks its hash suffix", n)
	}
	if toolName(prefixChat, long) != n {
		t.Error("toolName is not deterministic")
	}
	// The hash is of the canonical name, so case and an implied tag do not matter.
	if shortHash("Foo") != shortHash("foo:latest") {
		t.Error("shortHash differs for the same model written two ways")
	}
}

func TestAssignNamesCollisions(t *testing.T) {
	models := []string{"a.b:latest", "a_b:latest", "a-b:latest", "qwen3:0.6b"}
	got := assignNames(prefixChat, models)
	if got["qwen3:0.6b"] != "chat_qwen3_0_6b" {
		t.Errorf("a model with no collision got %q", got["qwen3:0.6b"])
	}
	seen := map[string]string{}
	for _, m := range models[:3] {
		n := got[m]
		if !strings.HasPrefix(n, "chat_a_b_") {
			t.Errorf("colliding model %s got %q, want chat_a_b_<hash>", m, n)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s both got %q", m, other, n)
		}
		seen[n] = m
	}
	// The same set in another order gets the same names.
	again := assignNames(prefixChat, []string{"qwen3:0.6b", "a-b:latest", "a_b:latest", "a.b:latest"})
	for m, n := range got {
		if again[m] != n {
			t.Errorf("%s: %q then %q", m, n, again[m])
		}
	}
}

func TestCanonicalModel(t *testing.T) {
	for in, want := range map[string]string{
		"qwen3":                     "qwen3:latest",
		"qwen3:0.6b":                "qwen3:0.6b",
		"host:5000/ns/model":        "host:5000/ns/model:latest",
		"host:5000/ns/model:v1":     "host:5000/ns/model:v1",
		" spaced ":                  "spaced:latest",
		"":                          "",
		"hf.co/a/b-GGUF:Q4_K_M":     "hf.co/a/b-GGUF:Q4_K_M",
		"hf.co/a/b-GGUF":            "hf.co/a/b-GGUF:latest",
		"registry.ollama.ai/x/y:1b": "registry.ollama.ai/x/y:1b",
	} {
		if got := canonicalModel(in); got != want {
			t.Errorf("canonicalModel(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzToolName checks that any model name a host may list becomes a valid,
// deterministic tool name, and that different models never share one.
func FuzzToolName(f *testing.F) {
	for _, s := range []string{"qwen3:0.6b", "a.b", "a_b", "", "日本語", "hf.co/x/y:Q4", strings.Repeat("z", 300), "../../etc", "http://evil/x"} {
		f.Add(s, "other")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, p := range []string{prefixChat, prefixEmbed} {
			n := toolName(p, a)
			if !calls.NamePattern.MatchString(n) {
				t.Fatalf("toolName(%q) = %q does not match %s", a, n, calls.NamePattern)
			}
			if toolName(p, a) != n {
				t.Fatal("not deterministic")
			}
			names := assignNames(p, []string{canonicalModel(a), canonicalModel(b)})
			if modelKey(a) != modelKey(b) && a != "" && b != "" && names[canonicalModel(a)] == names[canonicalModel(b)] && shortHash(a) != shortHash(b) {
				t.Fatalf("%q and %q both named %q", a, b, names[canonicalModel(a)])
			}
			for _, n := range names {
				if !calls.NamePattern.MatchString(n) {
					t.Fatalf("assigned %q does not match", n)
				}
			}
		}
	})
}
