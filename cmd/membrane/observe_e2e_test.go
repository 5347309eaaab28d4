package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

const (
	e2eAKIA = "AKIAIOSFODNN7EXAMPLE"
	e2ePEM  = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----"
)

// TestAuditLogEndToEnd runs the binary over HTTP with an audit log and JSON
// logs, makes an ok call and a failing one whose arguments hold the token,
// an AWS key and a PEM block, and checks the ledger has both calls with
// their outcome and reason, while neither it nor the logs hold a secret.
func TestAuditLogEndToEnd(t *testing.T) {
	bin := binary(t)
	const token = "audit-e2e-token-5f0c1d2e3a4b"
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	db := filepath.Join(t.TempDir(), "state", "membrane.db")
	cmd, base, stderr, exited := startHTTP(t, bin, append([]string{"--token", token, "--audit-log", audit, "--store", db, "--log-format", "json"}, noOllama...)...)
	cs := mcptest.ConnectHTTP(t, base+"/mcp", token, nil)
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "echo fine"})
	sandboxWorks(t, res, text)
	if res.IsError {
		t.Fatalf("sh = %q", text)
	}
	secretCmd := fmt.Sprintf("echo --token %s --key %s >/dev/null; cat >/dev/null <<'EOF'\n%s\nEOF\nexit 3", token, e2eAKIA, e2ePEM)
	if res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": secretCmd}); !res.IsError {
		t.Fatalf("the failing call succeeded: %q", text)
	}
	cs.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("membrane did not exit after SIGTERM")
	}

	raw, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	var lines []ledger.Entry
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var e ledger.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, sc.Text())
		}
		lines = append(lines, e)
	}
	if len(lines) != 2 {
		t.Fatalf("%d audit lines, want 2:\n%s", len(lines), raw)
	}
	ok, failed := lines[0], lines[1]
	if ok.Call != "sh" || ok.Outcome != "ok" || ok.Client == "" || ok.Run == nil || ok.Run.ExitCode != 0 || ok.Run.Isolation == "" {
		t.Errorf("ok line: %+v run %+v", ok, ok.Run)
	}
	if failed.Outcome != "tool_error" || failed.Reason != "exit code 3" || failed.Run == nil || failed.Run.ExitCode != 3 {
		t.Errorf("failed line: %+v run %+v", failed, failed.Run)
	}
	if !strings.Contains(string(failed.Args), "[membrane: redacted secret]") || !strings.Contains(string(failed.Args), "[membrane: redacted private-key]") {
		t.Errorf("failed line's arguments are not marked as scrubbed: %s", failed.Args)
	}
	logs := stderr.String()
	for where, text := range map[string]string{"audit log": string(raw), "log": logs} {
		for _, secret := range []string{token, e2eAKIA, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s holds the secret %q", where, secret)
			}
		}
	}
	if !strings.Contains(logs, `"outcome":"tool_error","reason":"exit code 3"`) || !strings.Contains(logs, `"dur_ms":`) {
		t.Errorf("the JSON log lacks the outcome, reason or dur_ms:\n%s", logs)
	}

	// The trace store holds the same two calls; membrane calls reads it.
	out, err := exec.Command(bin, "calls", "--store", db, "--json").Output()
	if err != nil {
		t.Fatalf("membrane calls: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n != 2 {
		t.Errorf("membrane calls --json printed %d calls, want 2:\n%s", n, out)
	}
	out, err = exec.Command(bin, "calls", "--store", db, "--outcome", "tool_error", "--json").Output()
	var stored struct{ ID, Outcome, Reason string }
	if err != nil || json.Unmarshal(out, &stored) != nil || stored.Reason != "exit code 3" {
		t.Fatalf("membrane calls --outcome tool_error: %v %s", err, out)
	}
	out, err = exec.Command(bin, "calls", "--store", db, "show", stored.ID).Output()
	if err != nil || !strings.Contains(string(out), "reason    exit code 3") || !strings.Contains(string(out), "[membrane: redacted private-key]") {
		t.Errorf("membrane calls show: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "calls", "--store", db, "--outcome", "fine").CombinedOutput(); err == nil || !strings.Contains(string(out), "not ok, tool_error") {
		t.Errorf("a bad filter: %v %s", err, out)
	}
	for _, p := range []string{db, db + "-wal"} {
		raw, _ := os.ReadFile(p)
		for _, secret := range []string{token, e2eAKIA, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("%s holds the secret %q", filepath.Base(p), secret)
			}
		}
	}
}

// TestStoreUnwritable: a trace store path that cannot be made is a clear
// log line, and membrane serves calls without it.
func TestStoreUnwritable(t *testing.T) {
	bin := binary(t)
	_, base, stderr, _ := startHTTP(t, bin, append([]string{"--store", "/proc/membrane-no-such/membrane.db"}, noOllama...)...)
	cs := mcptest.ConnectHTTP(t, base+"/mcp", "", nil)
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "echo still working"})
	sandboxWorks(t, res, text)
	if res.IsError || !strings.Contains(text, "still working") {
		t.Errorf("sh without a store = %q", text)
	}
	if !strings.Contains(stderr.String(), "trace store off") {
		t.Errorf("no log line about the store:\n%s", stderr.String())
	}
}
