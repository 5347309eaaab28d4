package ollamatest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// The targets the helper must meet to keep a full test run practical. The
// benchmarks report each measurement as a ratio to its target (x-target
// below 1 means met), besides the milliseconds.
const (
	startTarget  = 3 * time.Second
	createTarget = time.Second
)

func report(b *testing.B, total time.Duration, target time.Duration) {
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(time.Millisecond), "ms/op")
	b.ReportMetric(float64(per)/float64(target), "x-target")
}

// BenchmarkStart measures StartServer until GET / answers, and Stop.
func BenchmarkStart(b *testing.B) {
	bin := ollamatest.Binary(b)
	var start, stop time.Duration
	for b.Loop() {
		t0 := time.Now()
		s, err := ollamatest.StartServer(b.Context(), &ollamatest.Options{Binary: bin})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
		start += t1.Sub(t0)
		stop += time.Since(t1)
	}
	report(b, start, startTarget)
	b.ReportMetric(float64(stop/time.Duration(b.N))/float64(time.Millisecond), "stop-ms/op")
}

// BenchmarkCreate measures building each model and importing it under a
// new name, as a test does.
func BenchmarkCreate(b *testing.B) {
	srv := ollamatest.Start(b)
	models := []struct {
		name  string
		build func() ollamatest.Model
	}{
		{"chat", ollamatest.ChatModel},
		{"embed", func() ollamatest.Model { return ollamatest.EmbedModel(64) }},
		{"vision", ollamatest.VisionModel},
		{"scripted", func() ollamatest.Model { return ollamatest.ScriptedModel(ollamatest.Script{}) }},
	}
	for _, m := range models {
		b.Run(m.name, func(b *testing.B) {
			var total time.Duration
			i := 0
			for b.Loop() {
				i++
				t0 := time.Now()
				srv.Create(b, fmt.Sprintf("%s-%d", m.name, i), m.build())
				total += time.Since(t0)
			}
			report(b, total, createTarget)
		})
	}
}

// BenchmarkScriptedChat measures one non-streamed tool-calling reply of the
// scripted model once it is loaded: the floor under every loop test.
func BenchmarkScriptedChat(b *testing.B) {
	srv := ollamatest.Start(b)
	srv.Create(b, "scripted", ollamatest.ScriptedModel(ollamatest.Script{}))
	stream := false
	req := &api.ChatRequest{Model: "scripted", Stream: &stream, Tools: []api.Tool{shTool},
		Messages: []api.Message{{Role: "user", Content: "go"}}}
	chat := func() {
		err := srv.Client().Chat(b.Context(), req, func(r api.ChatResponse) error {
			if len(r.Message.ToolCalls) != 1 {
				return fmt.Errorf("reply %+v has no tool call", r.Message)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	chat() // load the runner
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		chat()
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total/time.Duration(b.N))/float64(time.Millisecond), "ms/op")
}

// BenchmarkColdChat measures a reply from a model that is not loaded: the
// runner starts, loads the scripted model, answers, and is unloaded again
// (keep_alive 0). This is the cost of the first call of a test.
func BenchmarkColdChat(b *testing.B) {
	srv := ollamatest.Start(b)
	srv.Create(b, "scripted", ollamatest.ScriptedModel(ollamatest.Script{}))
	stream := false
	req := &api.ChatRequest{Model: "scripted", Stream: &stream, Tools: []api.Tool{shTool},
		KeepAlive: &api.Duration{Duration: 0}, Messages: []api.Message{{Role: "user", Content: "go"}}}
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		err := srv.Client().Chat(b.Context(), req, func(r api.ChatResponse) error {
			if len(r.Message.ToolCalls) != 1 {
				return fmt.Errorf("reply %+v has no tool call", r.Message)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		// Wait for the unload, so the next iteration starts cold.
		for {
			ps, err := srv.Client().ListRunning(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			if len(ps.Models) == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.ReportMetric(float64(total/time.Duration(b.N))/float64(time.Millisecond), "ms/op")
}
