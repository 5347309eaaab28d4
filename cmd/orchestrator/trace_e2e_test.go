package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls/otel/oteltest"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/session"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// EnvTestJaeger names the Jaeger binary the trace test runs ("off" skips
// the test on purpose). `make test-jaeger` builds it into the cache.
const EnvTestJaeger = oteltest.EnvJaeger

// jaegerBinary finds the Jaeger all-in-one binary, or fails or skips as
// mcptest.Require says.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	p, why := oteltest.JaegerPath()
	if p == "" {
		if os.Getenv(EnvTestJaeger) == "off" {
			t.Skip(why)
		}
		mcptest.Require(t, why)
	}
	return p
}

// jaeger is a running Jaeger all-in-one with in-memory storage.
type jaeger struct {
	otlpHTTP, otlpGRPC, query string
}

func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	j := oteltest.StartJaeger(t, jaegerBinary(t))
	return &jaeger{otlpHTTP: j.OTLPHTTP, otlpGRPC: j.OTLPGRPC, query: j.Query}
}

// jaegerSpan is a span as Jaeger's HTTP API shows it.
type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
	service   string
}

func (s jaegerSpan) tag(k string) string {
	for _, t := range s.Tags {
		if t.Key == k {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// trace fetches one trace by ID from Jaeger's query API.
func (j *jaeger) trace(id string) ([]jaegerSpan, error) {
	resp, err := http.Get("http://" + j.query + "/api/traces/" + id)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var body struct {
		Data []struct {
			Spans     []jaegerSpan `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if len(body.Data) != 1 {
		return nil, fmt.Errorf("%d traces", len(body.Data))
	}
	spans := body.Data[0].Spans
	for i := range spans {
		spans[i].service = body.Data[0].Processes[spans[i].ProcessID].ServiceName
	}
	return spans, nil
}

// TestJaegerTrace runs a turn through the whole chain (the orchestrator,
// the real test Ollama's scripted model on /v1, membrane over stdio, the
// sandbox and membrane's Ollama model tool), exporting OTLP to a real
// Jaeger, over HTTP and then over gRPC, and finds each turn as ONE trace in
// Jaeger's API: the turn, its model call, the orchestrator's tools/call
// spans, membrane's tools/call spans beneath them, the sandbox run and the
// Ollama request with its tokens.
func TestJaegerTrace(t *testing.T) {
	j := startJaeger(t)
	c := newChain(t, ollamatest.Script{
		Calls:  []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo traced"}`}, {Name: "chat_scripted", Args: `{"prompt":"hi"}`}},
		Answer: " Both ran.",
	})
	for _, proto := range []struct{ name, endpoint string }{
		{"http/protobuf", "http://" + j.otlpHTTP},
		{"grpc", "http://" + j.otlpGRPC},
	} {
		t.Run(strings.ReplaceAll(proto.name, "/", "_"), func(t *testing.T) {
			env := c.env(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+proto.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL="+proto.name, "OTEL_SERVICE_NAME=")
			// A freshly launched membrane lists its Ollama model tools once
			// it has found them; a turn that came first is asked again.
			var turn session.TurnJSON
			for try := 0; ; try++ {
				r := c.run(t, env, c.args("--json", "-e", "run both")...)
				if r.code != 0 {
					t.Fatalf("exit %d", r.code)
				}
				turn = decodeTurn(t, r.stdout)
				if try == 4 || !strings.Contains(r.stdout, `unknown tool \"chat_scripted\"`) {
					break
				}
			}
			if turn.TraceID == "" || len(turn.ToolCalls) != 2 {
				t.Fatalf("turn: trace %q, %d tool calls", turn.TraceID, len(turn.ToolCalls))
			}
			for _, tc := range turn.ToolCalls {
				if tc.IsError {
					t.Fatalf("tool call %s failed: %s", tc.Name, tc.Result)
				}
			}
			// Both programs have exited, so both flushed.
			checkTurnTrace(t, j, turn)
		})
	}

	// The operator's set-up: membrane serving HTTP with a token, the audit
	// log and the store, and the orchestrator reaching it with
	// --server-url (the sessionless protocol, trace context in _meta).
	// The turn is one trace all the same, and membrane's records of its
	// calls carry that trace's ID: in the store, in membrane calls show,
	// and in the orchestrator's history.
	t.Run("membrane_over_http", func(t *testing.T) {
		dir := t.TempDir()
		tokenFile, db := filepath.Join(dir, "token"), filepath.Join(dir, "membrane.db")
		if err := os.WriteFile(tokenFile, []byte("jaeger-e2e-token-5a6b7c8d9e0f\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := c.env(t, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+j.otlpHTTP, "OTEL_SERVICE_NAME=")
		addr := mcptest.FreeAddr(t)
		srv := exec.Command(c.membrane, "--http", addr, "--token-file", tokenFile, "--store", db, "--audit-log", filepath.Join(dir, "audit.jsonl"))
		srv.Env = env
		var logs mcptest.SyncBuffer
		srv.Stderr = &logs
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				srv.Process.Signal(syscall.SIGTERM)
				srv.Wait()
			}
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("membrane --http logs:\n%s", logs.String())
			}
		})
		waitHTTP(t, "http://"+addr+"/healthz")
		var turn session.TurnJSON
		for try := 0; ; try++ {
			r := c.run(t, env, "--server-url", "http://"+addr+"/mcp", "--token-file", tokenFile, "--base-url", c.ollama.URL+"/v1", "--model", c.model, "--json", "-e", "run both")
			if r.code != 0 {
				t.Fatalf("exit %d", r.code)
			}
			turn = decodeTurn(t, r.stdout)
			if try == 4 || !strings.Contains(r.stdout, `unknown tool \"chat_scripted\"`) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if turn.TraceID == "" || len(turn.ToolCalls) != 2 {
			t.Fatalf("turn: trace %q, %d tool calls", turn.TraceID, len(turn.ToolCalls))
		}
		// membrane flushes its spans as it stops.
		stop()
		spans := checkTurnTrace(t, j, turn)
		for _, s := range spans {
			if s.service == "membrane" && s.OperationName == "tools/call sh" && s.tag("network.transport") != "tcp" {
				t.Errorf("membrane's tools/call over HTTP has network.transport %q, want tcp", s.tag("network.transport"))
			}
		}

		out, err := exec.Command(c.membrane, "calls", "--store", db, "--json").Output()
		if err != nil {
			t.Fatalf("membrane calls: %v", err)
		}
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var rec struct {
				ID, Call string
				TraceID  string `json:"trace_id"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("membrane calls --json: %v: %s", err, line)
			}
			if rec.TraceID != turn.TraceID {
				t.Errorf("stored call %s (%s) has trace %q, want the turn's %s", rec.ID, rec.Call, rec.TraceID, turn.TraceID)
			}
			ids = append(ids, rec.ID)
		}
		if len(ids) < 2 {
			t.Fatalf("membrane calls --json listed %d calls, want the turn's 2:\n%s", len(ids), out)
		}
		show, err := exec.Command(c.membrane, "calls", "--store", db, "show", ids[0]).Output()
		if err != nil || !strings.Contains(string(show), "trace     "+turn.TraceID+"\n") {
			t.Errorf("membrane calls show %s: %v\n%s", ids[0], err, show)
		}
		hist := c.run(t, env, "--history")
		if hist.code != 0 || !strings.Contains(hist.stdout, "trace "+turn.TraceID) {
			t.Errorf("orchestrator --history lacks the trace %s:\n%s", turn.TraceID, hist.stdout)
		}
	})
}

// checkTurnTrace finds the turn as ONE trace in Jaeger's API, with every
// span of the chain under the right parent and the attributes an operator
// looks for.
func checkTurnTrace(t *testing.T, j *jaeger, turn session.TurnJSON) []jaegerSpan {
	t.Helper()
	// Jaeger's batch may still be on its way.
	want := []string{"orchestrator/turn", "orchestrator/chat scripted", "orchestrator/tools/call sh", "orchestrator/tools/call chat_scripted",
		"membrane/tools/call sh", "membrane/sandbox run", "membrane/tools/call chat_scripted", "membrane/chat scripted:latest"}
	var spans []jaegerSpan
	var missing []string
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		spans, err = j.trace(turn.TraceID)
		missing = missing[:0]
		have := map[string]bool{}
		for _, s := range spans {
			have[s.service+"/"+s.OperationName] = true
		}
		for _, w := range want {
			if !have[w] {
				missing = append(missing, w)
			}
		}
		if err == nil && len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var b bytes.Buffer
			for _, s := range spans {
				fmt.Fprintf(&b, "  %s/%s %s parent %s\n", s.service, s.OperationName, s.SpanID, s.parent())
			}
			t.Fatalf("trace %s: %v; missing %v; has:\n%s", turn.TraceID, err, missing, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	byKey := map[string]jaegerSpan{}
	byID := map[string]jaegerSpan{}
	for _, s := range spans {
		byID[s.SpanID] = s
		k := s.service + "/" + s.OperationName
		if _, dup := byKey[k]; dup && k != "orchestrator/chat scripted" && k != "orchestrator/HTTP POST" {
			t.Errorf("two %s spans", k)
		}
		byKey[k] = s
	}
	parentOf := func(k string) string {
		p, ok := byID[byKey[k].parent()]
		if !ok {
			return "(none)"
		}
		return p.service + "/" + p.OperationName
	}
	for child, parent := range map[string]string{
		"orchestrator/tools/call sh":            "orchestrator/turn",
		"membrane/tools/call sh":                "orchestrator/tools/call sh",
		"membrane/sandbox run":                  "membrane/tools/call sh",
		"membrane/tools/call chat_scripted":     "orchestrator/tools/call chat_scripted",
		"membrane/chat scripted:latest":         "membrane/tools/call chat_scripted",
		"orchestrator/tools/call chat_scripted": "orchestrator/turn",
	} {
		if got := parentOf(child); got != parent {
			t.Errorf("%s's parent is %s, want %s", child, got, parent)
		}
	}
	sh := byKey["membrane/tools/call sh"]
	if sh.tag("mcp.method.name") != "tools/call" || sh.tag("gen_ai.tool.name") != "sh" || sh.tag("span.kind") != "server" || sh.tag("mcp.session.id") == "" {
		t.Errorf("membrane's sh span tags: %+v", sh.Tags)
	}
	if run := byKey["membrane/sandbox run"]; run.tag("process.exit.code") != "0" || run.tag("membrane.sandbox.isolation") == "" {
		t.Errorf("sandbox span tags: %+v", run.Tags)
	}
	chat := byKey["membrane/chat scripted:latest"]
	if !strings.HasPrefix(chat.tag("gen_ai.request.model"), "scripted") || chat.tag("gen_ai.usage.output_tokens") == "0" || chat.tag("gen_ai.usage.output_tokens") == "" ||
		chat.tag("gen_ai.usage.input_tokens") == "" || chat.tag("gen_ai.provider.name") != "ollama" ||
		chat.tag("server.address") != "127.0.0.1" || chat.tag("server.port") == "" || chat.tag("server.port") == "0" {
		t.Errorf("membrane's Ollama span tags: %+v", chat.Tags)
	}
	// The model request to /v1 is an HTTP client span under the
	// orchestrator's model call: traceparent went to the endpoint.
	http := 0
	for _, s := range spans {
		if s.service == "orchestrator" && s.tag("http.request.method") == "POST" {
			if p := byID[s.parent()]; p.OperationName != "chat scripted" {
				t.Errorf("HTTP span %s under %q", s.OperationName, p.OperationName)
			}
			http++
		}
	}
	if http < 2 {
		t.Errorf("%d HTTP spans of the model calls, want one per model call (2)", http)
	}
	return spans
}
