package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
	"github.com/membrane-mcp/membrane/calls/agent/openaicompat"
	"github.com/membrane-mcp/membrane/mcp"
)

// serveBench is the API of `orchestrator serve` in front of the real
// chain: the same Guard, server and agent as the command builds.
func serveBench(b *testing.B, turnsPerToken int) (url string, ask func() error, inProcess func() error) {
	b.Helper()
	model, r := benchChain(b)
	spec := agents.Spec{Name: "coder", Model: "scripted", Tools: []string{"sh"}}
	bk := openaicompat.NewBackends([]agents.Spec{spec}, &openaicompat.BackendsOptions{
		Tools: r, Model: func(agents.Spec) *openaicompat.Client { return model }, Card: agent.CardModeOff,
	})
	be, err := bk.Backend(spec)
	if err != nil {
		b.Fatal(err)
	}
	sel := be.Tools
	api, err := openaicompat.NewServer(openaicompat.ServerOptions{
		Agents:        agents.NewCatalog([]agents.Spec{spec}),
		Backend:       bk.Backend,
		TurnsPerToken: turnsPerToken,
		MaxTurns:      -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	g, err := mcp.NewGuard(&mcp.GuardOptions{Token: "bench-token", Reject: openaicompat.WriteRefusal})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(g.Protect(api))
	b.Cleanup(hs.Close)
	body := `{"model":"coder","messages":[{"role":"user","content":"say hello"}]}`
	const want = "The command printed hello."
	ask = func() error {
		req, _ := http.NewRequest("POST", hs.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer bench-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			Choices []struct{ Message struct{ Content string } }
		}
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || len(out.Choices) != 1 || out.Choices[0].Message.Content != want {
			return fmt.Errorf("status %d: %s", resp.StatusCode, raw)
		}
		return nil
	}
	inProcess = func() error {
		a := agent.New(model, sel, &agent.Options{Model: "scripted", MaxSteps: spec.Steps()})
		t, err := a.Ask(context.Background(), "say hello")
		if err == nil && t.Answer != want {
			err = fmt.Errorf("answer %q", t.Answer)
		}
		return err
	}
	return hs.URL, ask, inProcess
}

// BenchmarkServeTurn measures one non-streaming turn through the API of
// `orchestrator serve` (HTTP on loopback, the Guard, the OpenAI wire)
// against the same turn through the loop in-process, interleaved:
// x_inprocess is the ratio and ms_added what serving adds to a turn.
func BenchmarkServeTurn(b *testing.B) {
	_, ask, inProcess := serveBench(b, 0)
	must := func(f func() error) func() {
		return func() {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
	}
	must(ask)()
	must(inProcess)()
	var base, served float64
	i := 0
	for b.Loop() {
		// Each goes first every other time: the one after pays no warm-up
		// the one before paid.
		if i++; i%2 == 0 {
			tb, ts := pair(5, must(inProcess), must(ask))
			base, served = base+tb, served+ts
		} else {
			ts, tb := pair(5, must(ask), must(inProcess))
			base, served = base+tb, served+ts
		}
	}
	b.ReportMetric(served/base, "x_inprocess")
	b.ReportMetric((served-base)/float64(b.N)/1e6, "ms_added")
	b.ReportMetric(base/float64(b.N)/1e6, "ms_turn_inprocess")
}

// BenchmarkServeConcurrent runs 50 turns at once through the API on the
// scripted model, all of one token (its bound raised): turns/s, the p99
// of a turn, and errors, which must be 0.
func BenchmarkServeConcurrent(b *testing.B) {
	const n = 50
	_, ask, _ := serveBench(b, n)
	var lat []time.Duration
	var errs int
	var total time.Duration
	for b.Loop() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		t0 := time.Now()
		for range n {
			wg.Go(func() {
				s := time.Now()
				err := ask()
				d := time.Since(s)
				mu.Lock()
				defer mu.Unlock()
				lat = append(lat, d)
				if err != nil {
					errs++
					if errs == 1 {
						b.Log(err)
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(t0)
	}
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	b.ReportMetric(float64(len(lat))/total.Seconds(), "turns/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "ms_p99")
	b.ReportMetric(float64(errs), "errors")
	if errs > 0 {
		b.Fatalf("%d of %d turns failed", errs, len(lat))
	}
}
