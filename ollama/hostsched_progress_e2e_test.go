package ollama_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2EQueuedBehindItsOwnLoad sends three calls of a model that was
// never loaded, one at a time per model, to a real Ollama: the first
// loads it, and the queued ones are told so. Their progress once said the
// model "is not loaded there and has not been loaded before" while the
// host was running it, loading it for the call before.
func TestE2EQueuedBehindItsOwnLoad(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		srv := v.Start(t)
		srv.Create(t, "alpha:latest", scripted())
		h := start(t, ollama.Config{Hosts: []string{srv.URL}, ModelConcurrency: 1})
		h.ready(t, "chat_alpha", has("chat_alpha"))
		var (
			mu       sync.Mutex
			progress []string
			wg       sync.WaitGroup
		)
		for range 3 {
			wg.Go(func() {
				args, _ := json.Marshal(map[string]any{"prompt": "hi"})
				res, err := h.r.Call(t.Context(), "chat_alpha", &calls.Request{Arguments: args, Progress: calls.ProgressFunc(func(_ context.Context, _, _ float64, msg string) {
					mu.Lock()
					progress = append(progress, msg)
					mu.Unlock()
				})})
				if err != nil || res.IsError {
					t.Errorf("chat_alpha: %s", resultText(err, res))
				}
			})
		}
		wg.Wait()
		// Until the first call ends, the host has not said the model is
		// loaded: the calls queued meanwhile wait for its load.
		loading := 0
		for _, msg := range progress {
			if strings.Contains(msg, "it is running alpha:latest") && strings.Contains(msg, "has not been loaded before") {
				t.Errorf("a call queued behind the load of its own model: %q", msg)
			}
			if strings.HasPrefix(msg, "queued on ") && strings.Contains(msg, "alpha:latest is being loaded there by the call before") {
				loading++
			}
		}
		if loading == 0 {
			t.Errorf("no queued call was told the model is loading for the call before:\n%s", strings.Join(progress, "\n"))
		}
	})
}
