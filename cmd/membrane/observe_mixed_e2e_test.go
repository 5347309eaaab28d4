package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestMixedWorkloadEndToEnd runs the binary with an audit log and the
// store, one sandbox slot and no queue, and a real test Ollama, and makes
// ok calls, a tool error whose arguments hold the token, an AWS key and a
// PEM block, a timeout, a cancel, a busy and a model call. Both the ledger
// and the store (through `membrane calls`) hold every call exactly once,
// with its outcome and reason, and neither they nor the logs hold a
// secret.
func TestMixedWorkloadEndToEnd(t *testing.T) {
	bin := binary(t)
	srv := ollamatest.Versions(t)[0].Start(t)
	srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{Answer: " mixed answer"}))
	const token = "mixed-e2e-token-8d1e2f3a4b5c"
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	db := filepath.Join(t.TempDir(), "state", "membrane.db")
	cmd, base, stderr, exited := startHTTP(t, bin, "--token", token, "--audit-log", audit, "--store", db, "--log-format", "json",
		"--concurrency", "1", "--queue-length", "-1", "--ollama-host", srv.URL, "--ollama-refresh", "200ms")
	// A session (2025-11-25), so that the workspace is the same call to call.
	cs := mcptest.ConnectHTTPVersion(t, base+"/mcp", token, "2025-11-25", nil)

	type key struct{ call, outcome string }
	want := map[key]int{}
	call := func(ctx context.Context, name string, args map[string]any, outcome string) *sdk.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
		if outcome != "cancelled" && err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		want[key{name, outcome}]++
		return res
	}
	res := call(t.Context(), "sh", map[string]any{"cmd": "echo fine"}, "ok")
	sandboxWorks(t, res, textOf(res))
	secretCmd := fmt.Sprintf("echo --token %s --key %s >/dev/null; cat >/dev/null <<'EOF'\n%s\nEOF\nexit 3", token, e2eAKIA, e2ePEM)
	if res := call(t.Context(), "sh", map[string]any{"cmd": secretCmd}, "tool_error"); !res.IsError {
		t.Fatalf("exit 3 succeeded: %q", textOf(res))
	}
	call(t.Context(), "sh", map[string]any{"cmd": "sleep 30", "timeout_s": 0.5}, "timeout")

	// A call that holds the only sandbox slot until it is cancelled; a
	// second sh beside it is busy.
	release := holdOnlySlot(t, cs, func(call, outcome string) { want[key{call, outcome}]++ })
	if res := call(t.Context(), "sh", map[string]any{"cmd": "echo never"}, "busy"); !res.IsError {
		t.Fatalf("sh beside the held one was not busy: %q", textOf(res))
	}
	release()

	// The model call, on the real test Ollama.
	waitTool(t, cs, "chat_scripted")
	if res := call(t.Context(), "chat_scripted", map[string]any{"prompt": "hi"}, "ok"); res.IsError || !strings.Contains(textOf(res), "mixed answer") {
		t.Fatalf("chat_scripted = %q", textOf(res))
	}
	total := 0
	for _, n := range want {
		total += n
	}
	cs.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("membrane did not exit after SIGTERM")
	}

	type rec struct{ call, outcome, reason, model string }
	check := func(where string, recs []rec) {
		t.Helper()
		got := map[key]int{}
		for _, r := range recs {
			got[key{r.call, r.outcome}]++
			switch {
			case r.outcome == "tool_error" && r.call == "sh" && r.reason != "exit code 3",
				r.outcome == "timeout" && !strings.Contains(r.reason, "timed out") && !strings.Contains(r.reason, "timeout"),
				r.outcome == "busy" && !strings.HasPrefix(r.reason, "busy"),
				r.outcome == "cancelled" && r.reason == "",
				r.outcome == "ok" && r.reason != "",
				r.call == "chat_scripted" && r.model != "scripted" && !strings.HasPrefix(r.model, "scripted"):
				t.Errorf("%s: %+v", where, r)
			}
		}
		if len(recs) != total {
			t.Errorf("%s holds %d calls, want %d", where, len(recs), total)
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: %v %d times, want %d (all: %v)", where, k, got[k], n, got)
			}
		}
	}
	raw, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	var fromLedger []rec
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e ledger.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, sc.Text())
		}
		r := rec{e.Call, e.Outcome, e.Reason, ""}
		if e.Model != nil {
			r.model = e.Model.Model
		}
		fromLedger = append(fromLedger, r)
	}
	check("the ledger", fromLedger)

	out, err := exec.Command(bin, "calls", "--store", db, "--json", "--limit", "100").Output()
	if err != nil {
		t.Fatalf("membrane calls: %v", err)
	}
	var fromStore []rec
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var c struct {
			Call, Outcome, Reason string
			Model                 struct{ Model string }
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("membrane calls line: %v: %s", err, line)
		}
		fromStore = append(fromStore, rec{c.Call, c.Outcome, c.Reason, c.Model.Model})
	}
	check("the store", fromStore)

	texts := map[string]string{"ledger": string(raw), "log": stderr.String(), "store listing": string(out)}
	for _, p := range []string{db, db + "-wal"} {
		b, _ := os.ReadFile(p)
		texts[filepath.Base(p)] = string(b)
	}
	for where, text := range texts {
		for _, secret := range []string{token, e2eAKIA, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s holds the secret %q", where, secret)
			}
		}
	}
}

func textOf(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
