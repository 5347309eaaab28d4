package ollama

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ollama/ollama/api"
)

// fakeModel is one model a fakeOllama lists.
type fakeModel struct {
	Name, Digest, Family string
	Caps                 []string
	CtxLen, EmbLen       int
}

// fakeOllama is an httptest Ollama for the faults a real one cannot show on
// demand (a hang, a malformed or cut stream, an error mid-stream), for
// protocol corners (capabilities in /api/tags) and for scale (hundreds of
// models). The real paths are tested against ollamatest.
type fakeOllama struct {
	*httptest.Server
	capsInTags bool

	mu     sync.Mutex
	models []fakeModel
	chat   http.HandlerFunc // answers /api/chat; nil means a two-token answer
	embed  http.HandlerFunc

	shows, chats atomic.Int64
}

func newFake(t testing.TB, models ...fakeModel) *fakeOllama {
	f := &fakeOllama{models: models}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/tags", f.tags)
	mux.HandleFunc("POST /api/show", f.show)
	mux.HandleFunc("POST /api/chat", func(w http.ResponseWriter, r *http.Request) {
		f.chats.Add(1)
		f.mu.Lock()
		h := f.chat
		f.mu.Unlock()
		if h == nil {
			h = answer("Hello", " world")
		}
		h(w, r)
	})
	mux.HandleFunc("POST /api/embed", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		h := f.embed
		f.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		var req api.EmbedRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		n := 1
		if l, ok := req.Input.([]any); ok {
			n = len(l)
		}
		vecs := make([][]float32, n)
		for i := range vecs {
			vecs[i] = []float32{1, 2, 3, 4}
		}
		_ = json.NewEncoder(w).Encode(api.EmbedResponse{Model: req.Model, Embeddings: vecs})
	})
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"version":"0.0.0-fake"}`)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeOllama) setModels(ms ...fakeModel) {
	f.mu.Lock()
	f.models = ms
	f.mu.Unlock()
}

func (f *fakeOllama) setChat(h http.HandlerFunc) {
	f.mu.Lock()
	f.chat = h
	f.mu.Unlock()
}

func (f *fakeOllama) tags(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out struct {
		Models []tagModel `json:"models"`
	}
	for _, m := range f.models {
		t := tagModel{Name: m.Name, Model: m.Name, Digest: m.Digest, Size: 1 << 20,
			Details: api.ModelDetails{Family: m.Family, ParameterSize: "1M", QuantizationLevel: "F32", Format: "gguf"}}
		if f.capsInTags {
			t.Capabilities = m.Caps
		}
		out.Models = append(out.Models, t)
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeOllama) show(w http.ResponseWriter, r *http.Request) {
	f.shows.Add(1)
	var req api.ShowRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.models {
		if m.Name == req.Model {
			info := map[string]any{"general.architecture": "llama", "llama.context_length": m.CtxLen, "llama.embedding_length": m.EmbLen}
			_ = json.NewEncoder(w).Encode(map[string]any{"capabilities": m.Caps, "model_info": info,
				"details": api.ModelDetails{Family: m.Family}})
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, `{"error":"model '%s' not found"}`, req.Model)
}

// answer streams the pieces as NDJSON chat chunks, then a done chunk.
func answer(pieces ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.ChatRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		enc := json.NewEncoder(w)
		for _, p := range pieces {
			_ = enc.Encode(api.ChatResponse{Model: req.Model, Message: api.Message{Role: "assistant", Content: p}})
			w.(http.Flusher).Flush()
		}
		_ = enc.Encode(api.ChatResponse{Model: req.Model, Done: true, DoneReason: "stop",
			Metrics: api.Metrics{EvalCount: len(pieces), PromptEvalCount: 3}})
	}
}

// rawLines writes the lines as the chat stream, flushing after each.
func rawLines(lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for _, l := range lines {
			io.WriteString(w, l+"\n")
			w.(http.Flusher).Flush()
		}
	}
}

func chatModelFake(name string) fakeModel {
	return fakeModel{Name: name, Digest: "sha256:" + strings.Repeat("a", 8) + name, Family: "llama", Caps: []string{"completion"}, CtxLen: 2048}
}

func embedModelFake(name string, dims int) fakeModel {
	return fakeModel{Name: name, Digest: "sha256:e" + name, Family: "bert", Caps: []string{"embedding"}, CtxLen: 512, EmbLen: dims}
}
