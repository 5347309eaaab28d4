package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	cmd, base, stderr, exited := startHTTP(t, bin, append([]string{"--token", token, "--audit-log", audit, "--log-format", "json"}, noOllama...)...)
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
}

// TestPrometheusScrapesMembrane runs a real Prometheus (the Debian package,
// which make test-deps installs) against membrane's /metrics, behind the
// token, and asks its HTTP API for the rate of the call counter after
// known calls.
func TestPrometheusScrapesMembrane(t *testing.T) {
	bin := binary(t)
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		skipOrFail(t, "no prometheus on PATH (apt-get install prometheus, or make test-deps)")
	}
	const token = "prom-e2e-token-0123456789"
	_, base, _, _ := startHTTP(t, bin, append([]string{"--token", token}, noOllama...)...)

	dir := t.TempDir()
	promAddr := freeAddr(t)
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: membrane
    authorization:
      credentials: %s
    static_configs:
      - targets: ["%s"]
`, token, strings.TrimPrefix(base, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	pcmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	var plog syncBuffer
	pcmd.Stdout, pcmd.Stderr = &plog, &plog
	if err := pcmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pcmd.Process.Kill()
		pcmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", plog.String())
		}
	})

	// query returns the value of a one-sample instant vector, or false.
	query := func(q string) (float64, bool) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &r) != nil || r.Status != "success" || len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	waitFor := func(q string, ok func(float64) bool) float64 {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second) // a hang detector; scrapes come every second
		for {
			if v, found := query(q); found && ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				v, found := query(q)
				t.Fatalf("prometheus never saw %s as wanted (last: %v, found %v)", q, v, found)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The scrape works (through the token) before any call.
	waitFor(`up{job="membrane"}`, func(v float64) bool { return v == 1 })
	cs := mcptest.ConnectHTTP(t, base+"/mcp", token, nil)
	res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "true"})
	sandboxWorks(t, res, text)
	if res.IsError {
		t.Fatalf("sh = %q", text)
	}
	// One sample with the first call, then more calls, so the rate has
	// two different samples to work from.
	waitFor(`membrane_calls_total{call="sh",outcome="ok"}`, func(v float64) bool { return v == 1 })
	for range 4 {
		if res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "true"}); res.IsError {
			t.Fatalf("sh = %q", text)
		}
	}
	waitFor(`membrane_calls_total{call="sh",outcome="ok"}`, func(v float64) bool { return v == 5 })
	if rate := waitFor(`rate(membrane_calls_total{call="sh",outcome="ok"}[1m])`, func(v float64) bool { return v > 0 }); rate <= 0 {
		t.Errorf("rate = %v", rate)
	}
	waitFor(`membrane_call_duration_seconds_count{call="sh"}`, func(v float64) bool { return v == 5 })
	waitFor(`membrane_sandbox_start_seconds_count`, func(v float64) bool { return v == 5 })
	waitFor(`membrane_sessions_open`, func(v float64) bool { return v == 1 })
	waitFor(`go_goroutines{job="membrane"}`, func(v float64) bool { return v > 0 })
	// Nothing about arguments or sessions becomes a label.
	resp, err := http.Get("http://" + promAddr + "/api/v1/labels")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "session") || strings.Contains(string(b), "args") {
		t.Errorf("labels hold sessions or arguments: %s", b)
	}
}
