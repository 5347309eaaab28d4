package ollamatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/ollama/ollamatest/gguf"
)

// Model is what `ollama create` imports: a GGUF file plus the template,
// system prompt and parameters Ollama stores beside it. The builders return
// ready models; change a field to vary one (say, Parameters["num_ctx"]).
type Model struct {
	// File is the model file. The same File encodes to the same bytes, so
	// creating it twice stores one blob.
	File *gguf.File
	// Template is the chat template (Go text/template, Ollama's dialect).
	// Empty means Ollama's default, "{{ .Prompt }}".
	Template string
	// System is the default system prompt. Empty means none.
	System string
	// Parameters are the model's default options (num_predict, stop, …).
	// The builders set num_thread to 1: these models are far too small to
	// gain from threads, and on a busy machine ggml threads spin-wait on
	// each other (a scripted reply took 500 ms with 2 threads on 2 loaded
	// cores, 55 ms with 1).
	Parameters map[string]any
	// Parser names one of Ollama's built-in output parsers ("harmony",
	// "qwen3-thinking", …), as PARSER in a Modelfile (Ollama v0.12 and
	// later; older versions ignore it). Empty means none: Ollama parses
	// the output by the template.
	Parser string
}

// CreateModel uploads m's file as a blob and creates model name from it
// through /api/create, replacing any model of that name. A name without a
// tag gets ":latest", as with `ollama create`.
func (s *Server) CreateModel(ctx context.Context, name string, m Model) error {
	if m.File == nil {
		return fmt.Errorf("ollamatest: create %s: the model has no File", name)
	}
	b, err := m.File.MarshalBinary()
	if err != nil {
		return fmt.Errorf("ollamatest: create %s: %w", name, err)
	}
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
	if err := s.client.CreateBlob(ctx, digest, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("ollamatest: create %s: upload blob: %w", name, err)
	}
	stream := false
	req := &api.CreateRequest{
		Model:      name,
		Stream:     &stream,
		Files:      map[string]string{"model.gguf": digest},
		Template:   m.Template,
		System:     m.System,
		Parameters: m.Parameters,
		Parser:     m.Parser,
	}
	if err := s.client.Create(ctx, req, func(api.ProgressResponse) error { return nil }); err != nil {
		return fmt.Errorf("ollamatest: create %s: %w", name, err)
	}
	if arch, _ := m.File.Get("general.architecture"); arch != nil {
		if _, vision := m.File.Get(fmt.Sprint(arch) + ".vision.block_count"); vision {
			if err := s.visionAsModel(digest); err != nil {
				return fmt.Errorf("ollamatest: create %s: %w", name, err)
			}
		}
	}
	return nil
}

// visionAsModel works around Ollama v0.6.5's create, which files any GGUF
// with a <arch>.vision.block_count key as a projector layer, while /api/show
// looks for that key in the model layer to report vision. It rewrites the
// media type of that blob's layer in every manifest of the local store;
// Ollama reads manifests from disk on each request.
func (s *Server) visionAsModel(digest string) error {
	const projector, model = "application/vnd.ollama.image.projector", "application/vnd.ollama.image.model"
	root := filepath.Join(s.ModelsDir, "manifests")
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var man map[string]any
		if json.Unmarshal(b, &man) != nil {
			return nil
		}
		layers, _ := man["layers"].([]any)
		changed := false
		for _, l := range layers {
			if l, ok := l.(map[string]any); ok && l["digest"] == digest && l["mediaType"] == projector {
				l["mediaType"] = model
				changed = true
			}
		}
		if !changed {
			return nil
		}
		out, err := json.Marshal(man)
		if err != nil {
			return err
		}
		return os.WriteFile(path, out, 0o644)
	})
}

// DeleteModel removes model name from the server.
func (s *Server) DeleteModel(ctx context.Context, name string) error {
	if err := s.client.Delete(ctx, &api.DeleteRequest{Model: name}); err != nil {
		return fmt.Errorf("ollamatest: delete %s: %w", name, err)
	}
	return nil
}

// Create creates model name on s from m, failing t on error.
func (s *Server) Create(t TB, name string, m Model) {
	t.Helper()
	if err := s.CreateModel(context.Background(), name, m); err != nil {
		t.Fatal(err)
	}
}

// Delete removes model name from s, failing t on error.
func (s *Server) Delete(t TB, name string) {
	t.Helper()
	if err := s.DeleteModel(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

// Token types of a llama (SentencePiece) vocabulary, as GGUF stores them.
const (
	tokNormal      int32 = 1 // "▁" stands for a space
	tokUnknown     int32 = 2
	tokControl     int32 = 3 // never printed; markers in prompts
	tokUserDefined int32 = 4 // printed verbatim, matched whole in prompts
	tokByte        int32 = 6 // <0x00> … <0xFF>
)

type token struct {
	text string
	typ  int32
}

// baseVocab is <unk>, <s>, </s> and the 256 byte tokens, so any prompt
// tokenizes.
const (
	tokUnk = 0
	tokBOS = 1
	tokEOS = 2
)

func baseVocab() []token {
	v := []token{{"<unk>", tokUnknown}, {"<s>", tokControl}, {"</s>", tokControl}}
	for b := range 256 {
		v = append(v, token{fmt.Sprintf("<0x%02X>", b), tokByte})
	}
	return v
}

// llama describes a small llama-architecture network.
type llama struct {
	name   string
	vocab  []token
	embd   int // n_embd; divisible by heads, with an even head size
	ff     int // n_ff
	heads  int
	layers int
	ctx    int
	// weight returns the data of a matrix tensor (not a norm), or nil for
	// small seeded random values.
	weight func(name string, dims []uint64) []float32
}

// file builds the GGUF file of l.
func (l llama) file() *gguf.File {
	if l.embd%l.heads != 0 || (l.embd/l.heads)%2 != 0 {
		panic(fmt.Sprintf("ollamatest: n_embd %d must split into %d heads of even size", l.embd, l.heads))
	}
	f := &gguf.File{}
	u := func(n int) uint32 { return uint32(n) }
	f.Set("general.architecture", "llama")
	f.Set("general.name", l.name)
	f.Set("general.file_type", uint32(0)) // all F32
	f.Set("llama.context_length", u(l.ctx))
	f.Set("llama.embedding_length", u(l.embd))
	f.Set("llama.block_count", u(l.layers))
	f.Set("llama.feed_forward_length", u(l.ff))
	f.Set("llama.attention.head_count", u(l.heads))
	f.Set("llama.attention.head_count_kv", u(l.heads))
	f.Set("llama.attention.layer_norm_rms_epsilon", float32(1e-5))
	f.Set("llama.rope.dimension_count", u(l.embd/l.heads))
	f.Set("tokenizer.ggml.model", "llama")
	texts := make([]string, len(l.vocab))
	types := make([]int32, len(l.vocab))
	scores := make([]float32, len(l.vocab))
	for i, t := range l.vocab {
		texts[i], types[i], scores[i] = t.text, t.typ, -float32(i)
	}
	f.Set("tokenizer.ggml.tokens", texts)
	f.Set("tokenizer.ggml.scores", scores)
	f.Set("tokenizer.ggml.token_type", types)
	f.Set("tokenizer.ggml.bos_token_id", uint32(tokBOS))
	f.Set("tokenizer.ggml.eos_token_id", uint32(tokEOS))
	f.Set("tokenizer.ggml.unknown_token_id", uint32(tokUnk))
	f.Set("tokenizer.ggml.add_bos_token", false)
	f.Set("tokenizer.ggml.add_eos_token", false)

	rng := rand.New(rand.NewPCG(0x6d656d62, uint64(len(l.vocab)*1000003+l.embd)))
	e, v, ff := uint64(l.embd), uint64(len(l.vocab)), uint64(l.ff)
	ones := func(n uint64) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = 1
		}
		return d
	}
	matrix := func(name string, dims ...uint64) {
		d := l.weight(name, dims)
		if d == nil {
			d = make([]float32, dims[0]*dims[1])
			scale := 1 / math.Sqrt(float64(dims[0]))
			for i := range d {
				d[i] = float32(rng.NormFloat64() * scale)
			}
		}
		f.AddTensor(name, d, dims...)
	}
	matrix("token_embd.weight", e, v)
	for i := range l.layers {
		p := fmt.Sprintf("blk.%d.", i)
		f.AddTensor(p+"attn_norm.weight", ones(e), e)
		matrix(p+"attn_q.weight", e, e)
		matrix(p+"attn_k.weight", e, e)
		matrix(p+"attn_v.weight", e, e)
		matrix(p+"attn_output.weight", e, e)
		f.AddTensor(p+"ffn_norm.weight", ones(e), e)
		matrix(p+"ffn_gate.weight", e, ff)
		matrix(p+"ffn_up.weight", e, ff)
		matrix(p+"ffn_down.weight", ff, e)
	}
	f.AddTensor("output_norm.weight", ones(e), e)
	matrix("output.weight", e, v)
	return f
}

func random(string, []uint64) []float32 { return nil }

// chatTemplate renders the system prompt and each message's content.
const chatTemplate = `{{ if .System }}{{ .System }}
{{ end }}{{ range .Messages }}{{ .Content }}
{{ end }}`

// ChatModel returns a tiny llama with seeded random weights (n_embd 32, two
// heads, one block). It answers any chat with fluent gibberish, up to 24
// tokens (Parameters["num_predict"]), which is what plumbing, streaming and
// cancellation tests need. /api/show reports [completion].
func ChatModel() Model {
	l := llama{name: "membrane-test-chat", vocab: baseVocab(), embd: 32, ff: 64, heads: 2, layers: 1, ctx: 2048, weight: random}
	return Model{File: l.file(), Template: chatTemplate, Parameters: map[string]any{"num_predict": 24, "num_thread": 1}}
}

// EmbedModel returns a tiny llama embedding model whose vectors have dim
// values: llama.pooling_type is set (mean), so /api/show reports
// [embedding] and /api/embed answers. dim must be a positive even number.
func EmbedModel(dim int) Model {
	if dim <= 0 || dim%2 != 0 {
		panic(fmt.Sprintf("ollamatest: EmbedModel(%d): dim must be a positive even number", dim))
	}
	l := llama{name: "membrane-test-embed", vocab: baseVocab(), embd: dim, ff: 16, heads: 1, layers: 1, ctx: 2048, weight: random}
	f := l.file()
	f.Set("llama.pooling_type", uint32(1))
	return Model{File: f, Parameters: map[string]any{"num_thread": 1}}
}

// VisionModel returns a chat model that reports [completion vision] in
// /api/show, through the key llama.vision.block_count. It has no vision
// projector: text chat works as with [ChatModel], but a request with images
// fails inside Ollama. Use it to test discovery and registration; test the
// image path against a fake.
func VisionModel() Model {
	m := ChatModel()
	m.File.Set("general.name", "membrane-test-vision")
	m.File.Set("llama.vision.block_count", uint32(1))
	return m
}
