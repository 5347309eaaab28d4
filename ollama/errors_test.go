package ollama

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

var update = flag.Bool("update", false, "record the real Ollama's error replies into testdata/errors")

// failureNames name the classes in testdata.
var failureNames = map[failure]string{
	failOther: "other", failModelMissing: "model_missing", failInputTooLong: "input_too_long",
	failUnsupported: "unsupported", failBadRequest: "bad_request", failNoMemory: "no_memory",
	failModelLoad: "model_load", failRunner: "runner", failBusy: "busy", failServer: "server",
}

// classPhrase is what explain says for each class, and nothing else does.
var classPhrase = map[failure]string{
	failModelMissing: "is no longer on", failInputTooLong: "too long for", failUnsupported: "cannot do that",
	failBadRequest: "rejected the request", failNoMemory: "try a smaller model", failModelLoad: "model file may be damaged",
	failRunner: "runner is broken", failBusy: "overloaded", failServer: "failed (HTTP",
}

// recordedReply is one error reply of a real Ollama, kept in testdata.
type recordedReply struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
	Status   int    `json:"status"`
	Body     string `json:"body"`
	Want     string `json:"want"`
}

type recordedFile struct {
	Source  string          `json:"source"`
	Replies []recordedReply `json:"replies"`
}

// replay serves a recorded reply from an httptest server and has the real
// api.Client read it, so the error is exactly the one membrane would get.
func replay(t *testing.T, r recordedReply) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(r.Status)
		fmt.Fprintln(w, r.Body)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := api.NewClient(u, srv.Client())
	switch r.Endpoint {
	case "/api/embed":
		_, err := c.Embed(t.Context(), &api.EmbedRequest{Model: "m", Input: "x"})
		return err
	case "/api/generate":
		return c.Generate(t.Context(), &api.GenerateRequest{Model: "m", Prompt: "x"}, func(api.GenerateResponse) error { return nil })
	}
	return c.Chat(t.Context(), &api.ChatRequest{Model: "m"}, func(api.ChatResponse) error { return nil })
}

// TestErrorClassesRecorded replays every recorded reply in testdata/errors
// (real v0.6.5 replies recorded by TestE2EErrorClasses, and replies of
// other versions with their source in the file) and checks its class and
// what the model is told.
func TestErrorClassesRecorded(t *testing.T) {
	files, _ := filepath.Glob("testdata/errors/*.json")
	if len(files) < 2 {
		t.Fatalf("recorded replies missing: %v", files)
	}
	seen := map[string]bool{}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var f recordedFile
		if err := json.Unmarshal(b, &f); err != nil || f.Source == "" || len(f.Replies) == 0 {
			t.Fatalf("%s: %v (a file must say where its replies came from)", path, err)
		}
		for _, r := range f.Replies {
			t.Run(filepath.Base(path)+"/"+r.Name, func(t *testing.T) {
				err := replay(t, r)
				var se api.StatusError
				if !errors.As(err, &se) || se.StatusCode != r.Status {
					t.Fatalf("replayed as %T %v, want an api.StatusError %d", err, err, r.Status)
				}
				checkClass(t, se, r.Want)
				seen[r.Want] = true
			})
		}
	}
	for k, name := range failureNames {
		if k != failOther && !seen[name] {
			t.Errorf("no recorded reply of class %s", name)
		}
	}
}

func checkClass(t *testing.T, se api.StatusError, want string) {
	t.Helper()
	got := classify(se)
	if failureNames[got] != want {
		t.Errorf("HTTP %d %q: class %s, want %s", se.StatusCode, se.ErrorMessage, failureNames[got], want)
	}
	text := explain(se, "ceo-chat:latest", "gpu-box", 2048)
	for k, phrase := range classPhrase {
		if has := strings.Contains(text, phrase); has != (k == got) {
			t.Errorf("HTTP %d %q (%s) is explained as %q: phrase %q present=%v", se.StatusCode, se.ErrorMessage, failureNames[got], text, phrase, has)
		}
	}
	if !strings.Contains(text, se.ErrorMessage) && got != failModelMissing {
		t.Errorf("the explanation %q drops Ollama's own words %q", text, se.ErrorMessage)
	}
}

// TestClassifyStatusFirst pins the rule that broke with a current Ollama:
// "not found" in a 500 is not a missing model, and a 404 is one whatever
// it says.
func TestClassifyStatusFirst(t *testing.T) {
	for _, tt := range []struct {
		code int
		msg  string
		want failure
	}{
		{500, "error starting llama-server: llama-server binary not found", failRunner},
		{500, "open /models/blobs/sha256-x: file not found", failServer},
		{404, "model \"x\" not found, try pulling it first", failModelMissing},
		{404, "", failModelMissing},
		{400, "context window exceeded and something else", failBadRequest},
		{500, "the input length exceeds the context length", failServer},
		{400, "the input length exceeds the context length", failInputTooLong},
		{503, "server busy, please try again.  maximum pending requests exceeded", failBusy},
		{502, "bad gateway", failServer},
		{418, "", failBadRequest},
		{302, "", failOther},
	} {
		if got := classify(api.StatusError{StatusCode: tt.code, ErrorMessage: tt.msg}); got != tt.want {
			t.Errorf("HTTP %d %q: %s, want %s", tt.code, tt.msg, failureNames[got], failureNames[tt.want])
		}
	}
	for _, p := range replyPatterns {
		if p.seen == "" || p.text != strings.ToLower(p.text) {
			t.Errorf("pattern %q: no versions noted, or not lower case", p.text)
		}
	}
}

// TestE2EErrorClasses makes a real Ollama give every error reply it can be
// made to give, and checks each reply's class. With -update it records
// them into testdata/errors/ollama-<version>.json for the replay test.
func TestE2EErrorClasses(t *testing.T) {
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			srv := ollamatest.StartWith(t, &ollamatest.Options{Binary: v.Binary})
			broken := ollamatest.ChatModel()
			broken.File.Set("llama.embedding_length", uint32(64)) // the tensors say 32
			srv.Create(t, "broken", broken)
			srv.Create(t, "plain", ollamatest.ChatModel())
			srv.Create(t, "embedder", ollamatest.EmbedModel(16))
			srv.Create(t, "gone", ollamatest.ChatModel())
			srv.Delete(t, "gone")
			c := srv.Client()
			no := false
			msgs := []api.Message{{Role: "user", Content: "hi"}}
			chat := func(req *api.ChatRequest) error {
				req.Stream = &no
				if req.Messages == nil {
					req.Messages = msgs
				}
				return c.Chat(t.Context(), req, func(api.ChatResponse) error { return nil })
			}
			cases := []struct {
				name, endpoint, want string
				do                   func() error
			}{
				{"chat a deleted model", "/api/chat", "model_missing", func() error { return chat(&api.ChatRequest{Model: "gone"}) }},
				{"embed with a deleted model", "/api/embed", "model_missing", func() error {
					_, err := c.Embed(t.Context(), &api.EmbedRequest{Model: "gone", Input: "x"})
					return err
				}},
				{"chat a model that cannot load", "/api/chat", "model_load", func() error { return chat(&api.ChatRequest{Model: "broken"}) }},
				{"chat an embedding model", "/api/chat", "unsupported", func() error { return chat(&api.ChatRequest{Model: "embedder"}) }},
				{"generate with an embedding model", "/api/generate", "unsupported", func() error {
					return c.Generate(t.Context(), &api.GenerateRequest{Model: "embedder", Prompt: "x", Stream: &no}, func(api.GenerateResponse) error { return nil })
				}},
				{"tools to a model without tools", "/api/chat", "unsupported", func() error {
					return chat(&api.ChatRequest{Model: "plain", Tools: api.Tools{{Type: "function", Function: api.ToolFunction{Name: "x"}}}})
				}},
				{"an option of the wrong type", "/api/chat", "bad_request", func() error {
					return chat(&api.ChatRequest{Model: "plain", Options: map[string]any{"temperature": "hot"}})
				}},
				{"a format that is not json or a schema", "/api/chat", "bad_request", func() error {
					return chat(&api.ChatRequest{Model: "plain", Format: json.RawMessage(`"xml"`)})
				}},
				{"embed past the context without truncation", "/api/embed", "input_too_long", func() error {
					_, err := c.Embed(t.Context(), &api.EmbedRequest{Model: "embedder", Input: strings.Repeat("word ", 5000), Truncate: &no})
					return err
				}},
			}
			var rec recordedFile
			rec.Source = fmt.Sprintf("Ollama %s (%s), recorded by TestE2EErrorClasses -update", v.Version, v.Binary)
			for _, tc := range cases {
				err := tc.do()
				var se api.StatusError
				if !errors.As(err, &se) {
					t.Errorf("%s: %T %v, want an api.StatusError", tc.name, err, err)
					continue
				}
				checkClass(t, se, tc.want)
				body, _ := json.Marshal(map[string]string{"error": se.ErrorMessage})
				rec.Replies = append(rec.Replies, recordedReply{Name: tc.name, Endpoint: tc.endpoint, Status: se.StatusCode, Body: string(body), Want: tc.want})
			}
			if *update && !t.Failed() {
				rec.Source = strings.Replace(rec.Source, v.Binary, "built with `go install github.com/ollama/ollama@"+v.Version+"`", 1)
				b, _ := json.MarshalIndent(rec, "", "  ")
				path := filepath.Join("testdata", "errors", "ollama-"+v.Version+".json")
				if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.ContainsFunc(rec.Replies, func(r recordedReply) bool { return r.Want == "model_missing" }) {
				t.Error("no deleted-model reply came back")
			}
		})
	}
}

// TestBrokenRunnerIsNotAMissingModel sends the reply of a v0.33 host with a
// broken runner (issue 18) through a chat tool: the model is told the
// host's runner is broken, never that the model was deleted.
func TestBrokenRunnerIsNotAMissingModel(t *testing.T) {
	f := newFake(t, chatModelFake("ceo-chat:latest"))
	f.setChat(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintln(w, `{"error":"error starting llama-server: llama-server binary not found in /usr/lib/ollama"}`)
	})
	m, r := newModels(t, Config{Hosts: []string{f.URL}})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	res := call(t, r, "chat_ceo_chat", map[string]any{"prompt": "hi"})
	txt := res.TextOf()
	if !res.IsError || strings.Contains(txt, "no longer on") || !strings.Contains(txt, "runner is broken") || !strings.Contains(txt, "binary not found") {
		t.Errorf("broken runner: %s", txt)
	}
	// Allow control: a 404 from the same host is a missing model.
	f.setChat(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, `{"error":"model \"ceo-chat:latest\" not found, try pulling it first"}`)
	})
	if res := call(t, r, "chat_ceo_chat", map[string]any{"prompt": "hi"}); !res.IsError || !strings.Contains(res.TextOf(), "is no longer on") {
		t.Errorf("404: %s", res.TextOf())
	}
}

// FuzzPlainReply checks the error-body shortener: text that is not an HTML
// page passes unchanged; a page becomes a short "an HTML page" line in
// valid UTF-8, whatever its bytes.
func FuzzPlainReply(f *testing.F) {
	f.Add("404 page not found")
	f.Add("<!DOCTYPE HTML>\n<html><head><title>Error response</title></head></html>")
	f.Add("  <html><TITLE> İİİ </TITLE>")
	f.Add("<html><title></title>")
	f.Fuzz(func(t *testing.T, msg string) {
		got := plainReply(msg)
		low := strings.ToLower(strings.TrimSpace(msg))
		page := strings.HasPrefix(low, "<!doctype html") || strings.HasPrefix(low, "<html")
		switch {
		case !page && got != msg:
			t.Fatalf("plainReply(%q) = %q; want it unchanged", msg, got)
		case page && (!strings.HasPrefix(got, "an HTML page") || len(got) > len("an HTML page: ")+80+len("…") || !utf8.ValidString(got)):
			t.Fatalf("plainReply(%q) = %q", msg, got)
		}
	})
}

// TestDescribeBackendErr: a backend's faults are told in its own words,
// never with Ollama's advice; an Ollama host's keep theirs (the control).
func TestDescribeBackendErr(t *testing.T) {
	eof := &url.Error{Op: "Post", URL: "http://h:1/v1/chat/completions", Err: io.EOF}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{eof, "the connection was closed (did the server stop or restart?)"},
		{refused, "connection refused (is the server running, and on this port?)"},
		{api.StatusError{StatusCode: 401, ErrorMessage: "Unauthorized"}, "HTTP 401 (Unauthorized): the server refused the API key set for this backend"},
		{api.StatusError{StatusCode: 404, ErrorMessage: "<html><title>Not Found</title></html>"}, "HTTP 404 (an HTML page: Not Found) for GET models: no OpenAI-compatible API at this URL"},
	} {
		got := describeBackendErr(tt.err, true)
		if got != tt.want || strings.Contains(got, "Ollama") || strings.Contains(got, "ollama") {
			t.Errorf("describeBackendErr(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if got := describeHostErr(eof); !strings.Contains(got, "did Ollama stop or restart?") {
		t.Errorf("an Ollama host's closed connection: %q", got)
	}
	if got := explainFrom("the OpenAI-compatible server", eof, "m", "friend (http://h:1/v1)", 0); strings.Contains(got, "Ollama") || !strings.Contains(got, "did the server stop") {
		t.Errorf("a backend call whose connection closed: %q", got)
	}
}
