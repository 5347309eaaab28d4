package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// fakeOllamaModels serves n chat models, capabilities in /api/show as
// Ollama v0.6.5 sends them: enough of Ollama for discovery.
func fakeOllamaModels(b *testing.B, n int) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"version":"0.6.5"}`)
	})
	mux.HandleFunc("GET /api/tags", func(w http.ResponseWriter, r *http.Request) {
		type model struct {
			Name    string         `json:"name"`
			Model   string         `json:"model"`
			Digest  string         `json:"digest"`
			Size    int64          `json:"size"`
			Details map[string]any `json:"details"`
		}
		var out struct {
			Models []model `json:"models"`
		}
		for i := range n {
			name := fmt.Sprintf("hf.co/org/model-%04d:Q4_K_M", i)
			out.Models = append(out.Models, model{Name: name, Model: name, Digest: fmt.Sprintf("sha256:%064d", i), Size: 1 << 20,
				Details: map[string]any{"family": "llama", "parameter_size": "1M", "quantization_level": "F32", "format": "gguf"}})
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /api/show", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"capabilities":["completion"],"model_info":{"general.architecture":"llama","llama.context_length":2048},"details":{"family":"llama"}}`)
	})
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv.URL
}

// procKB reads one "Key: N kB" line of /proc/PID/status, in MiB.
func procMiB(pid int, key string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key+":" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkMemory2000Models serves 2,000 models over HTTP and drives
// tools/list (its first page) from 4 sessions, under the GC settings
// membrane picks by default and under the alternatives: peak and final RSS
// and req/s, each as a ratio against the default run in the same run; and
// the RSS once discovery is done, before the load. The default's target is
// an idle RSS under 60 MiB.
func BenchmarkMemory2000Models(b *testing.B) {
	bin, _ := benchBinaries(b)
	url := fakeOllamaModels(b, 2000)
	body := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	type run struct{ idle, peak, rss, rps float64 }
	measure := func(env ...string) run {
		cmd, murl := benchHTTPEnv(b, bin, env, "--ollama-host", url)
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(b.Context(), &sdk.StreamableClientTransport{Endpoint: murl}, nil)
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			n := 0
			var err error
			for _, e := range cs.Tools(b.Context(), nil) {
				if err = e; err != nil {
					break
				}
				n++
			}
			if err == nil && n >= 2000 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("the 2,000 models never showed up as tools: %d, %v", n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cs.Close()
		idle := procMiB(cmd.Process.Pid, "VmRSS")
		res := runLoad(b, murl, 4, max(b.N, 40), body)
		if res.Errors > 0 {
			b.Fatalf("%d errors", res.Errors)
		}
		r := run{idle: idle, peak: procMiB(cmd.Process.Pid, "VmHWM"), rss: procMiB(cmd.Process.Pid, "VmRSS"), rps: res.RPS()}
		cmd.Process.Kill()
		cmd.Wait()
		return r
	}
	measure() // warm up the fake and the page cache: the first run pays for both
	b.ResetTimer()
	def := measure()
	old := measure("GOGC=400", "GOMEMLIMIT=512MiB")
	plain := measure("GOGC=100", "GOMEMLIMIT=off")
	// Twice the pace, under the machine-sized limit: the pace that cuts an
	// MCP call's CPU time by a seventh (BenchmarkBinaryGCPercent, ollama).
	double := measure("GOGC=200")
	b.StopTimer()
	b.ReportMetric(def.idle, "idle_rss_MiB")
	b.ReportMetric(old.idle, "gogc400_idle_rss_MiB")
	b.ReportMetric(plain.idle, "gogc100_idle_rss_MiB")
	b.ReportMetric(def.peak, "peak_rss_MiB")
	b.ReportMetric(def.rss, "rss_MiB")
	b.ReportMetric(def.rps, "req/s")
	b.ReportMetric(old.peak, "gogc400_peak_rss_MiB")
	b.ReportMetric(old.rps/def.rps, "x_rps_gogc400")
	b.ReportMetric(plain.peak, "gogc100_peak_rss_MiB")
	b.ReportMetric(plain.rps/def.rps, "x_rps_gogc100")
	b.ReportMetric(double.idle, "gogc200_idle_rss_MiB")
	b.ReportMetric(double.peak, "gogc200_peak_rss_MiB")
	b.ReportMetric(double.rps/def.rps, "x_rps_gogc200")
	b.ReportMetric(0, "ns/op")
}
