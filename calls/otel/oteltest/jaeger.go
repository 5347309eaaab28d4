// Package oteltest runs a real Jaeger all-in-one (v1.76, the binary
// .ci/jaeger.sh builds) as an OTLP receiver for tests and benchmarks.
package oteltest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// EnvJaeger names the Jaeger binary ("off" skips what needs it on
// purpose). `make test-jaeger` and `make bench` build it into the cache.
const EnvJaeger = "MEMBRANE_TEST_JAEGER"

// JaegerPath returns the Jaeger binary to run, or "" and why there is
// none (with how to get it).
func JaegerPath() (path, why string) {
	p := os.Getenv(EnvJaeger)
	if p == "off" {
		return "", EnvJaeger + "=off"
	}
	if p == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", "no cache directory for the Jaeger binary; set " + EnvJaeger
		}
		p = filepath.Join(dir, "membrane", "jaeger-v1.76.0", "jaeger")
	}
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		return "", fmt.Sprintf("no Jaeger at %s (build it with `make test-jaeger` or `make bench`, which run .ci/jaeger.sh, or set %s)", p, EnvJaeger)
	}
	return p, ""
}

// Jaeger is a running Jaeger all-in-one with in-memory storage: OTLP over
// HTTP and gRPC in, the query API out (host:port each).
type Jaeger struct {
	OTLPHTTP, OTLPGRPC, Query string
	// PID is the Jaeger process's, for benchmarks that count its CPU.
	PID int
}

// CPUTime is the user and system CPU time process pid has used so far
// (from Linux's /proc; zero elsewhere).
func CPUTime(pid int) time.Duration {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(st)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// After the name: state, then 10 more fields before utime and stime,
	// which are in clock ticks (USER_HZ, 100 on Linux).
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return time.Duration(u+k) * 10 * time.Millisecond
}

// StartJaeger runs the Jaeger at bin until the test ends, and waits until
// its query API answers.
func StartJaeger(t testing.TB, bin string) *Jaeger {
	t.Helper()
	j := &Jaeger{OTLPHTTP: mcptest.FreeAddr(t), OTLPGRPC: mcptest.FreeAddr(t), Query: mcptest.FreeAddr(t)}
	health, queryGRPC := mcptest.FreeAddr(t), mcptest.FreeAddr(t)
	config := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: %s
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 1000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`, health, j.Query, queryGRPC, j.OTLPGRPC, j.OTLPHTTP)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs mcptest.SyncBuffer
	cmd := exec.Command(bin, "--config", cfg)
	// Jaeger traces itself to a fixed default port unless told not to.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	j.PID = cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("jaeger log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + j.Query + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger never answered on %s: %v", j.Query, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
