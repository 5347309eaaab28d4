package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	*oteltest.Jaeger
	otlpHTTP, otlpGRPC string
}

func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	j := oteltest.StartJaeger(t, jaegerBinary(t))
	return &jaeger{Jaeger: j, otlpHTTP: j.OTLPHTTP, otlpGRPC: j.OTLPGRPC}
}

// jaegerSpan is a span as Jaeger's HTTP API shows it.
type jaegerSpan = oteltest.Span

// trace fetches one trace by ID from Jaeger's query API.
func (j *jaeger) trace(id string) ([]jaegerSpan, error) { return j.Trace(id) }

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
			for _, s := range checkTurnTrace(t, j, turn) {
				// Over stdio the client has a session, which the span names.
				if s.Service == "membrane" && s.OperationName == "tools/call sh" && (s.Tag("mcp.session.id") == "" || s.Tag("mcp.protocol.version") == "") {
					t.Errorf("membrane's tools/call over stdio: mcp.session.id %q, mcp.protocol.version %q", s.Tag("mcp.session.id"), s.Tag("mcp.protocol.version"))
				}
			}
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
			if s.OperationName == "tools/call sh" && s.Tag("network.transport") != "tcp" {
				t.Errorf("%s's tools/call over HTTP has network.transport %q, want tcp", s.Service, s.Tag("network.transport"))
			}
			// The orchestrator speaks the sessionless protocol over HTTP:
			// no session to name.
			if s.Service == "membrane" && s.OperationName == "tools/call sh" && (s.Tag("mcp.session.id") != "" || s.Tag("mcp.protocol.version") != "2026-07-28" || s.Tag("membrane.call.id") == "") {
				t.Errorf("membrane's tools/call of a sessionless client: mcp.session.id %q, mcp.protocol.version %q, membrane.call.id %q",
					s.Tag("mcp.session.id"), s.Tag("mcp.protocol.version"), s.Tag("membrane.call.id"))
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
			have[s.Service+"/"+s.OperationName] = true
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
				fmt.Fprintf(&b, "  %s/%s %s parent %s\n", s.Service, s.OperationName, s.SpanID, s.Parent())
			}
			t.Fatalf("trace %s: %v; missing %v; has:\n%s", turn.TraceID, err, missing, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	byKey := map[string]jaegerSpan{}
	byID := map[string]jaegerSpan{}
	for _, s := range spans {
		byID[s.SpanID] = s
		k := s.Service + "/" + s.OperationName
		if _, dup := byKey[k]; dup && k != "orchestrator/chat scripted" && k != "orchestrator/HTTP POST" {
			t.Errorf("two %s spans", k)
		}
		byKey[k] = s
	}
	parentOf := func(k string) string {
		p, ok := byID[byKey[k].Parent()]
		if !ok {
			return "(none)"
		}
		return p.Service + "/" + p.OperationName
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
	if sh.Tag("mcp.method.name") != "tools/call" || sh.Tag("gen_ai.tool.name") != "sh" || sh.Tag("span.kind") != "server" {
		t.Errorf("membrane's sh span tags: %+v", sh.Tags)
	}
	if run := byKey["membrane/sandbox run"]; run.Tag("process.exit.code") != "0" || run.Tag("membrane.sandbox.isolation") == "" {
		t.Errorf("sandbox span tags: %+v", run.Tags)
	}
	chat := byKey["membrane/chat scripted:latest"]
	if !strings.HasPrefix(chat.Tag("gen_ai.request.model"), "scripted") || chat.Tag("gen_ai.usage.output_tokens") == "0" || chat.Tag("gen_ai.usage.output_tokens") == "" ||
		chat.Tag("gen_ai.usage.input_tokens") == "" || chat.Tag("gen_ai.provider.name") != "ollama" ||
		chat.Tag("server.address") != "127.0.0.1" || chat.Tag("server.port") == "" || chat.Tag("server.port") == "0" {
		t.Errorf("membrane's Ollama span tags: %+v", chat.Tags)
	}
	// The orchestrator's own model call, by the GenAI conventions: an
	// OpenAI-compatible client names the provider openai.
	if oc := byKey["orchestrator/chat scripted"]; oc.Tag("gen_ai.provider.name") != "openai" || oc.Tag("server.address") != "127.0.0.1" ||
		oc.Tag("server.port") == "" || oc.Tag("server.port") == "0" {
		t.Errorf("orchestrator's chat span tags: %+v", oc.Tags)
	}
	if tr := byKey["orchestrator/tools/call sh"].Tag("network.transport"); tr != "pipe" && tr != "tcp" {
		t.Errorf("orchestrator's tools/call sh has network.transport %q, want pipe or tcp", tr)
	}
	// The model request to /v1 is an HTTP client span under the
	// orchestrator's model call: traceparent went to the endpoint.
	http := 0
	for _, s := range spans {
		if s.Service == "orchestrator" && s.Tag("http.request.method") == "POST" {
			if p := byID[s.Parent()]; p.OperationName != "chat scripted" {
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
