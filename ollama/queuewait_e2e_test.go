package ollama_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2EQueueWaitCountsHostTurn: with the host's ordering on (the
// default), a model call that waits for its turn on the host reports that
// wait as its queue wait, the number behind
// membrane_model_queue_wait_seconds. A burst of calls for one model that
// runs one call at a time makes the later calls wait; a call that was told
// it is queued ("queued on HOST") waited from before that message until
// its request went out (ModelInfo.Began), so Began minus its queue wait
// is no later than the message. The first call to run, which never
// queued, is the control: its queue wait stays below its whole duration.
func TestE2EQueueWaitCountsHostTurn(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "alpha:latest", scripted())
	h := start(t, ollama.Config{Hosts: []string{srv.URL}, ModelConcurrency: 1})
	h.ready(t, "the model", has("chat_alpha"))
	args, _ := json.Marshal(map[string]any{"prompt": "hi"})
	type done struct {
		res    *calls.Result
		err    error
		queued time.Time // when it was told it is queued; zero if never
		took   time.Duration
	}
	const burst = 4
	for try := 0; ; try++ {
		out := make([]done, burst)
		var wg sync.WaitGroup
		for i := range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mu sync.Mutex
				begin := time.Now()
				res, err := h.r.Call(t.Context(), "chat_alpha", &calls.Request{Arguments: args, Progress: calls.ProgressFunc(func(_ context.Context, _, _ float64, msg string) {
					mu.Lock()
					if strings.HasPrefix(msg, "queued on ") && out[i].queued.IsZero() {
						out[i].queued = time.Now()
					}
					mu.Unlock()
				})})
				mu.Lock()
				out[i].res, out[i].err, out[i].took = res, err, time.Since(begin)
				mu.Unlock()
			}()
		}
		wg.Wait()
		queued := 0
		for i, d := range out {
			if d.err != nil || d.res == nil || d.res.IsError || d.res.Info == nil || d.res.Info.Model == nil {
				t.Fatalf("call %d: %v %s", i, d.err, resultText(d.err, d.res))
			}
			mi := d.res.Info.Model
			if mi.Began.IsZero() {
				t.Fatalf("call %d: no Began", i)
			}
			if mi.QueueWait >= d.took {
				t.Errorf("call %d: queue wait %s is not below the call's %s", i, mi.QueueWait, d.took)
			}
			if d.queued.IsZero() {
				continue
			}
			queued++
			if waitedFrom := mi.Began.Add(-mi.QueueWait); waitedFrom.After(d.queued) {
				t.Errorf("call %d was queued on the host %s before its request went out, but its queue wait is only %s",
					i, mi.Began.Sub(d.queued), mi.QueueWait)
			}
		}
		if queued > 0 {
			return
		}
		// Every call found the host free: the calls came one after the
		// other on a loaded machine. Try again.
		if try == 4 {
			t.Fatalf("in %d bursts of %d calls, none waited for its turn on the host", try+1, burst)
		}
	}
}

// TestE2EQueueDepthsListEveryModel: membrane_model_queue_depth has a
// series for every model membrane serves, 0 while none of its calls wait,
// so that a graph or an alert on it sees an idle model as 0 rather than
// as missing data.
func TestE2EQueueDepthsListEveryModel(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.Create(t, "alpha:latest", scripted())
	h := start(t, ollama.Config{Hosts: []string{srv.URL}})
	h.ready(t, "the model", has("chat_alpha"))
	if got := h.m.QueueDepths(); len(got) != 1 || got["alpha:latest"] != 0 {
		t.Errorf("QueueDepths before any call = %v, want map[alpha:latest:0]", got)
	}
	args, _ := json.Marshal(map[string]any{"prompt": "hi"})
	if res, err := h.r.Call(t.Context(), "chat_alpha", &calls.Request{Arguments: args}); err != nil || res.IsError {
		t.Fatalf("chat_alpha: %s", resultText(err, res))
	}
	if got := h.m.QueueDepths(); len(got) != 1 || got["alpha:latest"] != 0 {
		t.Errorf("QueueDepths after a call = %v, want map[alpha:latest:0]", got)
	}
}
