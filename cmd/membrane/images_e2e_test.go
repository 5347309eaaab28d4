package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// onePixelPNG is a valid 1x1 PNG.
const onePixelPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

// imageProxy sits in front of a real Ollama and records the images of each
// /api/chat request that reaches it.
type imageProxy struct {
	*httptest.Server
	mu     sync.Mutex
	images [][]byte
}

func newImageProxy(t *testing.T, target string) *imageProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &imageProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/chat" {
			body, _ := io.ReadAll(r.Body)
			var req struct {
				Messages []struct {
					Images [][]byte `json:"images"`
				} `json:"messages"`
			}
			if json.Unmarshal(body, &req) == nil {
				p.mu.Lock()
				for _, m := range req.Messages {
					p.images = append(p.images, m.Images...)
				}
				p.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *imageProxy) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.images
	p.images = nil
	return out
}

func threadsOf(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestVisionWorkspacePathsBinary attacks the image paths of a vision call
// from the sandbox, through the real binary over stdio, with a real Ollama
// behind: a FIFO, links out of the workspace, a device, a huge sparse file.
// Each is refused at once with an error that does not reveal the host
// workspace; a real PNG, by relative path and by /workspace path, reaches
// Ollama intact; a burst of FIFO calls does not grow membrane's threads;
// and after a FIFO call, end of input still shuts membrane down cleanly
// with the workspace removed.
func TestVisionWorkspacePathsBinary(t *testing.T) {
	bin := binary(t)
	for _, v := range ollamatest.Versions(t) {
		t.Run(v.Name, func(t *testing.T) {
			srv := v.Start(t)
			srv.Create(t, "eyes", ollamatest.VisionModel())
			proxy := newImageProxy(t, srv.URL)
			cs, cmd, tmp := launch(t, bin, []string{"--ollama-host", proxy.URL, "--ollama-refresh", "200ms"}, nil)
			closed := false
			t.Cleanup(func() {
				if !closed {
					cs.Close()
				}
			})
			deadline := time.Now().Add(60 * time.Second)
			for !slices.Contains(toolSet(t, cs), "chat_eyes") {
				if time.Now().After(deadline) {
					t.Fatalf("no chat_eyes tool; tools %v", toolSet(t, cs))
				}
				time.Sleep(100 * time.Millisecond)
			}

			res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "mkfifo pipe.png && ln -s /etc/hostname out.png && ln -s /dev/zero zero.png && " +
				"ln -s ../.. up && truncate -s 60M huge.png && mkdir dir.png && echo " + onePixelPNG + " | base64 -d > real.png && pwd"})
			sandboxWorks(t, res, text)
			if res.IsError || !strings.Contains(text, "/workspace") {
				t.Fatalf("setting up the workspace: %s", text)
			}
			png, _ := base64.StdEncoding.DecodeString(onePixelPNG)

			vision := func(img string) (bool, string) {
				t.Helper()
				res, text := mcptest.CallText(t, cs, "chat_eyes", map[string]any{"prompt": "What is this?", "images": []string{img}, "options": map[string]any{"num_predict": 2}})
				return res.IsError, text
			}
			for _, tt := range []struct{ img, want string }{
				{"pipe.png", "is not a regular file"},
				{"/workspace/pipe.png", "is not a regular file"},
				{"dir.png", "is not a regular file"},
				{"out.png", "outside the session workspace"},
				{"zero.png", "outside the session workspace"},
				{"up/etc/hostname", "outside the session workspace"},
				{"../../etc/hostname", "outside the session workspace"},
				{"/etc/hostname", "outside the session workspace"},
				{"huge.png", "larger than 20 MiB"},
			} {
				isErr, text := vision(tt.img)
				if !isErr || !strings.Contains(text, "images[0]") || !strings.Contains(text, tt.want) {
					t.Errorf("%s: isError %v, %q; want %q", tt.img, isErr, text, tt.want)
				}
				if strings.Contains(text, tmp) {
					t.Errorf("%s: the error reveals the host workspace under %s: %q", tt.img, tmp, text)
				}
			}
			if got := proxy.take(); len(got) != 0 {
				t.Errorf("refused images reached Ollama: %d", len(got))
			}

			// Allow control: a real PNG, both ways of naming it, reaches Ollama whole
			// (the tiny model has no projector, so what Ollama answers is its own).
			for _, p := range []string{"real.png", "/workspace/real.png", "./real.png"} {
				_, text := vision(p)
				if strings.Contains(text, "images[0]") {
					t.Errorf("%s was refused: %q", p, text)
				}
				if got := proxy.take(); len(got) != 1 || !bytes.Equal(got[0], png) {
					t.Errorf("%s: Ollama got %d images, want the PNG", p, len(got))
				}
			}

			// A burst of FIFO calls: each is answered, and none holds a thread.
			pid := cmd.Process.Pid
			before := threadsOf(t, pid)
			var wg sync.WaitGroup
			var bad sync.Map
			for w := range 8 {
				wg.Go(func() {
					for i := range 40 {
						res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat_eyes", Arguments: map[string]any{"prompt": "x", "images": []string{"pipe.png"}}})
						if err != nil || !res.IsError || !strings.Contains(mcptest.TextOf(res), "not a regular file") {
							bad.Store(fmt.Sprint(w, i), fmt.Sprint(err, res))
						}
					}
				})
			}
			wg.Wait()
			bad.Range(func(k, v any) bool {
				t.Errorf("FIFO call %v: %v", k, v)
				return false
			})
			// Idle Go threads stay, so allow what 8 callers at once may add; a
			// blocked open per call would add 320.
			after := threadsOf(t, pid)
			t.Logf("membrane's threads: %d before 320 FIFO calls, %d after", before, after)
			if after > before+16 {
				t.Errorf("membrane's threads grew from %d to %d over 320 FIFO calls", before, after)
			}

			// A FIFO call, then end of input: membrane exits 0, workspace gone.
			if isErr, text := vision("pipe.png"); !isErr || !strings.Contains(text, "not a regular file") {
				t.Errorf("last FIFO call: %q", text)
			}
			closed = true
			if err := cs.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
				t.Errorf("membrane exit state after end of input: %v, want 0", cmd.ProcessState)
			}
			assertNothingLeft(t, "pipe.png", tmp)
		})
	}
}
