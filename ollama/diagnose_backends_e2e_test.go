package ollama_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/diag"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2EDiagnoseBackends runs doctor's backend checks against a real
// Ollama's /v1 (the working set-up), the same Ollama at a URL that is not
// its OpenAI base (its native API answers 404 there), and a port nothing
// listens on. A server with an API key check, and a web page that answers
// 200 for any path, are httptest servers: Ollama has no keys and answers
// no path with a page. Each fault says what was wrong and how to fix it.
func TestE2EDiagnoseBackends(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		srv.Create(t, "scripted:latest", scripted())
		srv.Create(t, "embedder:latest", ollamatest.EmbedModel(8))
		keyed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer right" {
				// vLLM's --api-key answers this.
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":"Unauthorized"}`)
				return
			}
			io.WriteString(w, `{"object":"list","data":[{"id":"m1","object":"model"}]}`)
		}))
		defer keyed.Close()
		page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<!doctype html><html><head><title>Grafana</title></head><body></body></html>")
		}))
		defer page.Close()
		t.Setenv("DIAG_RIGHT_KEY", "right")
		t.Setenv("DIAG_WRONG_KEY", "wrong")

		checks := ollama.DiagnoseBackends(t.Context(), []ollama.Backend{
			{Name: "friend", URL: srv.URL + "/v1"},
			{Name: "native", URL: srv.URL + "/api"},
			{Name: "dead", URL: "http://" + mcptest.FreeAddr(t) + "/v1"},
			{Name: "keyed", URL: keyed.URL + "/v1", KeyEnv: "DIAG_RIGHT_KEY"},
			{Name: "nokey", URL: keyed.URL + "/v1"},
			{Name: "wrongkey", URL: keyed.URL + "/v1", KeyEnv: "DIAG_WRONG_KEY"},
			{Name: "page", URL: page.URL + "/v1"},
			{Name: "unset", URL: srv.URL + "/v1", KeyEnv: "DIAG_UNSET_KEY"},
		})
		want := []struct {
			name        string
			status      diag.Status
			detail, fix string
		}{
			{"friend", diag.StatusOK, "OpenAI-compatible: 2 models (1 chat, 1 embedding)", ""},
			{"native", diag.StatusFail, "HTTP 404 (404 page not found) for GET models: no OpenAI-compatible API at this URL", "OpenAI-compatible base"},
			{"dead", diag.StatusFail, "connection refused (is the server running, and on this port?)", "start the server"},
			{"keyed", diag.StatusOK, "OpenAI-compatible: 1 models (1 chat, 0 embedding)", ""},
			{"nokey", diag.StatusFail, "the server wants an API key, and none is set for this backend", "key-env=VAR"},
			{"wrongkey", diag.StatusFail, "HTTP 401 (Unauthorized): the server refused the API key set for this backend", "the key its server expects"},
			{"page", diag.StatusFail, "not an OpenAI model list", "OpenAI-compatible base"},
			{"unset", diag.StatusFail, "no API key: the variable DIAG_UNSET_KEY is empty or unset", "set the key's variable in membrane's environment"},
		}
		if len(checks) != len(want) {
			t.Fatalf("%d checks, want %d: %+v", len(checks), len(want), checks)
		}
		for i, w := range want {
			c := checks[i]
			if !strings.HasPrefix(c.Name, "backend "+w.name) || c.Status != w.status || !strings.Contains(c.Detail, w.detail) || !strings.Contains(c.Fix, w.fix) {
				t.Errorf("%s: %s %s: %q, fix %q; want %s with %q, fix with %q", w.name, c.Status, c.Name, c.Detail, c.Fix, w.status, w.detail, w.fix)
			}
			if strings.Contains(c.Detail+c.Fix, "ollama serve") || strings.Contains(c.Detail, "<html") {
				t.Errorf("%s: %q, %q speaks of Ollama or shows the page", w.name, c.Detail, c.Fix)
			}
		}

		// A logical tool on a backend's model is checked against the
		// backend's list, not Ollama's.
		tools := ollama.DiagnoseTools(t.Context(), []string{"127.0.0.1:1"}, []ollama.Backend{{Name: "friend", URL: srv.URL + "/v1"}}, []ollama.ToolSpec{
			{Tool: "helper", Model: "friend/scripted:latest"},
			{Tool: "gone", Model: "friend/nosuch:latest"},
			{Tool: "badopt", Model: "friend/scripted:latest", Options: map[string]any{"num_ctx": 4096}},
		})
		wantTools := []struct {
			status diag.Status
			detail string
		}{
			{diag.StatusOK, "chat tool on scripted:latest (friend ("},
			{diag.StatusWarn, "backend friend does not list nosuch:latest"},
			{diag.StatusFail, `option "num_ctx" has no equivalent on an OpenAI-compatible server`},
		}
		for i, w := range wantTools {
			if i >= len(tools) || tools[i].Status != w.status || !strings.Contains(tools[i].Detail, w.detail) || strings.Contains(tools[i].Fix, "ollama pull") {
				t.Errorf("tool check %d: %+v; want %s with %q", i, tools, w.status, w.detail)
			}
		}

		// The host status a running membrane shows (ollama_models, logs,
		// /readyz) says the same, not Ollama's advice; the working
		// backend beside it is up.
		h := start(t, ollama.Config{Hosts: []string{"127.0.0.1:1"}, Backends: []ollama.Backend{
			{Name: "friend", URL: srv.URL + "/v1"}, {Name: "dead", URL: "http://" + mcptest.FreeAddr(t) + "/v1"}}})
		h.ready(t, "the friend's models", has("chat_scripted"))
		deadline := time.Now().Add(10 * time.Second)
		for {
			var st ollama.HostStatus
			for _, s := range h.m.Hosts() {
				if strings.HasPrefix(s.URL, "dead ") {
					st = s
				}
			}
			if st.Err != "" {
				if st.Up || st.Err != "connection refused (is the server running, and on this port?)" {
					t.Errorf("a backend that refuses connections: %+v", st)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no status for the dead backend: %+v", h.m.Hosts())
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
