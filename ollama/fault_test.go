package ollama

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/calls"
)

func newModels(t testing.TB, cfg Config) (*Models, *calls.Router) {
	t.Helper()
	r := calls.NewRouter(nil)
	m, err := New(cfg, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

func call(t testing.TB, r *calls.Router, name string, args any) *calls.Result {
	t.Helper()
	return callCtx(t, t.Context(), r, name, args)
}

func callCtx(t testing.TB, ctx context.Context, r *calls.Router, name string, args any) *calls.Result {
	t.Helper()
	raw, _ := json.Marshal(args)
	res, err := r.Call(ctx, name, &calls.Request{Arguments: raw})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func names(r *calls.Router) []string {
	var out []string
	for _, c := range r.List() {
		out = append(out, c.Name)
	}
	return out
}

func TestNoHostStillServesGenericTools(t *testing.T) {
	// A port nothing listens on.
	m, r := newModels(t, Config{Hosts: []string{"127.0.0.1:1"}})
	if err := m.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh of a dead host returned no error")
	}
	got := strings.Join(names(r), " ")
	if got != "ollama_chat ollama_embed ollama_models" {
		t.Fatalf("tools = %s", got)
	}
	st := m.Hosts()
	if len(st) != 1 || st[0].Up || !strings.Contains(st[0].Err, "refused") {
		t.Fatalf("Hosts() = %+v", st)
	}
	res := call(t, r, ToolChat, map[string]any{"model": "qwen3", "prompt": "hi"})
	if !res.IsError || !strings.Contains(res.TextOf(), "no Ollama host is reachable") {
		t.Fatalf("ollama_chat with no host: %s", res.TextOf())
	}
	res = call(t, r, ToolModels, nil)
	if res.IsError || !strings.Contains(res.TextOf(), "No Ollama host is reachable") {
		t.Fatalf("ollama_models with no host: %s", res.TextOf())
	}
	// Run returns when its context ends, not before, and never fails.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestCapabilitiesFromTags(t *testing.T) {
	// Newer Ollama lists capabilities in /api/tags; /api/show is still
	// asked once per digest for the context length.
	f := newFake(t, chatModelFake("a:1b"), embedModelFake("e:latest", 4))
	f.capsInTags = true
	m, r := newModels(t, Config{Hosts: []string{f.URL}})
	for range 3 {
		if err := m.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.shows.Load(); n != 2 {
		t.Errorf("/api/show asked %d times over three refreshes, want 2 (cached by digest)", n)
	}
	c, ok := r.Lookup("chat_a_1b")
	if !ok {
		t.Fatalf("no chat_a_1b in %v", names(r))
	}
	if !strings.Contains(c.Description, "a:1b") || !strings.Contains(c.Description, "context 2048 tokens") {
		t.Errorf("description lacks the model's details: %s", c.Description)
	}
	if _, ok := r.Lookup("embed_e"); !ok {
		t.Fatalf("no embed_e in %v", names(r))
	}
	// A new digest for the same name is asked about again.
	ms := []fakeModel{chatModelFake("a:1b"), embedModelFake("e:latest", 4)}
	ms[0].Digest = "sha256:new"
	ms[0].CtxLen = 4096
	f.setModels(ms...)
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := f.shows.Load(); n != 3 {
		t.Errorf("/api/show asked %d times after a digest change, want 3", n)
	}
	c, _ = r.Lookup("chat_a_1b")
	if !strings.Contains(c.Description, "context 4096 tokens") {
		t.Errorf("description not updated: %s", c.Description)
	}
}

func TestChatHangTimesOutAndClosesUpstream(t *testing.T) {
	f := newFake(t, chatModelFake("slow:latest"))
	h, closed := hangChat(nil)
	f.setChat(h)
	m, r := newModels(t, Config{Hosts: []string{f.URL}, CallTimeout: 300 * time.Millisecond})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	res := call(t, r, "chat_slow", map[string]any{"prompt": "hi"})
	if !res.IsError || !strings.Contains(res.TextOf(), "timeout") {
		t.Fatalf("hung chat: IsError=%v %q", res.IsError, res.TextOf())
	}
	wantUpstreamClosed(t, closed, "the timeout")
}

func TestChatStreamFaults(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    []string
	}{
		{"malformed line", rawLines(`{"message":{"content":"Hel"}}`, `{this is not json`), []string{"malformed reply"}},
		{"error mid-stream", rawLines(`{"message":{"role":"assistant","content":"Hel"}}`, `{"error":"llama runner process has terminated: signal: killed"}`),
			[]string{"llama runner process has terminated", "1 tokens came back", "Hel"}},
		{"cut stream", rawLines(`{"message":{"role":"assistant","content":"Hel"}}`, `{"message":{"role":"assistant","content":"lo"}}`),
			[]string{"stopped in the middle", "Hello"}},
		{"model not found", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"model 'x' not found"}`))
		}, []string{"no longer on", "ollama_models"}},
		{"context too long", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"input length exceeds the context length"}`))
		}, []string{"too long", "context window of 2048 tokens"}},
		{"fails to load", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"error":"model requires more system memory (7.1 GiB) than is available (2.0 GiB)"}`))
		}, []string{"failed to load", "more system memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, chatModelFake("m:latest"))
			f.setChat(tt.handler)
			m, r := newModels(t, Config{Hosts: []string{f.URL}})
			if err := m.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			res := call(t, r, "chat_m", map[string]any{"prompt": "hi"})
			if !res.IsError {
				t.Fatalf("not a tool error: %s", res.TextOf())
			}
			for _, w := range tt.want {
				if !strings.Contains(res.TextOf(), w) {
					t.Errorf("error %q lacks %q", res.TextOf(), w)
				}
			}
		})
	}
}

func TestChatResponseCap(t *testing.T) {
	f := newFake(t, chatModelFake("m:latest"))
	var stopped sync.WaitGroup
	stopped.Add(1)
	f.setChat(func(w http.ResponseWriter, r *http.Request) {
		defer stopped.Done()
		enc := json.NewEncoder(w)
		for i := 0; i < 10000; i++ {
			if enc.Encode(api.ChatResponse{Message: api.Message{Content: "0123456789"}}) != nil || r.Context().Err() != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		t.Error("the stream was not cut at the response limit")
	})
	m, r := newModels(t, Config{Hosts: []string{f.URL}, MaxResponseBytes: 100})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	res := call(t, r, "chat_m", map[string]any{"prompt": "hi"})
	if res.IsError || !strings.Contains(res.TextOf(), "[truncated") {
		t.Fatalf("capped answer: IsError=%v %q", res.IsError, res.TextOf())
	}
	if got := len(res.Content[0].Text); got > 110 {
		t.Errorf("answer is %d bytes, cap 100", got)
	}
	stopped.Wait()
}

func TestPromptCap(t *testing.T) {
	f := newFake(t, chatModelFake("m:latest"))
	m, r := newModels(t, Config{Hosts: []string{f.URL}, MaxPromptBytes: 10})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	res := call(t, r, "chat_m", map[string]any{"prompt": "this prompt is longer than ten bytes"})
	if !res.IsError || !strings.Contains(res.TextOf(), "more than the limit of 10") {
		t.Fatalf("over-long prompt: %q", res.TextOf())
	}
	if f.chats.Load() != 0 {
		t.Error("an over-long prompt reached Ollama")
	}
}

func TestGenericRejectsUnknownModels(t *testing.T) {
	f := newFake(t, chatModelFake("m:latest"), embedModelFake("e:latest", 4))
	m, r := newModels(t, Config{Hosts: []string{f.URL}})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "http://evil.example/x", "m; rm -rf /", "M:LATEST2", "e"} {
		res := call(t, r, ToolChat, map[string]any{"model": name, "prompt": "hi"})
		if !res.IsError {
			t.Errorf("ollama_chat accepted model %q: %s", name, res.TextOf())
		}
	}
	if f.chats.Load() != 0 {
		t.Fatal("an unknown model name reached Ollama")
	}
	res := call(t, r, ToolChat, map[string]any{"model": "../x", "prompt": "hi"})
	if !strings.Contains(res.TextOf(), "m:latest") {
		t.Errorf("unknown-model error does not list the models: %s", res.TextOf())
	}
	// Case and an implied tag are the same model.
	res = call(t, r, ToolChat, map[string]any{"model": "M", "prompt": "hi"})
	if res.IsError || res.Content[0].Text != "Hello world" {
		t.Fatalf("ollama_chat M: %s", res.TextOf())
	}
	res = call(t, r, ToolEmbed, map[string]any{"model": "e", "input": []string{"a", "b"}})
	if res.IsError || !strings.Contains(res.TextOf(), `"dimensions":4`) {
		t.Fatalf("ollama_embed: %s", res.TextOf())
	}
	res = call(t, r, ToolEmbed, map[string]any{"model": "m", "input": "a"})
	if !res.IsError || !strings.Contains(res.TextOf(), "not an embedding model") {
		t.Fatalf("ollama_embed on a chat model: %s", res.TextOf())
	}
}

func TestHostFailoverBeforeFirstToken(t *testing.T) {
	dead := newFake(t, chatModelFake("m:latest"))
	live := newFake(t, chatModelFake("m:latest"))
	m, r := newModels(t, Config{Hosts: []string{dead.URL, live.URL}})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, _ := r.Lookup("chat_m")
	if !strings.Contains(c.Description, dead.URL) || !strings.Contains(c.Description, live.URL) {
		t.Fatalf("description does not name both hosts: %s", c.Description)
	}
	dead.Close() // gone between the refresh and the call
	res := call(t, r, "chat_m", map[string]any{"prompt": "hi"})
	if res.IsError || res.Content[0].Text != "Hello world" {
		t.Fatalf("call did not fail over: %s", res.TextOf())
	}
	if live.chats.Load() != 1 {
		t.Fatalf("live host served %d chats", live.chats.Load())
	}
	if st := m.Hosts(); st[0].Up {
		t.Errorf("the dead host is still marked up: %+v", st)
	}
}

func TestModelGateQueues(t *testing.T) {
	f := newFake(t, chatModelFake("m:latest"))
	release := make(chan struct{})
	var mu sync.Mutex
	cur, most := 0, 0
	f.setChat(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cur++
		most = max(most, cur)
		mu.Unlock()
		<-release
		mu.Lock()
		cur--
		mu.Unlock()
		answer("ok")(w, r)
	})
	m, r := newModels(t, Config{Hosts: []string{f.URL}, ModelConcurrency: 1})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]*calls.Result, 3)
	for i := range 3 {
		tool := "chat_m"
		args := map[string]any{"prompt": "hi"}
		if i == 2 {
			tool, args["model"] = ToolChat, "m" // the generic tool shares the model's queue
		}
		wg.Go(func() { results[i] = call(t, r, tool, args) })
	}
	time.Sleep(200 * time.Millisecond) // let all three reach the gate
	close(release)
	wg.Wait()
	for i, res := range results {
		if res.IsError {
			t.Errorf("call %d: %s", i, res.TextOf())
		}
	}
	if most != 1 {
		t.Errorf("%d calls ran against the model at once, limit 1", most)
	}
}

func TestExplainUnknownError(t *testing.T) {
	msg := explain(errors.New("boom"), "m", "http://h", 0)
	if !strings.Contains(msg, "boom") {
		t.Error(msg)
	}
}

func TestVisionImagesFormatAndOptionsReachOllama(t *testing.T) {
	// VisionModel in ollamatest has no projector, so a real Ollama cannot
	// run an image; check here what membrane sends.
	vis := chatModelFake("eyes:latest")
	vis.Caps = []string{"completion", "vision"}
	f := newFake(t, vis)
	got := make(chan api.ChatRequest, 1)
	f.setChat(func(w http.ResponseWriter, r *http.Request) {
		var req api.ChatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		got <- req
		answer(`{"ok":true}`)(w, r)
	})
	m, r := newModels(t, Config{Hosts: []string{f.URL}, Tools: []ToolSpec{{Tool: "describer", Model: "eyes", System: "Describe images.", Options: map[string]any{"temperature": 0.1, "seed": 3}}}})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "plot.png"), pngBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	sess := calls.NewSession("")
	sess.SetWorkspace(ws)
	args, _ := json.Marshal(map[string]any{
		"prompt": "What is this?", "images": []string{"plot.png", base64.StdEncoding.EncodeToString(pngBytes)},
		"format": map[string]any{"type": "object"}, "options": map[string]any{"seed": 9},
	})
	res, err := r.Call(t.Context(), "describer", &calls.Request{Arguments: args, Session: sess})
	if err != nil || res.IsError {
		t.Fatalf("vision call: %v %s", err, res.TextOf())
	}
	req := <-got
	if req.Model != "eyes:latest" || len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[0].Content != "Describe images." {
		t.Fatalf("messages: %+v", req.Messages)
	}
	if imgs := req.Messages[1].Images; len(imgs) != 2 || string(imgs[0]) != string(pngBytes) || string(imgs[1]) != string(pngBytes) {
		t.Errorf("images did not reach Ollama intact: %d", len(imgs))
	}
	if string(req.Format) != `{"type":"object"}` {
		t.Errorf("format = %s", req.Format)
	}
	if req.Options["temperature"] != 0.1 || req.Options["seed"] != float64(9) {
		t.Errorf("options = %v (configured temperature kept, caller's seed wins)", req.Options)
	}
	if res.Content[0].Text != `{"ok":true}` {
		t.Errorf("answer %q", res.Content[0].Text)
	}

	// The same image path out of the workspace is refused before Ollama.
	args, _ = json.Marshal(map[string]any{"prompt": "x", "images": []string{"../../etc/passwd"}})
	res, _ = r.Call(t.Context(), "describer", &calls.Request{Arguments: args, Session: sess})
	if !res.IsError || !strings.Contains(res.TextOf(), "images[0]") {
		t.Errorf("escaping path: %s", res.TextOf())
	}
	if c, _ := r.Lookup("chat_eyes"); !strings.Contains(string(c.InputSchema), `"images"`) {
		t.Error("the vision model's own tool takes no images")
	}
}

func TestSetToolsReload(t *testing.T) {
	f := newFake(t, chatModelFake("coder:7b"), embedModelFake("nomic:latest", 4))
	m, r := newModels(t, Config{Hosts: []string{f.URL}})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	var changes []calls.Change
	var mu sync.Mutex
	cancel := r.Subscribe(func(c calls.Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	})
	defer cancel()
	mu.Lock()
	changes = nil // the initial snapshot
	mu.Unlock()

	good := []ToolSpec{
		{Tool: "code_assistant", Model: "coder:7b", Description: "Writes code."},
		{Tool: "embedding_model", Model: "NOMIC"},
		{Tool: "later", Model: "not-yet"},
	}
	// A set with bad entries is refused whole: nothing changes.
	err := m.SetTools(append(slices.Clone(good), ToolSpec{Tool: "bad name!", Model: "coder:7b"}, ToolSpec{Tool: "ollama_chat", Model: "coder:7b"}))
	if err == nil || !strings.Contains(err.Error(), "bad name!") || !strings.Contains(err.Error(), "built-in") {
		t.Errorf("SetTools with bad entries: %v, want both named", err)
	}
	if _, ok := r.Lookup("code_assistant"); ok {
		t.Fatal("a refused set was applied in part")
	}
	if err := m.SetTools(good); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(changes) != 1 {
		t.Errorf("SetTools made %d changes, want one", len(changes))
	}
	mu.Unlock()
	ca, ok := r.Lookup("code_assistant")
	if !ok || !strings.HasPrefix(ca.Description, "Writes code.") || !strings.Contains(ca.Description, "coder:7b") {
		t.Fatalf("code_assistant: %v %q", ok, ca.Description)
	}
	if _, ok := r.Lookup("embedding_model"); !ok {
		t.Fatal("embedding_model not registered")
	}
	if _, ok := r.Lookup("later"); ok {
		t.Fatal("a logical tool without its model was registered")
	}
	if c, _ := r.Lookup(ToolChat); !strings.Contains(c.Description, "any local Ollama model") {
		t.Fatal("a logical tool replaced a generic one")
	}
	// Its model appears: so does the tool. It goes: so does the tool.
	f.setModels(chatModelFake("coder:7b"), embedModelFake("nomic:latest", 4), chatModelFake("not-yet:latest"))
	m.Refresh(t.Context())
	if _, ok := r.Lookup("later"); !ok {
		t.Fatal("logical tool did not appear with its model")
	}
	f.setModels(embedModelFake("nomic:latest", 4))
	m.Refresh(t.Context())
	for _, gone := range []string{"later", "code_assistant", "chat_coder_7b"} {
		if _, ok := r.Lookup(gone); ok {
			t.Errorf("%s still registered after its model went", gone)
		}
	}
	res := call(t, r, "embedding_model", map[string]any{"input": "x", "summary": true})
	if res.IsError || !strings.Contains(res.TextOf(), `"norm"`) {
		t.Errorf("embedding_model: %s", res.TextOf())
	}
	// Removing the specs removes the tools.
	m.SetTools(nil)
	if _, ok := r.Lookup("embedding_model"); ok {
		t.Error("embedding_model still registered after SetTools(nil)")
	}
}

func TestThinkingAndTruncate(t *testing.T) {
	// Ollama v0.6.5 has no thinking models; newer ones stream the
	// reasoning in message.thinking.
	th := chatModelFake("thinker:latest")
	th.Caps = []string{"completion", "thinking"}
	f := newFake(t, th, chatModelFake("plain:latest"))
	got := make(chan api.ChatRequest, 4)
	f.setChat(func(w http.ResponseWriter, r *http.Request) {
		var req api.ChatRequest
		json.NewDecoder(r.Body).Decode(&req)
		got <- req
		rawLines(`{"message":{"role":"assistant","thinking":"Let me see."}}`,
			`{"message":{"role":"assistant","content":"42"}}`,
			`{"done":true,"done_reason":"stop"}`)(w, r)
	})
	m, r := newModels(t, Config{Hosts: []string{f.URL}})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, _ := r.Lookup("chat_thinker")
	if !strings.Contains(string(c.InputSchema), `"think"`) {
		t.Error("a thinking model's tool does not offer think")
	}
	if c, _ := r.Lookup("chat_plain"); strings.Contains(string(c.InputSchema), `"think"`) {
		t.Error("a plain model's tool offers think")
	}
	// A level for a model that takes none is refused before any request
	// (Ollama would answer 400); true goes through.
	if res := call(t, r, "chat_thinker", map[string]any{"prompt": "?", "think": "high"}); !res.IsError || !strings.Contains(res.TextOf(), "takes no effort levels") {
		t.Errorf("a level on a model without levels: %q", res.TextOf())
	}
	res := call(t, r, "chat_thinker", map[string]any{"prompt": "?", "think": true})
	if res.IsError || res.Content[0].Text != "42" || !strings.Contains(res.TextOf(), "Reasoning:\nLet me see.") {
		t.Fatalf("thinking answer: %q", res.TextOf())
	}
	req := <-got
	if req.Think == nil || req.Think.Value != true {
		t.Errorf("think = %+v", req.Think)
	}
	if req.Truncate == nil || *req.Truncate {
		t.Errorf("truncate = %v, want false by default", req.Truncate)
	}
	res = call(t, r, "chat_thinker", map[string]any{"prompt": "?", "truncate": true})
	if req := <-got; res.IsError || req.Truncate == nil || !*req.Truncate {
		t.Errorf("truncate true not passed on: %v %s", req.Truncate, res.TextOf())
	}
	res = call(t, r, ToolChat, map[string]any{"model": "plain", "prompt": "?", "think": true})
	if !res.IsError || !strings.Contains(res.TextOf(), "not a thinking model") {
		t.Errorf("think on a plain model: %s", res.TextOf())
	}
}

func TestGateScalesWithHostsAndSurvivesCancel(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 8)
	blocking := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			started <- name
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			answer("ok")(w, r)
		}
	}
	a := newFake(t, chatModelFake("m:latest"))
	b := newFake(t, chatModelFake("m:latest"))
	a.setChat(blocking("a"))
	b.setChat(blocking("b"))
	m, r := newModels(t, Config{Hosts: []string{a.URL, b.URL}, ModelConcurrency: 1})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if res := call(t, r, "chat_m", map[string]any{"prompt": "hi"}); res.IsError {
				t.Errorf("call: %s", res.TextOf())
			}
		})
	}
	// Limit 1 per host, two hosts: both calls run at once, one on each.
	got := map[string]bool{<-started: true, <-started: true}
	if !got["a"] || !got["b"] {
		t.Fatalf("calls ran on %v", got)
	}
	// A third call waits; cancelled while waiting, it gives back nothing
	// it did not have.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	raw, _ := json.Marshal(map[string]any{"prompt": "hi"})
	res, err := r.Call(ctx, "chat_m", &calls.Request{Arguments: raw})
	if err == nil && !res.IsError {
		t.Fatalf("a call past the limit ran: %s", res.TextOf())
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued call: %v", err)
	}
	select {
	case h := <-started:
		t.Fatalf("a queued call ran on %s past the limit", h)
	default:
	}
	close(release)
	wg.Wait()
	// The slots all came back: two more calls run.
	for range 2 {
		if res := call(t, r, "chat_m", map[string]any{"prompt": "hi"}); res.IsError {
			t.Fatalf("after cancel: %s", res.TextOf())
		}
	}
	g := m.gateFor("m:latest")
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running != 0 || len(g.waiters) != 0 {
		t.Errorf("gate left with %d running, %d waiting", g.running, len(g.waiters))
	}
}

func TestAllHostsGoneSaysWhy(t *testing.T) {
	f := newFake(t, chatModelFake("m:latest"), embedModelFake("e:latest", 4))
	m, r := newModels(t, Config{Hosts: []string{f.URL}})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.Close() // gone before the next refresh noticed
	for _, c := range []struct {
		tool string
		args map[string]any
	}{{"chat_m", map[string]any{"prompt": "hi"}}, {"embed_e", map[string]any{"input": "hi"}}} {
		res := call(t, r, c.tool, c.args)
		// Refused, or EOF on a kept-alive connection the server closed.
		if txt := res.TextOf(); !res.IsError || !strings.Contains(txt, "refused") && !strings.Contains(txt, "connection was closed") {
			t.Errorf("%s with its only host gone: %s", c.tool, res.TextOf())
		}
	}
	// The tools stay through one failed listing (marked unavailable), and
	// go with the second.
	m.Refresh(t.Context())
	if _, ok := r.Lookup("chat_m"); !ok {
		t.Error("chat_m gone after a single failed listing")
	}
	res := call(t, r, "chat_m", map[string]any{"prompt": "hi"})
	if !res.IsError || !strings.Contains(res.TextOf(), "no host that is up") {
		t.Errorf("call while the host is down: %s", res.TextOf())
	}
	m.Refresh(t.Context())
	if _, ok := r.Lookup("chat_m"); ok {
		t.Error("chat_m still registered after two failed listings")
	}
}

func TestModelsToolRefreshesOnDemand(t *testing.T) {
	f := newFake(t, chatModelFake("a:latest"))
	m, r := newModels(t, Config{Hosts: []string{f.URL}, RefreshInterval: time.Hour})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.setModels(chatModelFake("a:latest"), embedModelFake("b:latest", 4))
	res := call(t, r, ToolModels, nil)
	if strings.Contains(res.TextOf(), `"b:latest"`) {
		t.Fatal("listed a model before any refresh")
	}
	res = call(t, r, ToolModels, map[string]any{"refresh": true})
	if res.IsError || !strings.Contains(res.TextOf(), `"b:latest"`) || !strings.Contains(res.TextOf(), `"embed_b"`) {
		t.Fatalf("after refresh: %s", res.TextOf())
	}
	if _, ok := r.Lookup("embed_b"); !ok {
		t.Fatal("refresh through ollama_models did not register embed_b")
	}
	var out struct {
		Models []modelEntry `json:"models"`
		Hosts  []HostStatus `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(res.TextOf()), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Models) != 2 || len(out.Hosts) != 1 || !out.Hosts[0].Up || out.Hosts[0].Models != 2 || out.Models[1].Hosts[0] != f.URL || !out.Models[0].Available {
		t.Errorf("ollama_models: %+v", out)
	}
}

func TestProgressWhileLoadingAndQueued(t *testing.T) {
	defer func(d time.Duration) { progressHeartbeat = d }(progressHeartbeat)
	progressHeartbeat = 30 * time.Millisecond
	f := newFake(t, chatModelFake("m:latest"))
	first := make(chan struct{})
	var once sync.Once
	f.setChat(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(first) })
		time.Sleep(200 * time.Millisecond) // the model loads
		answer("a", "b", "c")(w, r)
	})
	m, r := newModels(t, Config{Hosts: []string{f.URL}, ModelConcurrency: 1})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	type report struct {
		p   float64
		msg string
	}
	var mu sync.Mutex
	got := map[int][]report{}
	run := func(i int) {
		raw, _ := json.Marshal(map[string]any{"prompt": "hi"})
		res, err := r.Call(t.Context(), "chat_m", &calls.Request{Arguments: raw,
			Progress: calls.ProgressFunc(func(_ context.Context, p, _ float64, msg string) {
				mu.Lock()
				got[i] = append(got[i], report{p, msg})
				mu.Unlock()
			})})
		if err != nil || res.IsError {
			t.Errorf("call %d: %v %s", i, err, res.TextOf())
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { run(0) })
	<-first // call 0 is loading the model: call 1 queues
	wg.Go(func() { run(1) })
	wg.Wait()
	has := func(i int, s string) bool {
		for _, r := range got[i] {
			if strings.Contains(r.msg, s) {
				return true
			}
		}
		return false
	}
	if !has(0, "loading") || !has(0, "1 tokens: a") {
		t.Errorf("first call's progress: %+v", got[0])
	}
	if !has(1, "waiting for m:latest") {
		t.Errorf("queued call's progress: %+v", got[1])
	}
	for i, rs := range got {
		for j := 1; j < len(rs); j++ {
			if rs[j].p <= rs[j-1].p {
				t.Errorf("call %d: progress went from %v to %v", i, rs[j-1].p, rs[j].p)
			}
		}
	}
}

// TestHeartbeatBeatsUntilStopped: the beats come while the timer runs, and
// none runs once stop has returned, even when one was due as it was
// called.
func TestHeartbeatBeatsUntilStopped(t *testing.T) {
	for range 20 {
		var (
			mu      sync.Mutex
			beats   int
			stopped bool
			late    bool
		)
		two := make(chan struct{})
		stop := heartbeat(time.Microsecond, func() {
			mu.Lock()
			defer mu.Unlock()
			beats++
			if beats == 2 {
				close(two)
			}
			if stopped {
				late = true
			}
		})
		<-two
		stop()
		mu.Lock()
		stopped = true
		mu.Unlock()
		stop() // twice does nothing
		// Let another heartbeat of the same pace beat 50 times: a timer
		// still running would have beaten by then.
		fifty := make(chan struct{})
		n := 0
		stop2 := heartbeat(time.Microsecond, func() {
			if n++; n == 50 {
				close(fifty)
			}
		})
		<-fifty
		stop2()
		mu.Lock()
		if late {
			t.Fatal("a beat ran after stop returned")
		}
		mu.Unlock()
	}
}
