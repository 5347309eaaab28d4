package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls/otel/oteltest"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestJaegerUntracedCalls runs the real binary over HTTP with
// named tokens, the store, the audit log and tracing to a real Jaeger, and
// two clients that send no traceparent (as Claude Desktop does): alice on
// the sessionless protocol (2026-07-28), bob with a 2025-11-25 session.
// Each call's store row and ledger line carry the trace ID membrane made
// for it and the name of the token (never the token); `membrane calls
// --token` picks one holder's calls (bob's, the control, stays out); and
// Jaeger holds each trace, whose tools/call span names the store's call ID
// (membrane.call.id) and the protocol version, with an mcp.session.id only
// for the client that has a session. bob's call floods stdout past the
// output cap: its stored run, its ledger line and its sandbox span name the
// limit it hit (alice's quiet call names none).
func TestJaegerUntracedCalls(t *testing.T) {
	bin := binary(t)
	jbin, why := oteltest.JaegerPath()
	if jbin == "" {
		mcptest.Require(t, why)
	}
	j := oteltest.StartJaeger(t, jbin)
	const alice, bob = "alice-untraced-0123456789", "bob-untraced-0123456789ab"
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"alice","token":"`+alice+`"},{"name":"bob","token":"`+bob+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	db, audit := filepath.Join(dir, "membrane.db"), filepath.Join(dir, "audit.jsonl")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+j.OTLPHTTP)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	srv, base, _, exited := startHTTP(t, bin, append([]string{"--tokens-file", tokens, "--store", db, "--audit-log", audit}, noOllama...)...)

	for _, c := range []struct{ token, version string }{{alice, ""}, {bob, "2025-11-25"}} {
		cs := mcptest.ConnectHTTPVersion(t, base+"/mcp", c.token, c.version, nil)
		// bob floods stdout past the output cap, which cuts it (and
		// kills nothing): his records say the limit was hit.
		cmd := "echo untraced"
		if c.token == bob {
			cmd = "head -c 2000000 /dev/zero | tr '\\0' x; echo"
		}
		res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": cmd})
		sandboxWorks(t, res, text)
		if res.IsError {
			t.Fatalf("sh = %q", text)
		}
		cs.Close()
	}
	// membrane exports its last spans and closes the store as it stops.
	srv.Process.Signal(syscall.SIGTERM)
	<-exited

	type row struct {
		ID, Call, Session string
		TraceID           string `json:"trace_id"`
		TokenName         string `json:"token_name"`
		Run               struct {
			Limits []string `json:"limits"`
		} `json:"run"`
	}
	list := func(args ...string) []row {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"calls", "--store", db, "--json"}, args...)...).Output()
		if err != nil {
			t.Fatalf("membrane calls %v: %v", args, err)
		}
		var rows []row
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var r row
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("membrane calls --json: %v: %s", err, l)
			}
			rows = append(rows, r)
		}
		return rows
	}
	rows := list()
	if len(rows) != 2 {
		t.Fatalf("%d stored calls, want 2: %+v", len(rows), rows)
	}
	byToken := map[string]row{}
	for _, r := range rows {
		if len(r.TraceID) != 32 {
			t.Errorf("stored call %s has trace ID %q: no way to its trace", r.ID, r.TraceID)
		}
		byToken[r.TokenName] = r
	}
	if byToken["alice"].ID == "" || byToken["bob"].ID == "" || byToken["alice"].TraceID == byToken["bob"].TraceID {
		t.Fatalf("stored calls by token: %+v", byToken)
	}
	if l := byToken["bob"].Run.Limits; len(l) != 1 || l[0] != "output" {
		t.Errorf("bob's output flood: stored run limits %v, want [output]", l)
	}
	if l := byToken["alice"].Run.Limits; len(l) != 0 {
		t.Errorf("alice's quiet call: stored run limits %v", l)
	}
	if got := list("--token", "alice"); len(got) != 1 || got[0].ID != byToken["alice"].ID {
		t.Errorf("membrane calls --token alice = %+v, want alice's call only", got)
	}

	// The ledger: the same trace ID and token name, never the token.
	raw, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), alice) || strings.Contains(string(raw), bob) {
		t.Errorf("a token is in the audit log:\n%s", raw)
	}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	lines := 0
	for sc.Scan() {
		var l struct {
			TraceID   string `json:"trace_id"`
			TokenName string `json:"token_name"`
			Run       struct {
				Limits []string `json:"limits"`
			} `json:"run"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line: %v: %s", err, sc.Bytes())
		}
		lines++
		if r, ok := byToken[l.TokenName]; !ok || r.TraceID != l.TraceID || len(r.Run.Limits) != len(l.Run.Limits) {
			t.Errorf("audit line %s: token %q, trace %q; the store has %+v", sc.Bytes(), l.TokenName, l.TraceID, byToken)
		}
	}
	if lines != 2 {
		t.Errorf("%d audit lines, want 2", lines)
	}

	// Jaeger: each stored trace ID finds its call's span.
	for name, want := range map[string]struct {
		version string
		session bool
	}{"alice": {newProto, false}, "bob": {"2025-11-25", true}} {
		r := byToken[name]
		var spans []oteltest.Span
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			spans, err = j.Trace(r.TraceID)
			if err == nil && len(spans) >= 2 || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s's trace %s in Jaeger: %v", name, r.TraceID, err)
		}
		var call *oteltest.Span
		for i := range spans {
			if spans[i].OperationName == "tools/call sh" {
				call = &spans[i]
			}
		}
		if call == nil {
			t.Fatalf("%s's trace %s has no tools/call sh span: %+v", name, r.TraceID, spans)
		}
		for _, s := range spans {
			if s.OperationName == "sandbox run" && s.Tag("membrane.sandbox.limits") != strings.Join(r.Run.Limits, ",") {
				t.Errorf("%s's sandbox run span: membrane.sandbox.limits %q, want %v", name, s.Tag("membrane.sandbox.limits"), r.Run.Limits)
			}
		}
		if got := call.Tag("membrane.call.id"); got != r.ID {
			t.Errorf("%s's span: membrane.call.id %q, want the store's %q", name, got, r.ID)
		}
		if got := call.Tag("mcp.protocol.version"); got != want.version {
			t.Errorf("%s's span: mcp.protocol.version %q, want %q", name, got, want.version)
		}
		if got := call.Tag("mcp.session.id"); (got != "") != want.session || want.session && got != r.Session {
			t.Errorf("%s's span: mcp.session.id %q (the store's session %q; a session: %v)", name, got, r.Session, want.session)
		}
	}
}
