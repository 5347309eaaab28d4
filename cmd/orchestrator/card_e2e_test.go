package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// recorder sits in front of the real test Ollama and keeps the system
// prompt of every chat request it passes on.
type recorder struct {
	mu      sync.Mutex
	systems []string
}

func (rec *recorder) proxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Messages []struct {
				Role    string `json:"role"`
				Content any    `json:"content"`
			} `json:"messages"`
		}
		if json.Unmarshal(body, &req) == nil {
			for _, m := range req.Messages {
				if m.Role == "system" {
					s, _ := m.Content.(string)
					rec.mu.Lock()
					rec.systems = append(rec.systems, s)
					rec.mu.Unlock()
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (rec *recorder) take() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.systems
	rec.systems = nil
	return out
}

// TestE2ECapabilitiesCard: on a small local model the system prompt lists
// membrane's tools, grouped under the server, within the budget; off, or
// with a model too large for auto, it does not.
func TestE2ECapabilitiesCard(t *testing.T) {
	c := newChain(t, ollamatest.DefaultScript())
	rec := &recorder{}
	base := rec.proxy(t, c.ollama.URL) + "/v1"
	run := func(extra ...string) []string {
		t.Helper()
		// Without model tools, membrane's tool set is whole once the
		// sandbox is in: the model tools would arrive whenever Ollama's
		// discovery ends, maybe between the two steps, and change the
		// card as they should.
		args := append([]string{"--membrane", c.membrane, "--server-arg", "--model-tools=off", "--base-url", base, "--model", c.model, "--system", "Be brief.", "--json", "-e", "say hello"}, extra...)
		r := c.run(t, c.env(t), args...)
		if r.code != 0 || decodeTurn(t, r.stdout).Answer != "The command printed hello." {
			t.Fatalf("exit %d, stdout %s", r.code, r.stdout)
		}
		return rec.take()
	}
	systems := run()
	if len(systems) != 2 {
		t.Fatalf("system prompts = %q, want one per step", systems)
	}
	card := systems[0]
	if !strings.HasPrefix(card, "Be brief.\n\n## Your tools\n") || !strings.Contains(card, "\nmembrane:\n") ||
		!strings.Contains(card, "\n- sh: ") || !strings.Contains(card, "\n- python_run: ") {
		t.Fatalf("system prompt with the card = %q", card)
	}
	if systems[1] != card {
		t.Fatalf("the card changed between steps with the same tools:\n%q\n%q", card, systems[1])
	}
	small := run("--capabilities-card-tokens", "40")
	if len(small[0]) > len("Be brief.\n\n")+160 || !strings.Contains(small[0], "## Your tools") {
		t.Fatalf("a 40-token card = %q", small[0])
	}
	for _, sys := range run("--capabilities-card", "off") {
		if sys != "Be brief." {
			t.Fatalf("with the card off, system = %q", sys)
		}
	}
}

// TestE2EServeCapabilitiesCard: an agent served by `orchestrator serve` on
// a small local model gets the card of its own tools (sh only, as its
// tools say); with the card off it gets its system prompt alone.
func TestE2EServeCapabilitiesCard(t *testing.T) {
	c := newChain(t, ollamatest.DefaultScript())
	rec := &recorder{}
	base := rec.proxy(t, c.ollama.URL) + "/v1"
	const yaml = "agents:\n  - name: coder\n    system: Be brief.\n    model: scripted\n    tools: [sh]\n"
	ask := func(extra ...string) []string {
		t.Helper()
		s := c.startServe(t, yaml, nil, append([]string{"--base-url", base}, extra...)...)
		body := strings.NewReader(`{"model":"coder","messages":[{"role":"user","content":"say hello"}]}`)
		resp, err := http.Post(s.url+"/chat/completions", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), wantAnswer) {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return rec.take()
	}
	systems := ask()
	if len(systems) != 2 || !strings.HasPrefix(systems[0], "Be brief.\n\n## Your tools\n") || !strings.Contains(systems[0], "\n- sh: ") || strings.Contains(systems[0], "python_run") {
		t.Fatalf("served agent's system prompts = %q", systems)
	}
	for _, sys := range ask("--capabilities-card", "off") {
		if sys != "Be brief." {
			t.Fatalf("with the card off, system = %q", sys)
		}
	}
}
