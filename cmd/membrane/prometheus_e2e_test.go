package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// promServer is a real Prometheus server (the Debian package, which make
// test-deps installs) scraping the targets of one test.
type promServer struct {
	addr string
}

// startPrometheus runs Prometheus with config until the test ends.
func startPrometheus(t *testing.T, config string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		mcptest.Require(t, "no prometheus on PATH (apt-get install prometheus, or make test-deps)")
	}
	dir := t.TempDir()
	p := &promServer{addr: mcptest.FreeAddr(t)}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	mcptest.StartProcess(t, "prometheus", exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+p.addr))
	return p
}

// get fetches one of Prometheus's HTTP API answers into v.
func (p *promServer) get(path string, q url.Values, v any) error {
	resp, err := http.Get("http://" + p.addr + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// query returns the values of an instant query, by the labels of each
// sample (as Prometheus prints them, such as {call="sh"}).
func (p *promServer) query(q string) (map[string]float64, error) {
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, err
		}
		out[fmt.Sprint(s.Metric)] = v
	}
	return out, nil
}

// waitFor waits until q gives exactly one sample and ok(its value) holds,
// and returns the value.
func (p *promServer) waitFor(t *testing.T, q string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second) // a hang detector; scrapes come every second
	for {
		res, err := p.query(q)
		if err == nil && len(res) == 1 {
			for _, v := range res {
				if ok(v) {
					return v
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus never saw %s as wanted (last: %v, %v)", q, res, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func eq(n float64) func(float64) bool { return func(v float64) bool { return v == n } }
func positive(v float64) bool         { return v > 0 }

// TestPrometheusScrapesMembrane is the operator's view of membrane's
// metrics: a real Prometheus scrapes a running membrane (over HTTP, behind
// its token, configured as the README says: authorization with a
// credentials_file), both on the MCP listener and on --metrics-addr, while
// a client makes known calls (ok ones, a timeout, a busy one, a cancelled
// one, and a model call on the real test Ollama). The test asks
// Prometheus's HTTP API for rate() of the call counter and for every
// series the README lists, with its value, and checks that no label holds
// a session ID or an argument.
func TestPrometheusScrapesMembrane(t *testing.T) {
	bin := binary(t)
	if _, err := exec.LookPath("prometheus"); err != nil {
		mcptest.Require(t, "no prometheus on PATH (apt-get install prometheus, or make test-deps)")
	}
	srv := ollamatest.Versions(t)[0].Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{Answer: " metered answer"}))
	const token = "prom-e2e-token-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	metricsAddr := mcptest.FreeAddr(t)
	_, base, _, _ := startHTTP(t, bin, "--token-file", tokenFile, "--metrics-addr", metricsAddr,
		"--concurrency", "1", "--queue-length", "-1", "--ollama-host", srv.URL, "--ollama-refresh", "200ms")
	p := startPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: membrane
    authorization: {credentials_file: %[1]s}
    static_configs: [{targets: ["%[2]s"]}]
  - job_name: membrane-metrics
    authorization: {credentials_file: %[1]s}
    static_configs: [{targets: ["%[3]s"]}]
`, tokenFile, strings.TrimPrefix(base, "http://"), metricsAddr))

	// Both scrapes work, through the token, before any call; every kill
	// reason is there from the start, at 0.
	p.waitFor(t, `up{job="membrane"}`, eq(1))
	p.waitFor(t, `up{job="membrane-metrics"}`, eq(1))
	for _, reason := range []string{"timeout", "memory", "quota", "cancel"} {
		p.waitFor(t, `membrane_sandbox_kills_total{job="membrane",reason="`+reason+`"}`, eq(0))
	}

	// A client with a session (2025-11-25), whose one open session the
	// gauge counts; a 2026-07-28 client has none.
	cs := mcptest.ConnectHTTPVersion(t, base+"/mcp", token, "2025-11-25", nil)
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "true"})
	sandboxWorks(t, res, text)
	if res.IsError {
		t.Fatalf("sh = %q", text)
	}
	// One sample with the first call, then more calls, so the rate has
	// two different samples to work from.
	p.waitFor(t, `membrane_calls_total{job="membrane",call="sh",outcome="ok"}`, eq(1))
	for range 4 {
		if res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "true"}); res.IsError {
			t.Fatalf("sh = %q", text)
		}
	}
	if res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "sleep 30", "timeout_s": 0.5}); !res.IsError {
		t.Fatalf("sleep 30 with a 0.5 s timeout succeeded: %q", text)
	}
	// The only sandbox slot held, a second sh is busy; the held call is
	// then cancelled.
	release := holdOnlySlot(t, cs, nil)
	if res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "echo never"}); !res.IsError || !strings.Contains(text, "busy") {
		t.Fatalf("sh beside the held one was not busy: %q", text)
	}
	release()
	waitTool(t, cs, "chat_scripted")
	if res, text := mcptest.CallText(t, cs, "chat_scripted", map[string]any{"prompt": "hi"}); res.IsError || !strings.Contains(text, "metered answer") {
		t.Fatalf("chat_scripted = %q", text)
	}

	const job = `job="membrane"`
	const model = `model="scripted:latest"`
	p.waitFor(t, `membrane_calls_total{`+job+`,call="sh",kind="tool",outcome="ok"}`, eq(5))
	if rate := p.waitFor(t, `rate(membrane_calls_total{`+job+`,call="sh",outcome="ok"}[1m])`, positive); rate <= 0 {
		t.Errorf("rate = %v", rate)
	}
	for q, want := range map[string]func(float64) bool{
		`membrane_calls_total{` + job + `,call="sh",kind="tool",outcome="timeout"}`:                       eq(1),
		`membrane_calls_total{` + job + `,call="sh",kind="tool",outcome="busy"}`:                          eq(1),
		`membrane_calls_total{` + job + `,call="sh",kind="tool",outcome="cancelled"}`:                     eq(1),
		`membrane_calls_total{` + job + `,call="chat_scripted",kind="model",outcome="ok"}`:                eq(1),
		`membrane_call_duration_seconds_count{` + job + `,call="sh",kind="tool"}`:                         eq(8),
		`histogram_quantile(0.5, rate(membrane_call_duration_seconds_bucket{` + job + `,call="sh"}[1m]))`: positive,
		`membrane_calls_in_flight{` + job + `}`:                                                           eq(0),
		`membrane_busy_rejections_total{` + job + `,call="sh"}`:                                           eq(1),
		`membrane_sandbox_start_seconds_count{` + job + `}`:                                               positive,
		`membrane_sandbox_kills_total{` + job + `,reason="timeout"}`:                                      eq(1),
		`membrane_sandbox_kills_total{` + job + `,reason="cancel"}`:                                       eq(1),
		`membrane_sandbox_kills_total{` + job + `,reason="memory"}`:                                       eq(0),
		`membrane_sandbox_kills_total{` + job + `,reason="quota"}`:                                        eq(0),
		`membrane_model_time_to_first_token_seconds_count{` + job + `,` + model + `}`:                     eq(1),
		`membrane_model_tokens_per_second_count{` + job + `,` + model + `}`:                               eq(1),
		`membrane_model_tokens_total{` + job + `,` + model + `,direction="in"}`:                           positive,
		`membrane_model_tokens_total{` + job + `,` + model + `,direction="out"}`:                          positive,
		`membrane_model_queue_wait_seconds_count{` + job + `,` + model + `}`:                              eq(1),
		`membrane_model_queue_depth{` + job + `,` + model + `}`:                                           eq(0),
		`membrane_model_host_up{` + job + `,host="` + srv.URL + `"}`:                                      eq(1),
		`membrane_model_host_models{` + job + `,host="` + srv.URL + `"}`:                                  eq(1),
		`membrane_sessions_open{` + job + `}`:                                                             eq(1),
		`membrane_sessions_opened_total{` + job + `}`:                                                     eq(1),
		`membrane_tools_list_changed_total{` + job + `}`:                                                  positive,
		`membrane_observer_events_dropped_total{` + job + `,observer="metrics"}`:                          eq(0),
		`go_goroutines{` + job + `}`:                                                                      positive,
		`go_memstats_heap_alloc_bytes{` + job + `}`:                                                       positive,
		`process_resident_memory_bytes{` + job + `}`:                                                      positive,
		// The listener of --metrics-addr serves the same registry.
		`membrane_calls_total{job="membrane-metrics",call="chat_scripted",kind="model",outcome="ok"}`: eq(1),
	} {
		p.waitFor(t, q, want)
	}

	// Nothing about arguments or sessions becomes a label: no label name
	// says so, and no label value of any series holds the session's ID or
	// an argument's text.
	var labels struct{ Data []string }
	if err := p.get("/api/v1/labels", nil, &labels); err != nil {
		t.Fatal(err)
	}
	for _, l := range labels.Data {
		if strings.Contains(l, "session") || strings.Contains(l, "arg") {
			t.Errorf("a label is named %q", l)
		}
	}
	var series struct{ Data []map[string]string }
	if err := p.get("/api/v1/series", url.Values{"match[]": {`{job="membrane"}`}}, &series); err != nil {
		t.Fatal(err)
	}
	if len(series.Data) == 0 {
		t.Fatal("no series")
	}
	for _, s := range series.Data {
		for k, v := range s {
			if v == cs.ID() || strings.Contains(v, "sleep") || strings.Contains(v, "echo") || strings.Contains(v, "workspace") {
				t.Errorf("series %v: label %s holds %q", s, k, v)
			}
		}
	}
}

// holdOnlySlot starts a sh call that holds a sandbox slot until the
// returned release cancels it, and returns once it is running (it touches
// /workspace/started, which read_file then finds). count, when set, is told
// the outcome of each read_file call made meanwhile, and of the held call
// (cancelled).
func holdOnlySlot(t *testing.T, cs *sdk.ClientSession, count func(call, outcome string)) (release func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	held := make(chan struct{})
	go func() {
		defer close(held)
		cs.CallTool(ctx, &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "touch /workspace/started; sleep 30"}})
	}()
	if count != nil {
		count("sh", "cancelled")
	}
	for i := 0; ; i++ {
		res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "started"}})
		if err != nil {
			t.Fatal(err)
		}
		if count != nil {
			count("read_file", map[bool]string{true: "tool_error", false: "ok"}[res.IsError])
		}
		if !res.IsError {
			break
		}
		if i == 600 {
			t.Fatal("the held call never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() { cancel(); <-held }
}

// waitTool waits until the server lists the tool name (a model tool comes
// once membrane has found the model).
func waitTool(t *testing.T, cs *sdk.ClientSession, name string) {
	t.Helper()
	for i := 0; ; i++ {
		lr, err := cs.ListTools(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(lr.Tools, func(tl *sdk.Tool) bool { return tl.Name == name }) {
			return
		}
		if i == 600 {
			t.Fatalf("no %s listed", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
