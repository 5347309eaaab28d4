package ollama

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/membrane-mcp/membrane/calls"
)

func TestDecodeChat(t *testing.T) {
	tests := []struct {
		name          string
		raw           string
		generic, sys  bool
		wantErr       string
		wantMessages  int
		wantFormatLen bool
	}{
		{name: "prompt", raw: `{"prompt":"hi"}`},
		{name: "messages", raw: `{"messages":[{"role":"user","content":"hi"}]}`},
		{name: "empty", raw: `{}`, wantErr: "give a \"prompt\""},
		{name: "null", raw: `null`, wantErr: "give a \"prompt\""},
		{name: "unknown field", raw: `{"prompt":"hi","temperature":1}`, wantErr: "unknown field"},
		{name: "bad role", raw: `{"messages":[{"role":"god","content":"x"}]}`, wantErr: "messages[0].role"},
		{name: "images on assistant", raw: `{"messages":[{"role":"assistant","content":"x","images":["a"]}]}`, wantErr: "only user messages"},
		{name: "model on own tool", raw: `{"model":"x","prompt":"hi"}`, wantErr: "drop \"model\""},
		{name: "generic without model", raw: `{"prompt":"hi"}`, generic: true, wantErr: "\"model\" is required"},
		{name: "generic", raw: `{"model":"x","prompt":"hi"}`, generic: true},
		{name: "fixed system", raw: `{"prompt":"hi","system":"s"}`, sys: true, wantErr: "fixed system prompt"},
		{name: "format json", raw: `{"prompt":"hi","format":"json"}`},
		{name: "format schema", raw: `{"prompt":"hi","format":{"type":"object"}}`},
		{name: "format other", raw: `{"prompt":"hi","format":"xml"}`, wantErr: "format must be"},
		{name: "format number", raw: `{"prompt":"hi","format":3}`, wantErr: "format must be"},
		{name: "think bool", raw: `{"prompt":"hi","think":true}`},
		{name: "think level", raw: `{"prompt":"hi","think":"high"}`},
		{name: "think bad", raw: `{"prompt":"hi","think":"max"}`, wantErr: "think must be"},
		{name: "trailing", raw: `{"prompt":"hi"} {}`, wantErr: "trailing"},
		{name: "not an object", raw: `[1]`, wantErr: "invalid arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeChat(json.RawMessage(tt.raw), tt.generic, tt.sys)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckOptions(t *testing.T) {
	mod := &model{Name: "m", ContextLength: 2048}
	tests := []struct {
		opts    string
		wantErr string
	}{
		{`{"temperature":0.2,"num_ctx":1024,"stop":["\n"],"seed":7}`, ""},
		{`{"temprature":1}`, "unknown option \"temprature\"; known options: "},
		{`{"num_ctx":4096}`, "more than m's context length of 2048"},
		{`{"top_k":1.5}`, "whole number"},
		{`{"top_p":2}`, "between 0 and 1"},
		{`{"temperature":"hot"}`, "must be a number"},
		{`{"stop":"x"}`, "array of strings"},
		{`{"stop":[1]}`, "array of strings"},
	}
	for _, tt := range tests {
		var opts map[string]any
		if err := json.Unmarshal([]byte(tt.opts), &opts); err != nil {
			t.Fatal(err)
		}
		out, err := checkOptions(opts, mod)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.opts, err)
			} else if _, ok := out["seed"].(int64); !ok {
				t.Errorf("%s: seed not an integer: %T", tt.opts, out["seed"])
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want %q", tt.opts, err, tt.wantErr)
		}
	}
}

func TestDecodeEmbed(t *testing.T) {
	for raw, want := range map[string]string{
		`{"input":"a"}`:               "",
		`{"input":["a","b"]}`:         "",
		`{"input":[]}`:                "empty array",
		`{"input":""}`:                "input[0] is empty",
		`{}`:                          "\"input\" is required",
		`{"input":5}`:                 "string or an array",
		`{"input":["a",3]}`:           "string or an array",
		`{"input":"a","dims":3}`:      "unknown field",
		`{"input":"a","model":"x"}`:   "drop \"model\"",
		`{"input":"a","summary":"y"}`: "invalid arguments",
	} {
		_, _, err := decodeEmbed(json.RawMessage(raw), false)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: error %v, want %q", raw, err, want)
		}
	}
}

var pngBytes = []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("\x00", 64))

func TestLoadImage(t *testing.T) {
	ws := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "plot.png"), pngBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "notes.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.png"), pngBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.png"), filepath.Join(ws, "link.png")); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(pngBytes)
	tests := []struct {
		in, ws, wantErr string
	}{
		{in: "plot.png", ws: ws},
		{in: "./plot.png", ws: ws},
		{in: filepath.Join(ws, "plot.png"), ws: ws},
		{in: b64, ws: ""},
		{in: "data:image/png;base64," + b64, ws: ""},
		{in: "data:image/png," + b64, wantErr: "not a base64 one"},
		{in: "data:image/png;base64,!!!", wantErr: "bad base64"},
		{in: "notes.txt", ws: ws, wantErr: "not a PNG"},
		{in: "missing.png", ws: ws, wantErr: "not found"},
		{in: "../" + filepath.Base(outside) + "/secret.png", ws: ws, wantErr: "outside the session workspace"},
		{in: filepath.Join(outside, "secret.png"), ws: ws, wantErr: "outside the session workspace"},
		{in: "link.png", ws: ws, wantErr: "outside the session workspace"},
		{in: "plot.png", ws: "", wantErr: "no workspace"},
		{in: "", ws: ws, wantErr: "empty"},
		{in: ".", ws: ws, wantErr: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			b, err := loadImage(t.Context(), tt.ws, tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != string(pngBytes) {
					t.Fatal("wrong bytes")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseHost(t *testing.T) {
	t.Setenv("OLLAMA_HOST", "")
	for in, want := range map[string]string{
		"":                     "http://127.0.0.1:11434",
		"0.0.0.0":              "http://0.0.0.0:11434",
		"myhost":               "http://myhost:11434",
		"myhost:1234":          "http://myhost:1234",
		"http://myhost":        "http://myhost:80",
		"https://myhost":       "https://myhost:443",
		"http://h:11434/proxy": "http://h:11434/proxy",
		"[::1]:5000":           "http://[::1]:5000",
		`"127.0.0.1:9"`:        "http://127.0.0.1:9",
	} {
		u, err := ParseHost(in)
		if err != nil || u.String() != want {
			t.Errorf("ParseHost(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"ftp://h", "h:99999", "h:abc", "http://a b:1"} {
		if _, err := ParseHost(bad); err == nil {
			t.Errorf("ParseHost(%q) accepted it", bad)
		}
	}
	t.Setenv("OLLAMA_HOST", "elsewhere:7")
	if u, _ := ParseHost(""); u.String() != "http://elsewhere:7" {
		t.Errorf("ParseHost(\"\") with OLLAMA_HOST = %v", u)
	}
	if _, err := New(Config{Hosts: []string{"ftp://x"}}, calls.NewRouter(nil), nil); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("New with a bad host: %v", err)
	}
}

// FuzzDecodeChat feeds arbitrary tool arguments through the chat decoder and
// request builder: they must never panic, and whatever they accept must be
// a request with at least one message for the discovered model only.
func FuzzDecodeChat(f *testing.F) {
	for _, s := range []string{`{"prompt":"hi"}`, `{"messages":[{"role":"user","content":"x","images":["aGk="]}]}`,
		`{"prompt":"x","options":{"num_ctx":1e308,"stop":["a"]}}`, `{"prompt":"x","format":{"type":"object"},"think":"low"}`,
		`{"model":"../../x","prompt":"y"}`, `{"prompt":"x","images":["../../etc/passwd"]}`, `nul`, `{"prompt":"x","options":{"seed":-1e20}}`} {
		f.Add([]byte(s), true)
	}
	ws := f.TempDir()
	os.WriteFile(filepath.Join(ws, "a.png"), pngBytes, 0o644)
	m := &Models{cfg: Config{}}
	m.cfg.withDefaults()
	mod := &model{Name: "m:latest", ContextLength: 2048, Capabilities: []string{capCompletion, capVision, capThinking}}
	f.Fuzz(func(t *testing.T, raw []byte, generic bool) {
		a, err := decodeChat(raw, generic, false)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid arguments") {
				t.Fatalf("error not worded for the model: %v", err)
			}
			return
		}
		sess := calls.NewSession("")
		sess.SetWorkspace(ws)
		creq, err := m.buildChat(t.Context(), &calls.Request{Session: sess}, mod, nil, a)
		if err != nil {
			return
		}
		if creq.Model != "m:latest" || len(creq.Messages) == 0 {
			t.Fatalf("built %+v", creq)
		}
		if _, err := json.Marshal(creq); err != nil {
			t.Fatalf("request does not marshal: %v", err)
		}
	})
}

// FuzzDecodeEmbed checks the embed decoder never panics and accepts only
// non-empty inputs.
func FuzzDecodeEmbed(f *testing.F) {
	for _, s := range []string{`{"input":"a"}`, `{"input":["a","b"],"summary":true}`, `{"input":[]}`, `{"input":{"a":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, inputs, err := decodeEmbed(raw, false)
		if err != nil {
			return
		}
		if len(inputs) == 0 || len(inputs) > maxEmbedInputs {
			t.Fatalf("accepted %d inputs", len(inputs))
		}
		for _, s := range inputs {
			if s == "" {
				t.Fatal("accepted an empty input")
			}
		}
	})
}

// FuzzLoadImage checks that no images entry reads a file outside the
// workspace.
func FuzzLoadImage(f *testing.F) {
	root := f.TempDir()
	ws := filepath.Join(root, "ws")
	os.MkdirAll(ws, 0o755)
	os.WriteFile(filepath.Join(ws, "in.png"), pngBytes, 0o644)
	secret := append([]byte("\x89PNG\r\n\x1a\nSECRET"), pngBytes...)
	os.WriteFile(filepath.Join(root, "out.png"), secret, 0o644)
	os.Symlink("../out.png", filepath.Join(ws, "l.png"))
	for _, s := range []string{"in.png", "../out.png", "l.png", "/etc/passwd", filepath.Join(root, "out.png"), "ws/../../out.png", "data:image/png;base64,AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := loadImage(t.Context(), ws, s)
		if err == nil && strings.Contains(string(b), "SECRET") {
			t.Fatalf("%q read a file outside the workspace", s)
		}
	})
}

// FuzzParseTags checks that any /api/tags body decodes without a panic and
// yields only names membrane can serve.
func FuzzParseTags(f *testing.F) {
	f.Add([]byte(`{"models":[{"name":"a:1","digest":"x","capabilities":["completion"]}]}`))
	f.Add([]byte(`{"models":[{"model":"b"},{"name":"bad name"}]}`))
	f.Add([]byte(`{"models":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tags, err := parseTags(body)
		if err != nil {
			return
		}
		for _, tg := range tags {
			if !validModelName(tg.Name) {
				t.Fatalf("kept %q", tg.Name)
			}
			if n := toolName(prefixChat, tg.Name); !calls.NamePattern.MatchString(n) {
				t.Fatalf("%q named %q", tg.Name, n)
			}
		}
	})
}

func TestToolSpecTimeout(t *testing.T) {
	var fromYAML []ToolSpec
	if err := yaml.Unmarshal([]byte("- tool: slow\n  model: big:70b\n  timeout: 20m\n"), &fromYAML); err != nil {
		t.Fatal(err)
	}
	var fromJSON []ToolSpec
	if err := json.Unmarshal([]byte(`[{"tool":"slow","model":"big:70b","timeout":"20m"}]`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	for _, specs := range [][]ToolSpec{fromYAML, fromJSON} {
		if len(specs) != 1 || time.Duration(specs[0].Timeout) != 20*time.Minute {
			t.Fatalf("decoded %+v", specs)
		}
	}
	if err := json.Unmarshal([]byte(`[{"tool":"x","model":"m","timeout":"soon"}]`), &fromJSON); err == nil || !strings.Contains(err.Error(), "duration such as") {
		t.Errorf("bad timeout: %v", err)
	}
	b, _ := json.Marshal(fromYAML[0])
	if !strings.Contains(string(b), `"timeout":"20m0s"`) {
		t.Errorf("marshalled %s", b)
	}

	f := newFake(t, chatModelFake("big:70b"))
	m, r := newModels(t, Config{Hosts: []string{f.URL}, CallTimeout: time.Minute, Tools: fromYAML})
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c, _ := r.Lookup("slow"); c.Timeout != 20*time.Minute {
		t.Errorf("slow's timeout = %v", c.Timeout)
	}
	if c, _ := r.Lookup("chat_big_70b"); c.Timeout != time.Minute {
		t.Errorf("chat_big_70b's timeout = %v", c.Timeout)
	}
}

// keysOf walks raw JSON and calls f with the path of each object (""
// for the top level, "messages[]" for an element of messages) and its keys
// in order, duplicates kept.
func keysOf(t *testing.T, raw []byte, f func(path string, keys []string)) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['):
			for dec.More() {
				if err := walk(path + "[]"); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('{'):
			var keys []string
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				keys = append(keys, k.(string))
				sub := k.(string)
				if path != "" {
					sub = path + "." + sub
				}
				if err := walk(sub); err != nil {
					return err
				}
			}
			f(path, keys)
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(""); err != nil {
		t.Fatalf("accepted arguments that are not JSON: %v", err)
	}
}

// FuzzExactArgs checks the property of exact decoding in the chat and
// embed tools: accepted arguments name only declared fields, spelled as the
// schema spells them, and no object in them holds a key twice.
func FuzzExactArgs(f *testing.F) {
	for _, s := range []string{`{"prompt":"hi"}`, `{"Prompt":"hi"}`, `{"prompt":"a","prompt":"b"}`, `{"PROMPT":"hi"}`,
		`{"messages":[{"role":"user","content":"x"}]}`, `{"messages":[{"ROLE":"user","content":"x"}]}`,
		`{"prompt":"x","options":{"seed":1,"seed":2}}`, `{"model":"m","MODEL":"n","prompt":"x"}`, `{"input":"a","Input":"b"}`,
		`{"input":["a"],"summary":true,"SUMMARY":false}`, `{"prompt":"x","format":{"type":"object","Type":"x"}}`, `{"prompt":"ſ"}`} {
		f.Add([]byte(s), false)
	}
	chatFields := map[string]bool{"model": true, "prompt": true, "messages": true, "system": true, "images": true, "format": true, "think": true, "options": true, "truncate": true}
	msgFields := map[string]bool{"role": true, "content": true, "images": true}
	embedFields := map[string]bool{"model": true, "input": true, "summary": true, "truncate": true}
	check := func(t *testing.T, raw []byte, top map[string]bool) {
		keysOf(t, raw, func(path string, keys []string) {
			seen := map[string]bool{}
			for _, k := range keys {
				if seen[k] {
					t.Fatalf("accepted %s with %q twice in %q", raw, k, path)
				}
				seen[k] = true
				switch {
				case path == "" && !top[k]:
					t.Fatalf("accepted %s with the undeclared field %q", raw, k)
				case path == "messages[]" && !msgFields[k]:
					t.Fatalf("accepted %s with the undeclared message field %q", raw, k)
				}
			}
		})
	}
	f.Fuzz(func(t *testing.T, raw []byte, generic bool) {
		if _, err := decodeChat(raw, generic, false); err == nil && len(bytes.TrimSpace(raw)) > 0 && string(bytes.TrimSpace(raw)) != "null" {
			check(t, raw, chatFields)
		}
		if _, _, err := decodeEmbed(raw, generic); err == nil {
			check(t, raw, embedFields)
		}
	})
}
