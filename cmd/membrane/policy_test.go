package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

func TestPolicySettings(t *testing.T) {
	tokens := writeFile(t, "tokens.json", `{"tokens":[{"name":"a","token":"a-token-0123456789ab"}]}`)
	cfg, err := loadConfig("membrane", []string{
		"--tools", "ollama_*", "--tools", "sh", "--exclude-tools", "ollama_embed*",
		"--rate-limit", "sh=10/min:3", "--rate-limit", "ollama_*=2/s",
		"--http-get-allow", "docs.python.org", "--tokens-file", tokens,
		"--http", "0.0.0.0:8765", // a tokens file is authentication enough
	}, env(map[string]string{"MEMBRANE_HTTP_GET_ALLOW": "ignored.example"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Policy.Tools, []string{"ollama_*", "sh"}) || !slices.Equal(cfg.Policy.ExcludeTools, []string{"ollama_embed*"}) {
		t.Errorf("tools = %v / %v", cfg.Policy.Tools, cfg.Policy.ExcludeTools)
	}
	want := []policy.Limit{{Tools: "sh", PerMinute: 10, Burst: 3, PerTool: true}, {Tools: "ollama_*", PerMinute: 120, Burst: 1, PerTool: true}}
	if got := cfg.limits(); !slices.Equal(got, want) {
		t.Errorf("rate limits = %+v", got)
	}
	if !slices.Equal(cfg.HTTPGet.Allow, []string{"docs.python.org"}) {
		t.Errorf("http_get allow = %v (the flag replaces the variable)", cfg.HTTPGet.Allow)
	}

	file := writeFile(t, "m.yaml", `
policy:
  exclude_tools: [python_run]
  rate_limits: ["ollama_*=30/min:2"]
http_get:
  allow: ["https://go.dev/doc/"]
  headers: [{for: go.dev, name: X-Key, value: v}]
  timeout: 5s
`)
	cfg, err = loadConfig("membrane", []string{"--config", file}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.httpGetOptions()
	if len(o.Headers) != 1 || o.Headers[0].Name != "X-Key" || o.Timeout != 5*time.Second || cfg.limits()[0].Burst != 2 {
		t.Errorf("from the file: %+v %+v", o, cfg.limits())
	}
}

func TestPolicySettingErrors(t *testing.T) {
	badTokens := writeFile(t, "bad.json", `{"tokens":[{"name":"a","token":"short"}]}`)
	for _, tc := range []struct {
		args []string
		file string
		want string
	}{
		{[]string{"--tools", "[oops"}, "", "--tools"},
		{[]string{"--rate-limit", "sh"}, "", "--rate-limit"},
		{[]string{"--rate-limit", "sh=0/min"}, "", "--rate-limit"},
		{[]string{"--rate-limit", "sh=1/day"}, "", "unit"},
		{[]string{"--rate-limit", "sh=1/min:0"}, "", "burst"},
		{[]string{"--tokens-file", badTokens}, "", "--tokens-file"},
		{[]string{"--tokens-file", "/no/such/tokens.json"}, "", "--tokens-file"},
		{[]string{"--http-get-allow", "example.com/path"}, "", "--http-get-allow"},
		{[]string{"--http-get-allow", "https://10.0.0.1/"}, "", "private"},
		{[]string{"--http-get-timeout", "0"}, "", "--http-get-timeout"},
		{nil, "policy:\n  rate_limits: [sh]\n", "GLOB=N/min"},
		{nil, "http_get:\n  allow: [x.com]\n  headers: [{for: x.com, nmae: A}]\n", "nmae"},
	} {
		args := tc.args
		if tc.file != "" {
			args = append([]string{"--config", writeFile(t, "c.yaml", tc.file)}, args...)
		}
		_, err := loadConfig("membrane", args, env(nil), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %q: err = %v, want it to mention %q", tc.args, tc.file, err, tc.want)
		}
	}
}

// TestPolicyEndToEnd runs the binary over HTTP with scoped tokens, a
// global exclusion, a rate limit and http_get, as an operator would.
func TestPolicyEndToEnd(t *testing.T) {
	bin := binary(t)
	var hits atomic.Int32
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer local.Close()
	localHost := strings.TrimPrefix(local.URL, "http://")

	const (
		shared = "shared-token-0123456789"
		reader = "reader-token-0123456789"
		later  = "later-token-01234567890"
	)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"reader","token":"`+reader+`","tools":["http_get","sh"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base, stderr, _ := startHTTP(t, bin, append([]string{
		"--token", shared, "--tokens-file", tokens, "--exclude-tools", "python_run",
		"--rate-limit", "sh=1/h:1", "--http-get-allow", localHost,
	}, noOllama...)...)
	url := base + "/mcp"

	rd := mcptest.ConnectHTTP(t, url, reader, nil)
	if got := toolSet(t, rd); !slices.Equal(sorted(got), []string{"http_get", "sh"}) {
		t.Fatalf("reader lists %v", got)
	}
	sh := mcptest.ConnectHTTP(t, url, shared, nil)
	all := sorted(toolSet(t, sh))
	if slices.Contains(all, "python_run") || !slices.Contains(all, "ollama_chat") || !slices.Contains(all, "http_get") {
		t.Fatalf("the shared token lists %v", all)
	}

	// Out of scope: refused; and the global exclusion holds for everyone.
	if res, text := mcptest.CallText(t, rd, "ollama_models", nil); !res.IsError || !strings.Contains(text, "unknown tool") {
		t.Fatalf("reader ollama_models: %s", text)
	}
	// Excluded for everyone, python_run is not a tool at all: the SDK
	// answers it as it answers any unknown name.
	if _, err := sh.CallTool(t.Context(), &sdk.CallToolParams{Name: "python_run", Arguments: map[string]any{"code": "print(1)"}}); err == nil || !strings.Contains(err.Error(), "unknown tool") {
		t.Fatalf("shared python_run: %v", err)
	}

	// http_get on the allow-list but at a loopback address: refused after
	// resolution, and the server never sees a request.
	res, text := mcptest.CallText(t, rd, "http_get", map[string]any{"url": local.URL + "/secret"})
	if !res.IsError || !strings.Contains(text, "a loopback address") || hits.Load() != 0 {
		t.Fatalf("http_get to loopback: %s (hits %d)", text, hits.Load())
	}

	// The shared rate limit: one sh an hour, over all clients.
	res, text = mcptest.CallText(t, sh, "sh", map[string]any{"cmd": "echo once"})
	sandboxWorks(t, res, text)
	res, text = mcptest.CallText(t, rd, "sh", map[string]any{"cmd": "echo twice"})
	if !res.IsError || !strings.Contains(text, "rate limited") || !strings.Contains(text, "try again in") {
		t.Fatalf("second sh: %s", text)
	}

	// A token added to the file works without a restart.
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"reader","token":"`+reader+`","tools":["http_get","sh"]},{"name":"later","token":"`+later+`","tools":["sh"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "tokens file reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("the tokens file was not reloaded: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	lt := mcptest.ConnectHTTP(t, url, later, nil)
	if got := toolSet(t, lt); !slices.Equal(got, []string{"sh"}) {
		t.Fatalf("later lists %v", got)
	}
	if strings.Contains(stderr.String(), reader) || strings.Contains(stderr.String(), shared) {
		t.Fatal("a token reached the logs")
	}
	if !strings.Contains(stderr.String(), `client=reader reason=rate`) {
		t.Errorf("the refusal was not logged with the client's name: %s", stderr.String())
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
