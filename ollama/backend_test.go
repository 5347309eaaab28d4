package ollama

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// fakeBackend is an OpenAI-compatible server for the faults a real one
// cannot be made to show: errors in the middle of a stream, odd error
// shapes, endless lines.
type fakeBackend struct {
	*httptest.Server
	mu     sync.Mutex
	models []string
	chat   http.HandlerFunc
	bodies [][]byte // chat request bodies, in order
	auth   []string
}

func newFakeBackend(t testing.TB, models ...string) *fakeBackend {
	f := &fakeBackend{models: models}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.mu.Unlock()
		switch r.URL.Path {
		case "/v1/models":
			f.mu.Lock()
			var data []map[string]any
			for _, m := range f.models {
				data = append(data, map[string]any{"id": m, "object": "model", "max_model_len": 4096})
			}
			f.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
		case "/v1/chat/completions":
			b, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			f.bodies = append(f.bodies, b)
			h := f.chat
			f.mu.Unlock()
			h(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeBackend) setChat(h http.HandlerFunc) {
	f.mu.Lock()
	f.chat = h
	f.mu.Unlock()
}

// sse answers with these data lines, as event-stream.
func sse(lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, l := range lines {
			fmt.Fprintf(w, "data: %s\n\n", l)
			w.(http.Flusher).Flush()
		}
	}
}

func delta(s string) string {
	b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": s}}}})
	return string(b)
}

const finishStop = `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
const usage = `{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}`

func TestBackendStreamFaults(t *testing.T) {
	f := newFakeBackend(t, "m1")
	_, r := backendModels(t, f.URL, Config{}, Backend{APIKey: "sekret"})
	if !slices.Contains(names(r), "chat_m1") {
		t.Fatalf("tools: %v", names(r))
	}
	for _, tt := range []struct {
		name    string
		h       http.HandlerFunc
		isError bool
		want    string
	}{
		{"whole answer", sse(delta("Hel"), delta("lo"), finishStop, usage, "[DONE]"), false, "Hello"},
		{"no [DONE] after finish", sse(delta("Hi"), finishStop), false, "Hi"},
		{"error mid-stream", sse(delta("Hal"), `{"error":{"message":"CUDA out of memory","type":"server_error"}}`), true,
			"the OpenAI-compatible server on fb (" + f.URL + "/v1) failed during the answer of m1: the server reported an error mid-stream: CUDA out of memory\n1 tokens came back before it failed:\nHal"},
		{"cut stream", sse(delta("Hal")), true, "stopped in the middle of the answer"},
		{"malformed event", sse(delta("a"), `{"choices":[`), true, "malformed stream event"},
		{"endless line", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: "+strings.Repeat("x", maxSSELine+10))
		}, true, "longer than"},
		{"404 vLLM shape", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			io.WriteString(w, `{"object":"error","message":"The model `+"`m1`"+` does not exist.","type":"NotFoundError","code":404}`)
		}, true, "model m1 is no longer on fb"},
		{"400 OpenAI shape", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"This model's maximum context length is 4096 tokens","type":"invalid_request_error"}}`)
		}, true, "the OpenAI-compatible server rejected the request to m1: This model's maximum context length is 4096 tokens"},
		{"401 key refused", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"message":"Invalid API key","type":"auth_error"}}`)
		}, true, "refused the credentials membrane sent (HTTP 401: Invalid API key)"},
		{"429 busy", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(429)
			io.WriteString(w, `{"error":"rate limited"}`)
		}, true, "is overloaded (rate limited)"},
		{"500 FastAPI detail", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			io.WriteString(w, `{"detail":"engine dead"}`)
		}, true, "failed (HTTP 500): engine dead"},
		{"one JSON answer", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"choices":[{"message":{"content":"whole"},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`)
		}, false, "whole"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.setChat(tt.h)
			res := call(t, r, "chat_m1", map[string]any{"prompt": "hi"})
			txt := res.Content[0].Text
			if res.IsError != tt.isError || !strings.Contains(txt, tt.want) {
				t.Errorf("IsError=%v, text %q; want IsError=%v and %q", res.IsError, txt, tt.isError, tt.want)
			}
			if strings.Contains(txt, "sekret") {
				t.Errorf("the API key leaked into a result: %s", txt)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.auth {
		if a != "Bearer sekret" {
			t.Errorf("a request went without the key: %q", a)
		}
	}
}

func TestBackendRequestShape(t *testing.T) {
	f := newFakeBackend(t, "vis")
	f.setChat(sse(delta("{}"), finishStop, "[DONE]"))
	on := true
	m, r := backendModels(t, f.URL, Config{}, Backend{
		Models: map[string]BackendModel{"vis": {Vision: true, Thinking: true, ContextLength: 1000, Embedding: new(bool)}, "*": {Embedding: &on}}})
	png := pngBytes
	res := call(t, r, "chat_vis", map[string]any{
		"prompt": "what is this", "images": []string{b64(png)}, "think": "high", "format": "json",
		"options": map[string]any{"temperature": 0.5, "num_predict": 9, "stop": []string{"x"}},
	})
	if res.IsError {
		t.Fatal(res.Content[0].Text)
	}
	var body struct {
		Model           string         `json:"model"`
		Stream          bool           `json:"stream"`
		MaxTokens       int            `json:"max_tokens"`
		Temperature     float64        `json:"temperature"`
		Stop            []string       `json:"stop"`
		ReasoningEffort string         `json:"reasoning_effort"`
		ResponseFormat  map[string]any `json:"response_format"`
		Messages        []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	f.mu.Lock()
	raw := f.bodies[len(f.bodies)-1]
	f.mu.Unlock()
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	if body.Model != "vis" || !body.Stream || body.MaxTokens != 9 || body.Temperature != 0.5 || !slices.Equal(body.Stop, []string{"x"}) ||
		body.ReasoningEffort != "high" || body.ResponseFormat["type"] != "json_object" {
		t.Errorf("request body: %s", raw)
	}
	if len(body.Messages) != 1 || !bytes.Contains(body.Messages[0].Content, []byte(`"image_url":{"url":"data:image/png;base64,`)) {
		t.Errorf("image not sent as a data URL: %s", raw)
	}
	if bytes.Contains(raw, []byte("num_predict")) {
		t.Errorf("an Ollama option name went out: %s", raw)
	}
	// A model without vision refuses images (control: vis took them).
	f.mu.Lock()
	f.models = append(f.models, "plain")
	f.mu.Unlock()
	m.Refresh(t.Context())
	if !slices.Contains(names(r), "embed_plain") {
		t.Errorf("the \"*\" entry did not make plain an embedding model: %v", names(r))
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestParseBackend(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(" k1 \n"), 0o600)
	t.Setenv("BK_KEY", "k2")
	for _, tt := range []struct {
		in, url, key, err string
	}{
		{in: "vllm=http://gpu1:8000/v1", url: "http://gpu1:8000/v1"},
		{in: "ls=http://127.0.0.1:1234", url: "http://127.0.0.1:1234/v1"},
		{in: "lite=https://proxy.example/api/v1/,key-file=" + keyFile, url: "https://proxy.example/api/v1", key: "k1"},
		{in: "x=http://h:1/v1,key-env=BK_KEY", url: "http://h:1/v1", key: "k2"},
		{in: "x=http://h:1/v1,key-env=BK_NONE", err: "empty or unset"},
		{in: "http://h:1/v1", err: "want NAME=URL"},
		{in: "Bad=http://h/v1", err: "must match"},
		{in: "x=ftp://h/v1", err: "want http(s)"},
		{in: "x=http://h/v1?a=b", err: "no query"},
		{in: "x=http://h/v1,token=abc", err: "unknown part"},
		{in: "x=http://u:pw@h/v1,key-env=A,key-file=B", err: "not both"},
	} {
		b, err := ParseBackend(tt.in)
		var h *host
		if err == nil {
			h, err = newBackendHost(b, http.DefaultClient)
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("%q: the password is in the error: %v", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if h.oa.base.String() != tt.url || h.oa.key != tt.key {
			t.Errorf("%q: url %s key %q; want %s %q", tt.in, h.oa.base, h.oa.key, tt.url, tt.key)
		}
	}
	if err := ValidateBackends([]Backend{{Name: "a", URL: "http://h/v1"}, {Name: "a", URL: "http://g/v1"}}); err == nil {
		t.Error("two backends of one name were accepted")
	}
}

func TestBackendNamesNeverCollide(t *testing.T) {
	mk := func(backend, name string) *model {
		return &model{Name: name, backend: backend, Capabilities: []string{capCompletion}}
	}
	mods := []*model{
		mk("", "llama3:latest"),
		mk("vllm", "llama3"),       // an Ollama model wants the plain name
		mk("lms", "llama3"),        // so does another backend's
		mk("vllm", "only-here"),    // nobody else: plain
		mk("a", "b_c"),             // prefixed would be a_b_c ...
		mk("a_b", "c"),             // ... and so would this
		mk("a_b", "llama3:latest"), // collides with Ollama too
	}
	got := assignModelNames(prefixChat, mods, (*model).canChat)
	seen := map[string]string{}
	for k, n := range got {
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s share the tool name %s", k, other, n)
		}
		seen[n] = k
	}
	if len(got) != len(mods) {
		t.Errorf("%d names for %d models: %v", len(got), len(mods), got)
	}
	for key, want := range map[string]string{
		"llama3:latest":   "chat_llama3",
		"@vllm/llama3":    "chat_vllm_llama3",
		"@lms/llama3":     "chat_lms_llama3",
		"@vllm/only-here": "chat_only_here",
	} {
		if got[key] != want {
			t.Errorf("%s: %q, want %q (all: %v)", key, got[key], want, got)
		}
	}
	// The same set in another order gets the same names.
	slices.Reverse(mods)
	again := assignModelNames(prefixChat, mods, (*model).canChat)
	for k, n := range got {
		if again[k] != n {
			t.Errorf("order changed %s's name: %s then %s", k, n, again[k])
		}
	}
}

func TestErrorMessageShapes(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":{"message":"a"}}`:               "a",
		`{"error":"b"}`:                           "b",
		`{"object":"error","message":"c"}`:        "c",
		`{"detail":"d"}`:                          "d",
		`{"detail":[{"loc":["body"],"msg":"e"}]}`: `[{"loc":["body"],"msg":"e"}]`,
		`not json`:                                "",
	} {
		if got := errorMessage([]byte(body)); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

// FuzzBackendStream feeds arbitrary event-stream bodies to the stream
// decoder. Whatever the bytes, the pieces it hands on are exactly the
// content the data lines carry, at most one final piece comes, and it comes
// last.
func FuzzBackendStream(f *testing.F) {
	f.Add([]byte("data: " + delta("hi") + "\n\ndata: " + finishStop + "\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"error\":\"x\"}\n"))
	f.Add([]byte(": comment\nevent: x\ndata: " + delta("a") + "\r\ndata: [DONE]"))
	f.Add([]byte("data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"no\"}}]}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var got strings.Builder
		dones := 0
		afterDone := false
		err := readStream(bytes.NewReader(body), func(r api.ChatResponse) error {
			if dones > 0 {
				afterDone = true
			}
			if r.Done {
				dones++
			}
			got.WriteString(r.Message.Content)
			return nil
		})
		if dones > 1 || afterDone {
			t.Fatalf("%d final pieces, pieces after the end: %v", dones, afterDone)
		}
		if err != nil {
			return
		}
		// Recompute what the data lines carry, up to the end marker.
		var want strings.Builder
		for _, line := range strings.Split(string(body), "\n") {
			d, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r"), "data:")
			if !ok {
				continue
			}
			d = strings.TrimSpace(d)
			if d == "[DONE]" {
				break
			}
			var c chunk
			json.Unmarshal([]byte(d), &c)
			for _, ch := range c.Choices {
				if ch.Index == 0 {
					want.WriteString(ch.Delta.Content)
				}
			}
		}
		if got.String() != want.String() {
			t.Fatalf("content %q, the stream carries %q", got.String(), want.String())
		}
	})
}

// FuzzParseModels checks the /models decoder: every model it keeps has a
// usable, distinct name and a capability.
func FuzzParseModels(f *testing.F) {
	f.Add([]byte(`{"data":[{"id":"a"},{"id":"a"},{"id":"b c"},{"id":"e-embed","max_model_len":512}]}`))
	f.Add([]byte(`{"data":[{"id":"x","meta":{"n_ctx_train":-1}}]}`))
	o := &openAI{cfg: Backend{Name: "f"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		ms, err := o.parseModels(body)
		if err != nil {
			// Every refusal says the reply is not a model list, which is
			// how the host's status and doctor name the fault.
			if !errors.Is(err, errNotModelList) {
				t.Fatalf("parseModels(%q): %v is not errNotModelList", body, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, m := range ms {
			if !validModelName(m.Name) || seen[m.Name] || len(m.Capabilities) == 0 || m.contextLength < 0 {
				t.Fatalf("bad model %+v from %s", m, body)
			}
			seen[m.Name] = true
		}
	})
}

func TestBackendHangTimesOutAndClosesUpstream(t *testing.T) {
	f := newFakeBackend(t, "slow")
	h, closed := hangChat(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", delta("part"))
	})
	f.setChat(h)
	// The first delta is written at once, but a loaded machine once took
	// more than a 300 ms timeout to hand it over, and the answer then
	// (rightly) said the server sent nothing; 2 s leaves room for that.
	_, r := backendModels(t, f.URL, Config{CallTimeout: 2 * time.Second}, Backend{})
	res := call(t, r, "chat_slow", map[string]any{"prompt": "hi"})
	if !res.IsError || !strings.Contains(res.TextOf(), "timeout: slow did not finish") || !strings.Contains(res.TextOf(), "part") {
		t.Fatalf("hung backend chat: IsError=%v %q", res.IsError, res.TextOf())
	}
	wantUpstreamClosed(t, closed, "the timeout")
}

// TestBackendStallAfterDone: a server that sends the whole answer and
// [DONE] but never ends the body still gives the answer, and its request
// is closed (drainRest waits a bounded time only).
func TestBackendStallAfterDone(t *testing.T) {
	f := newFakeBackend(t, "m1")
	h, closed := hangChat(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, l := range []string{delta("Hel"), delta("lo"), finishStop, "[DONE]"} {
			fmt.Fprintf(w, "data: %s\n\n", l)
		}
	})
	f.setChat(h)
	_, r := backendModels(t, f.URL, Config{}, Backend{})
	if res := call(t, r, "chat_m1", map[string]any{"prompt": "hi"}); res.IsError || res.Content[0].Text != "Hello" {
		t.Fatalf("IsError=%v %q; want the answer", res.IsError, res.TextOf())
	}
	wantUpstreamClosed(t, closed, "an answer whose body never ended")
}

func TestBackendResponseCap(t *testing.T) {
	f := newFakeBackend(t, "chatty")
	var lines []string
	for range 100 {
		lines = append(lines, delta(strings.Repeat("x", 100)))
	}
	f.setChat(sse(append(lines, finishStop, "[DONE]")...))
	_, r := backendModels(t, f.URL, Config{MaxResponseBytes: 1000}, Backend{})
	res := call(t, r, "chat_chatty", map[string]any{"prompt": "hi"})
	if res.IsError || !strings.Contains(res.TextOf(), "[truncated: the answer passed the limit of 1000 bytes") {
		t.Fatalf("capped answer: %v %q", res.IsError, res.TextOf())
	}
	// Control: a larger limit takes the whole answer.
	_, r2 := backendModels(t, f.URL, Config{}, Backend{})
	if res := call(t, r2, "chat_chatty", map[string]any{"prompt": "hi"}); res.IsError || strings.Contains(res.TextOf(), "truncated") || len(res.Content[0].Text) != 10000 {
		t.Errorf("uncapped answer: %v, %d bytes", res.IsError, len(res.Content[0].Text))
	}
}

func TestPickPrefersLoadedUntilBusy(t *testing.T) {
	mk := func() *host { return &host{up: true, name: "h"} }
	a, b := mk(), mk()
	mod := &model{Name: "m:latest", hosts: []*host{a, b}}
	if got := mod.pick(nil, 2); got != a {
		t.Fatal("with nothing loaded the first host should win")
	}
	b.markLoaded(mod.key(), mod.Name, 0)
	if got := mod.pick(nil, 2); got != b {
		t.Error("the host with the model loaded did not win")
	}
	b.inflight.Add(2) // as busy as ModelConcurrency allows
	if got := mod.pick(nil, 2); got != a {
		t.Error("a loaded host running its share of calls still won over an idle one")
	}
	if got := mod.pick([]*host{a}, 2); got != b {
		t.Error("tried hosts are not skipped")
	}
	// An expired entry counts as not loaded.
	b.inflight.Add(-2)
	b.mu.Lock()
	b.loaded[mod.key()] = loadedModel{Name: mod.Name, Expires: time.Now().Add(-time.Second)}
	b.mu.Unlock()
	if got := mod.pick(nil, 2); got != a {
		t.Error("a model whose keep-alive ran out still counts as loaded")
	}
}
