package metrics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	r := calls.NewRouter(nil)
	m := metrics.New(r, &metrics.Options{Hosts: func() []metrics.Host {
		return []metrics.Host{{URL: "http://127.0.0.1:11434", Up: true, Models: 3, Loaded: []string{"qwen3:0.6b"}}}
	}, Queues: func() map[string]int { return map[string]int{"qwen3:0.6b": 4} }})
	stop := r.Observe(m)
	add := func(name string, kind calls.Kind, h calls.HandlerFunc) {
		if err := r.Add(calls.Call{Name: name, Description: name, InputSchema: json.RawMessage(`{"type":"object"}`), Kind: kind, Handler: h}); err != nil {
			t.Fatal(err)
		}
	}
	add("sh", calls.KindTool, func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		res := calls.Errorf("timed out")
		res.Outcome = calls.OutcomeTimeout
		res.Info = &calls.Info{Run: &calls.RunInfo{ExitCode: 137, Killed: "timeout", Start: 3 * time.Millisecond, Limits: []string{calls.LimitOutput, "made-up"}}}
		return res, nil
	})
	add("qwen", calls.KindModel, func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		res := calls.Text("hi")
		res.Info = &calls.Info{Model: &calls.ModelInfo{Model: "qwen3:0.6b", TokensIn: 10, TokensOut: 20, FirstToken: 200 * time.Millisecond, Generation: 2 * time.Second, QueueWait: 50 * time.Millisecond}}
		return res, nil
	})
	sess := r.OpenSession("s-secret-id", "c")
	for range 3 {
		r.Call(t.Context(), "sh", &calls.Request{Session: sess, Arguments: json.RawMessage(`{"cmd":"ARG-VALUE"}`)})
	}
	r.Call(t.Context(), "qwen", nil)
	stop()
	out := scrape(t, m)
	for _, want := range []string{
		`membrane_calls_total{call="sh",kind="tool",outcome="timeout"} 3`,
		`membrane_calls_total{call="qwen",kind="model",outcome="ok"} 1`,
		`membrane_call_duration_seconds_count{call="sh",kind="tool"} 3`,
		`membrane_sandbox_kills_total{reason="timeout"} 3`,
		// The output cap hit by each call, the process limit by none (its
		// series is there at 0); a name that is not a limit is not counted.
		`membrane_sandbox_limit_hits_total{limit="output"} 3`,
		`membrane_sandbox_limit_hits_total{limit="processes"} 0`,
		`membrane_sandbox_start_seconds_count 3`,
		`membrane_model_tokens_total{direction="out",model="qwen3:0.6b"} 20`,
		`membrane_model_tokens_total{direction="in",model="qwen3:0.6b"} 10`,
		`membrane_model_tokens_per_second_sum{model="qwen3:0.6b"} 10`,
		`membrane_model_time_to_first_token_seconds_count{model="qwen3:0.6b"} 1`,
		`membrane_tools_list_changed_total 2`,
		`membrane_model_queue_wait_seconds_count{model="qwen3:0.6b"} 1`,
		`membrane_model_queue_wait_seconds_sum{model="qwen3:0.6b"} 0.05`,
		`membrane_model_queue_depth{model="qwen3:0.6b"} 4`,
		`membrane_sessions_open 1`,
		`membrane_sessions_opened_total 1`,
		`membrane_calls_in_flight 0`,
		`membrane_model_host_up{host="http://127.0.0.1:11434"} 1`,
		`membrane_model_host_models{host="http://127.0.0.1:11434"} 3`,
		`membrane_model_loaded{host="http://127.0.0.1:11434",model="qwen3:0.6b"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Bounded labels: no session IDs, no arguments.
	for _, bad := range []string{"s-secret-id", "ARG-VALUE", "made-up"} {
		if strings.Contains(out, bad) {
			t.Errorf("metrics hold %q", bad)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// TestKillReasonsStartAtZero: every reason the sandbox kills for has its
// series from the start, at 0, so that rate() and increase() see the first
// kill (a counter that appears at 1 hides it) and an operator finds every
// reason in Prometheus before the first kill.
func TestKillReasonsStartAtZero(t *testing.T) {
	m := metrics.New(calls.NewRouter(nil), nil)
	out := scrape(t, m)
	for _, reason := range metrics.KillReasons {
		if want := `membrane_sandbox_kills_total{reason="` + reason + `"} 0`; !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if len(metrics.KillReasons) != 4 {
		t.Errorf("KillReasons = %v, want the four the sandbox gives (timeout, memory, quota, cancel)", metrics.KillReasons)
	}
}
