package ollama_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// loadCounter counts the model loads an Ollama server logs: the line that
// starts a runner for a model file ("starting llama server" in v0.6.5,
// "starting runner" with --model in v0.17.4, which also starts one runner
// without a model to find the GPUs).
type loadCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (c loadCounter) Enabled(context.Context, slog.Level) bool { return true }

func (c loadCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "starting llama server") || strings.Contains(r.Message, "starting runner") && strings.Contains(r.Message, "--model") {
		c.n.Add(1)
	}
	return nil
}

// TestE2EHostOrderingCutsLoads runs an interleaved burst of calls for two
// models, A, B, A, B, ..., against a real Ollama that keeps one model
// loaded (OLLAMA_MAX_LOADED_MODELS=1), with membrane's ordering across
// models on (learning the host's capacity from /api/ps) and, as the
// control, off. Loads are counted from the server's own log. Ordered, the
// burst runs as batches and loads fewer times; every call completes
// either way (no starvation).
func TestE2EHostOrderingCutsLoads(t *testing.T) {
	forEachOllama(t, func(t *testing.T, v ollamatest.TestVersion) {
		run := func(t *testing.T, maxLoaded int) int64 {
			var loads atomic.Int64
			srv := ollamatest.StartWith(t, &ollamatest.Options{
				Binary: v.Binary,
				Env:    []string{"OLLAMA_MAX_LOADED_MODELS=1"},
				Logger: slog.New(loadCounter{n: &loads}),
			})
			// Two different model files: Ollama shares one runner between
			// names of the same file.
			srv.Create(t, "alpha:latest", scripted())
			srv.Create(t, "beta:latest", ollamatest.ScriptedModel(ollamatest.Script{Answer: betaAnswer}))
			// One call of a model at a time, so that unordered the host
			// sees the two models alternate, as parallel agents make it.
			h := start(t, ollama.Config{Hosts: []string{srv.URL}, MaxLoadedModels: maxLoaded, ModelConcurrency: 1})
			h.ready(t, "both models", has("chat_alpha", "chat_beta"))
			var (
				mu       sync.Mutex
				progress []string
			)
			call := func(tool string) (*calls.Result, error) {
				args, _ := json.Marshal(map[string]any{"prompt": "hi"})
				return h.r.Call(t.Context(), tool, &calls.Request{Arguments: args, Progress: calls.ProgressFunc(func(_ context.Context, _, _ float64, msg string) {
					mu.Lock()
					progress = append(progress, msg)
					mu.Unlock()
				})})
			}
			// Warm up: alpha, then beta, which pushes alpha out; the
			// ordering learns from /api/ps that the host keeps one.
			for _, tool := range []string{"chat_alpha", "chat_beta"} {
				if res, err := call(tool); err != nil || res.IsError {
					t.Fatalf("%s: %v %v", tool, err, res)
				}
			}
			before := loads.Load()
			if before < 2 {
				t.Fatalf("warm-up logged %d loads, want 2 (have the load lines changed?)", before)
			}
			const burst = 12
			var wg sync.WaitGroup
			errs := make(chan string, burst)
			for i := range burst {
				tool := "chat_alpha"
				if i%2 == 1 {
					tool = "chat_beta"
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := call(tool)
					if err != nil || res.IsError {
						errs <- tool + ": " + resultText(err, res)
						return
					}
					want := scriptAnswer
					if tool == "chat_beta" {
						want = betaAnswer
					}
					if got := strings.TrimSpace(res.Content[0].Text); !strings.Contains(got, strings.TrimSpace(want)) {
						errs <- tool + ": answer " + got
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Errorf("a call of the burst failed (starved or broken): %s", e)
			}
			if maxLoaded == 0 {
				// Queued calls were told their place in line, and alpha's
				// (loaded in the warm-up, then pushed out) its load time.
				mu.Lock()
				all := strings.Join(progress, "\n")
				mu.Unlock()
				// The load time is "expected" when alpha waits for its
				// turn, and "the last time" when the call before it is
				// loading it now.
				if !strings.Contains(all, "number 2 in line") || !strings.Contains(all, "alpha:latest is not loaded there, expected load time") &&
					!strings.Contains(all, "alpha:latest is being loaded there by the call before, which took") {
					t.Errorf("progress of the queued calls lacks the place in line or the expected load time:\n%s", all)
				}
			}
			n := loads.Load() - before
			t.Logf("%s, MaxLoadedModels %d: %d loads for %d interleaved calls", v.Name, maxLoaded, n, burst)
			return n
		}
		var ordered, unordered int64
		t.Run("ordered", func(t *testing.T) { ordered = run(t, 0) })
		t.Run("unordered", func(t *testing.T) { unordered = run(t, -1) })
		if ordered >= unordered {
			t.Errorf("ordered burst loaded %d times, the unordered control %d; want fewer", ordered, unordered)
		}
		if ordered > 2 {
			t.Errorf("ordered burst of two models loaded %d times, want at most 2 (one per model)", ordered)
		}
	})
}

const betaAnswer = " Beta answers here."

func resultText(err error, res *calls.Result) string {
	if err != nil {
		return err.Error()
	}
	if res != nil && len(res.Content) > 0 {
		return res.Content[0].Text
	}
	return "no result"
}
