package ollama

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestReadLoadedWhileCallsRun reads a real Ollama's /api/ps while calls
// record the models they ran (markLoaded), as a refresh does beside
// running calls. Run with -race: the reading once handed its map to the
// scheduler after publishing it, while calls wrote to it (seen in
// TestE2EPreferLoadedHost under -race).
func TestReadLoadedWhileCallsRun(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "tiny:latest", ollamatest.ChatModel())
	u, _ := url.Parse(srv.URL)
	h := newHost(u, newHTTPClient())
	ctx := context.Background()
	// Loaded, so /api/ps lists a model: the reading has something to copy.
	stream := false
	if err := srv.Client().Generate(ctx, &api.GenerateRequest{Model: "tiny:latest", Prompt: "x", Stream: &stream, Options: map[string]any{"num_predict": 1}}, func(api.GenerateResponse) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 50 {
			if err := h.readLoaded(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range 2000 {
			h.markLoaded("other:latest", "other:latest", i%4096+1)
			h.markLoaded("tiny:latest", "tiny:latest", 0)
		}
	})
	wg.Wait()
	if !h.isLoaded("tiny:latest", time.Now()) {
		t.Error("tiny:latest is not loaded after it ran")
	}
}
