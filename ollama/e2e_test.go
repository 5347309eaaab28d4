package ollama_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/diag"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// scriptAnswer is what the scripted chat model answers any plain prompt.
const scriptAnswer = " The command printed hello."

// forEachOllama runs test once per real Ollama version (ollamatest.Versions),
// as a subtest named after it: "ollama-v0.6.5".
func forEachOllama(t *testing.T, test func(t *testing.T, v ollamatest.TestVersion)) {
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) { test(t, v) })
	}
}

func scripted() ollamatest.Model {
	return ollamatest.ScriptedModel(ollamatest.Script{Answer: scriptAnswer})
}

// harness runs Models against real hosts with a fast refresh, and an MCP
// client connected through the real server adapter.
type harness struct {
	m       *ollama.Models
	r       *calls.Router
	cs      *sdk.ClientSession
	changed chan struct{}

	mu       sync.Mutex
	progress []*sdk.ProgressNotificationParams
}

func start(t *testing.T, cfg ollama.Config) *harness {
	t.Helper()
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = 100 * time.Millisecond
	}
	h := &harness{r: calls.NewRouter(nil), changed: make(chan struct{}, 64)}
	var err error
	h.m, err = ollama.New(cfg, h.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.m.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	h.cs = mcptest.Connect(t, h.r, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			select {
			case h.changed <- struct{}{}:
			default:
			}
		},
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			h.mu.Lock()
			h.progress = append(h.progress, r.Params)
			h.mu.Unlock()
		},
	})
	return h
}

func (h *harness) tools(t *testing.T) map[string]*sdk.Tool {
	t.Helper()
	out := map[string]*sdk.Tool{}
	for tool, err := range h.cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		out[tool.Name] = tool
	}
	return out
}

// waitTools waits for a list_changed after which the client's tool list
// satisfies ok. It fails the test if none comes within 30 s.
func (h *harness) waitTools(t *testing.T, what string, ok func(map[string]*sdk.Tool) bool) map[string]*sdk.Tool {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-h.changed:
			if tools := h.tools(t); ok(tools) {
				return tools
			}
		case <-deadline:
			t.Fatalf("no list_changed brought %s; tools: %v", what, slices.Sorted(mapsKeys(h.tools(t))))
		}
	}
}

// ready returns the tool list once it satisfies ok: at once if it already
// does (the first refresh may finish before the client connects, and then
// no list_changed is due), else after the list_changed that makes it so.
func (h *harness) ready(t *testing.T, what string, ok func(map[string]*sdk.Tool) bool) map[string]*sdk.Tool {
	t.Helper()
	if tools := h.tools(t); ok(tools) {
		return tools
	}
	return h.waitTools(t, what, ok)
}

func mapsKeys(m map[string]*sdk.Tool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func has(names ...string) func(map[string]*sdk.Tool) bool {
	return func(tools map[string]*sdk.Tool) bool {
		for _, n := range names {
			if tools[n] == nil {
				return false
			}
		}
		return true
	}
}

func lacks(names ...string) func(map[string]*sdk.Tool) bool {
	return func(tools map[string]*sdk.Tool) bool {
		for _, n := range names {
			if tools[n] != nil {
				return false
			}
		}
		return true
	}
}

func textOf(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func firstText(res *sdk.CallToolResult) string {
	if len(res.Content) == 0 {
		return ""
	}
	tc, _ := res.Content[0].(*sdk.TextContent)
	if tc == nil {
		return ""
	}
	return tc.Text
}

func schemaProps(t *testing.T, tool *sdk.Tool) map[string]any {
	t.Helper()
	b, _ := json.Marshal(tool.InputSchema)
	var s struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.Properties
}

func TestE2EDiscoveryNamingAndLiveSet(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		srv.Create(t, "scripted:latest", scripted())
		srv.Create(t, "embedder:v1", ollamatest.EmbedModel(64))
		srv.Create(t, "hf.co/Org/Vision.Tiny:Q8_0", ollamatest.VisionModel())

		h := start(t, ollama.Config{Hosts: []string{srv.Host}})
		tools := h.ready(t, "the three models", has("chat_scripted", "embed_embedder_v1", "chat_hf_co_org_vision_tiny_q8_0"))

		chat := tools["chat_scripted"]
		if !strings.Contains(chat.Description, "scripted:latest") || !strings.Contains(chat.Description, srv.URL) ||
			!strings.Contains(chat.Description, "context 2048 tokens") || !strings.Contains(chat.Description, "family llama") {
			t.Errorf("chat description lacks the model's details: %s", chat.Description)
		}
		if p := schemaProps(t, chat); p["images"] != nil || p["prompt"] == nil || p["model"] != nil {
			t.Errorf("chat_scripted schema: %v", slices.Sorted(func(y func(string) bool) {
				for k := range p {
					y(k)
				}
			}))
		}
		if p := schemaProps(t, tools["chat_hf_co_org_vision_tiny_q8_0"]); p["images"] == nil {
			t.Error("the vision model's chat tool takes no images")
		}
		if emb := tools["embed_embedder_v1"]; !strings.Contains(emb.Description, "64 dimensions") {
			t.Errorf("embed description lacks the dimensions: %s", emb.Description)
		}
		if _, ok := h.m.ToolModel("chat_hf_co_org_vision_tiny_q8_0"); !ok {
			t.Error("no reverse mapping from the vision tool to its model")
		}
		if got, _ := h.m.ToolModel("chat_hf_co_org_vision_tiny_q8_0"); got != "hf.co/Org/Vision.Tiny:Q8_0" && !strings.EqualFold(got, "hf.co/Org/Vision.Tiny:Q8_0") {
			t.Errorf("ToolModel = %q", got)
		}

		// A model created while membrane runs appears, then disappears.
		srv.Create(t, "late:latest", ollamatest.ChatModel())
		h.waitTools(t, "chat_late after create", has("chat_late"))
		srv.Delete(t, "late:latest")
		h.waitTools(t, "chat_late gone after delete", lacks("chat_late"))

		// The generic listing agrees.
		res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "ollama_models", Arguments: map[string]any{"capability": "embedding"}})
		if err != nil || res.IsError {
			t.Fatalf("ollama_models: %v %s", err, textOf(res))
		}
		if txt := textOf(res); !strings.Contains(txt, `"embedder:v1"`) || strings.Contains(txt, `"scripted:latest"`) || !strings.Contains(txt, `"embed_embedder_v1"`) {
			t.Errorf("ollama_models capability=embedding: %s", txt)
		}
	})
}

func TestE2EChatEmbedAndProgress(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		srv.Create(t, "scripted:latest", scripted())
		srv.Create(t, "embedder:latest", ollamatest.EmbedModel(64))
		h := start(t, ollama.Config{Hosts: []string{srv.Host}, Tools: []ollama.ToolSpec{
			{Tool: "helper", Model: "scripted", Description: "A helper that always says the same thing.", System: "Be brief."},
			{Tool: "vectors", Model: "embedder"},
			{Tool: "absent", Model: "nothing-here"},
		}})
		tools := h.ready(t, "chat, embed and logical tools", has("chat_scripted", "embed_embedder", "helper", "vectors"))
		if tools["absent"] != nil {
			t.Error("a logical tool whose model does not exist was registered")
		}
		if p := schemaProps(t, tools["helper"]); p["system"] != nil {
			t.Error("a logical tool with a fixed system prompt offers system")
		}

		params := &sdk.CallToolParams{Name: "chat_scripted", Arguments: map[string]any{"prompt": "What did the command print?", "options": map[string]any{"temperature": 0.7}}}
		params.SetProgressToken("p1")
		res, err := h.cs.CallTool(t.Context(), params)
		if err != nil || res.IsError {
			t.Fatalf("chat: %v %s", err, textOf(res))
		}
		if got := firstText(res); got != scriptAnswer {
			t.Errorf("chat answer %q, want %q", got, scriptAnswer)
		}
		schemas := mcptest.OutputSchemas(t, h.cs, nil)
		mcptest.CheckStructured(t, "chat_scripted", schemas["chat_scripted"], res)
		if st, _ := res.StructuredContent.(map[string]any); st["answer"] != scriptAnswer || st["eval_count"] == nil || st["eval_duration_ms"] == nil {
			t.Errorf("chat structured content lacks the answer, token counts or timings: %v", st)
		}
		// Notifications are sent before the result but handled by the client
		// on their own goroutine, so they may land just after it.
		h.waitTokens(t)

		res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "helper", Arguments: map[string]any{"prompt": "hi"}})
		if err != nil || res.IsError || firstText(res) != scriptAnswer {
			t.Fatalf("logical tool: %v %s", err, textOf(res))
		}
		mcptest.CheckStructured(t, "helper", schemas["helper"], res)

		for _, tool := range []string{"embed_embedder", "vectors"} {
			res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tool, Arguments: map[string]any{"input": []string{"one", "two", "three"}}})
			if err != nil || res.IsError {
				t.Fatalf("%s: %v %s", tool, err, textOf(res))
			}
			mcptest.CheckStructured(t, tool, schemas[tool], res)
			var out struct {
				Dimensions int         `json:"dimensions"`
				Embeddings [][]float64 `json:"embeddings"`
			}
			b, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%s structured content: %v", tool, err)
			}
			if out.Dimensions != 64 || len(out.Embeddings) != 3 || len(out.Embeddings[2]) != 64 {
				t.Errorf("%s: dimensions %d, %d vectors", tool, out.Dimensions, len(out.Embeddings))
			}
			// The text is a summary: the vectors travel once.
			if txt := textOf(res); strings.Contains(txt, `"embeddings"`) || !strings.Contains(txt, `"summaries"`) || len(txt) > 4096 {
				t.Errorf("%s: the text is not a summary (%d bytes): %.200s", tool, len(txt), txt)
			}
		}
		res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "ollama_embed", Arguments: map[string]any{"model": "embedder", "input": "one", "summary": true}})
		if err != nil || res.IsError || !strings.Contains(textOf(res), `"summaries"`) || strings.Contains(textOf(res), `"embeddings"`) {
			t.Fatalf("embed summary: %v %s", err, textOf(res))
		}
		mcptest.CheckStructured(t, "ollama_embed", schemas["ollama_embed"], res)
		res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "ollama_models", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("ollama_models: %v %s", err, textOf(res))
		}
		mcptest.CheckStructured(t, "ollama_models", schemas["ollama_models"], res)

		// Arguments the model does not accept are tool errors naming the problem.
		for _, bad := range []map[string]any{
			{"prompt": "hi", "images": []string{"x.png"}},
			{"prompt": "hi", "options": map[string]any{"temprature": 1}},
			{"prompt": "hi", "options": map[string]any{"num_ctx": 1 << 20}},
			{},
		} {
			res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_scripted", Arguments: bad})
			if err != nil {
				t.Fatal(err)
			}
			if !res.IsError {
				t.Errorf("chat_scripted accepted %v: %s", bad, textOf(res))
			}
		}
	})
}

// upstream is a reverse proxy in front of a real Ollama that sees when
// membrane closes a chat request (/api/chat, or /v1/chat/completions)
// before Ollama finished the answer.
type upstream struct {
	*httptest.Server
	chats  atomic.Int64
	closed chan struct{} // one value per /api/chat answer closed before its done line
	// connsClosed counts the client connections that ended (membrane
	// closed them, or the proxy did).
	connsClosed atomic.Int64
	// connsNew counts the client connections that were opened.
	connsNew atomic.Int64

	mu       sync.Mutex
	lastChat []byte // the body of the last chat request
}

// lastChatBody returns the body of the last chat request.
func (p *upstream) lastChatBody() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastChat
}

func newUpstream(t *testing.T, target string) *upstream {
	u, _ := url.Parse(target)
	p := &upstream{closed: make(chan struct{}, 16)}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		switch resp.Request.URL.Path {
		case "/api/chat":
			resp.Body = &watchBody{ReadCloser: resp.Body, early: p.closed, end: `"done":true`}
		case "/v1/chat/completions":
			resp.Body = &watchBody{ReadCloser: resp.Body, early: p.closed, end: "[DONE]"}
		}
		return nil
	}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/chat" || r.URL.Path == "/v1/chat/completions" {
			p.chats.Add(1)
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			p.mu.Lock()
			p.lastChat = body
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	p.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			p.connsNew.Add(1)
		case http.StateClosed:
			p.connsClosed.Add(1)
		}
	}
	p.Start()
	t.Cleanup(p.Close)
	return p
}

// watchBody reports, when closed, whether the stream ended with its end
// marker: Ollama's final "done":true line, or an SSE stream's [DONE].
type watchBody struct {
	io.ReadCloser
	early chan struct{}
	end   string
	last  []byte
	once  sync.Once
}

func (b *watchBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.last = append(b.last, p[:n]...)
	if len(b.last) > 4096 {
		b.last = b.last[len(b.last)-4096:]
	}
	return n, err
}

func (b *watchBody) Close() error {
	b.once.Do(func() {
		if !strings.Contains(string(b.last), b.end) {
			b.early <- struct{}{}
		}
	})
	return b.ReadCloser.Close()
}

// longChat is a chat the tiny random model keeps generating for minutes:
// greedy decoding from this prompt never reaches an end token, so only
// num_predict (a million) or a cancel stops it.
func longChat(tool string) *sdk.CallToolParams {
	p := &sdk.CallToolParams{Name: tool, Arguments: map[string]any{"prompt": "a", "options": map[string]any{"num_predict": 1000000, "temperature": 0, "seed": 1}}}
	p.SetProgressToken("long")
	return p
}

// cancelMidStream starts a long chat of tool, cancels it once tokens
// flow, and checks that the call fails and that membrane closed the
// upstream request before its end.
func (h *harness) cancelMidStream(t *testing.T, up *upstream, tool string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.cs.CallTool(ctx, longChat(tool))
		errc <- err
	}()
	h.waitTokens(t)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled call returned no error")
	}
	select {
	case <-up.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("membrane did not close the upstream chat request after the client cancelled")
	}
}

func (h *harness) waitTokens(t *testing.T) {
	t.Helper()
	h.waitProgress(t, "tokens:")
}

// waitProgress waits (up to 60 s) for a progress message containing want.
func (h *harness) waitProgress(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, p := range h.progress {
			if strings.Contains(p.Message, want) {
				h.mu.Unlock()
				return
			}
		}
		h.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var got []string
	for _, p := range h.progress {
		got = append(got, p.Message)
	}
	t.Fatalf("no progress with %q arrived; got %q", want, got)
}

func TestE2ECancelClosesUpstream(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		srv.Create(t, "gibberish:latest", ollamatest.ChatModel())
		up := newUpstream(t, srv.URL)
		h := start(t, ollama.Config{Hosts: []string{up.URL}})
		h.ready(t, "chat_gibberish", has("chat_gibberish"))
		h.cancelMidStream(t, up, "chat_gibberish")
		// The model is free again: a new call is answered.
		res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_gibberish", Arguments: map[string]any{"prompt": "hi"}})
		if err != nil || res.IsError {
			t.Fatalf("call after cancel: %v %s", err, textOf(res))
		}
	})
}

func TestE2EKillMidStreamAndRecover(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		srv.Create(t, "gibberish:latest", ollamatest.ChatModel())
		h := start(t, ollama.Config{Hosts: []string{srv.Host}})
		h.ready(t, "chat_gibberish", has("chat_gibberish"))

		resc := make(chan *sdk.CallToolResult, 1)
		go func() {
			res, err := h.cs.CallTool(t.Context(), longChat("chat_gibberish"))
			if err != nil {
				t.Errorf("call during kill: %v", err)
			}
			resc <- res
		}()
		h.waitTokens(t)
		srv.Kill(t)
		res := <-resc
		if res == nil || !res.IsError {
			t.Fatalf("killing Ollama mid-stream gave no tool error: %+v", res)
		}
		if txt := textOf(res); !strings.Contains(txt, "stopped in the middle") && !strings.Contains(txt, "cannot be reached") {
			t.Errorf("tool error does not say Ollama went away: %s", txt)
		}
		h.waitTools(t, "chat_gibberish gone while Ollama is down", lacks("chat_gibberish"))
		if st := h.m.Hosts(); st[0].Up {
			t.Errorf("host still up after kill: %+v", st)
		}

		srv.Restart(t)
		h.waitTools(t, "chat_gibberish back after restart", has("chat_gibberish"))
		res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_gibberish", Arguments: map[string]any{"prompt": "hi"}})
		if err != nil || res.IsError {
			t.Fatalf("call after restart: %v %s", err, textOf(res))
		}
	})
}

func TestE2ETwoHostsOverlap(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		a := v.Start(t)
		b := v.Start(t)
		a.Create(t, "only-a:latest", ollamatest.ChatModel())
		a.Create(t, "shared:latest", ollamatest.ChatModel())
		b.Create(t, "shared:latest", ollamatest.ChatModel())
		b.Create(t, "only-b:latest", ollamatest.EmbedModel(32))
		pa, pb := newUpstream(t, a.URL), newUpstream(t, b.URL)
		// One call per host at a time: the second call may not join the
		// first on the host that has the model loaded (see
		// TestE2EPreferLoadedHost), so it goes to the other.
		h := start(t, ollama.Config{Hosts: []string{pa.URL, pb.URL}, ModelConcurrency: 1})
		tools := h.ready(t, "models of both hosts", has("chat_only_a", "chat_shared", "embed_only_b"))
		if d := tools["chat_shared"].Description; !strings.Contains(d, pa.URL) || !strings.Contains(d, pb.URL) {
			t.Errorf("shared model's description does not name both hosts: %s", d)
		}
		if n := len(tools); n != 6 {
			t.Errorf("%d tools, want 6 (3 generic + only-a + shared once + only-b)", n)
		}

		// Two calls at once go to different hosts: least busy first.
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { h.cs.CallTool(ctx, longChat("chat_shared")) })
		h.waitTokens(t)
		wg.Go(func() { h.cs.CallTool(ctx, longChat("chat_shared")) })
		deadline := time.Now().Add(30 * time.Second)
		for pa.chats.Load()+pb.chats.Load() < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		if pa.chats.Load() != 1 || pb.chats.Load() != 1 {
			t.Errorf("two concurrent calls went to host A %d times and host B %d times; want one each", pa.chats.Load(), pb.chats.Load())
		}

		// Host A going away leaves the shared model on B.
		a.Kill(t)
		h.waitTools(t, "only-a gone", lacks("chat_only_a"))
		tools = h.tools(t)
		if tools["chat_shared"] == nil || strings.Contains(tools["chat_shared"].Description, pa.URL) {
			t.Fatalf("shared model after host A died: %v", tools["chat_shared"])
		}
		res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_shared", Arguments: map[string]any{"prompt": "hi"}})
		if err != nil || res.IsError {
			t.Fatalf("shared model on B: %v %s", err, textOf(res))
		}
	})
}

func TestE2EDiagnose(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		full := v.Start(t)
		full.Create(t, "scripted:latest", scripted())
		full.Create(t, "embedder:latest", ollamatest.EmbedModel(16))
		empty := v.Start(t)
		checks := ollama.Diagnose(t.Context(), []string{full.Host, empty.URL, "127.0.0.1:1"})
		if len(checks) != 3 {
			t.Fatalf("%d checks for 3 hosts: %+v", len(checks), checks)
		}
		if c := checks[0]; c.Status != diag.StatusOK || !strings.Contains(c.Detail, "2 models (1 chat, 1 embedding)") {
			t.Errorf("host with models: %+v", c)
		}
		if c := checks[1]; c.Status != diag.StatusWarn || !strings.Contains(c.Fix, "ollama pull") {
			t.Errorf("empty host: %+v", c)
		}
		if c := checks[2]; c.Status != diag.StatusFail || !strings.Contains(c.Detail, "refused") || !strings.Contains(c.Fix, "OLLAMA_HOST") {
			t.Errorf("dead host: %+v", c)
		}
		if c := ollama.Diagnose(t.Context(), []string{"ftp://x"}); len(c) != 1 || c[0].Status != diag.StatusFail {
			t.Errorf("bad host: %+v", c)
		}
	})
}

func TestE2EModelFailsToLoadAndContextOverflow(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		broken := ollamatest.ChatModel()
		broken.File.Set("llama.embedding_length", uint32(64)) // the tensors say 32: llama.cpp refuses it
		srv.Create(t, "broken:latest", broken)
		srv.Create(t, "gibberish:latest", ollamatest.ChatModel())
		h := start(t, ollama.Config{Hosts: []string{srv.Host}})
		h.ready(t, "both models", has("chat_broken", "chat_gibberish"))

		res, err := h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_broken", Arguments: map[string]any{"prompt": "hi"}})
		if err != nil {
			t.Fatal(err)
		}
		if txt := textOf(res); !res.IsError || !strings.Contains(txt, "broken:latest failed to load") || !strings.Contains(txt, "use another model") {
			t.Errorf("a model that cannot load: IsError=%v %q", res.IsError, txt)
		}

		// Ollama v0.6.5 cuts an input longer than the window without saying so;
		// membrane says so. Newer versions honour truncate:false (membrane's
		// default) and refuse it with HTTP 400, which membrane explains. A
		// short input gets no warning from either.
		long := strings.Repeat("word ", 1000)
		if v.Version != ollamatest.Version {
			res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_gibberish", Arguments: map[string]any{"prompt": long, "options": map[string]any{"num_predict": 2}}})
			if err != nil || !res.IsError || !strings.Contains(textOf(res), "too long for gibberish:latest's context window of 2048 tokens") {
				t.Errorf("a prompt past the window on %s: %v %s", v.Version, err, textOf(res))
			}
			long = "hi"
		}
		for _, tt := range []struct {
			prompt string
			warn   bool
		}{{"hi", false}, {long, long != "hi"}} {
			res, err = h.cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_gibberish", Arguments: map[string]any{"prompt": tt.prompt, "options": map[string]any{"num_predict": 2}}})
			if err != nil || res.IsError {
				t.Fatalf("chat: %v %s", err, textOf(res))
			}
			full, _ := res.StructuredContent.(map[string]any)["context_full"].(bool)
			if full != tt.warn || strings.Contains(textOf(res), "context window of 2048 tokens") != tt.warn {
				t.Errorf("prompt of %d bytes: context_full=%v, text %q", len(tt.prompt), full, textOf(res))
			}
		}
	})
}
