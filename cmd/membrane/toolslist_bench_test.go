package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// BenchmarkHTTPToolsList is tools/list over HTTP from 50 sessions for
// membrane's default tool set, and for the same tools (membrane's own
// tools/list, written to a file) served by a bare go-sdk server and by a
// mark3labs/mcp-go server (tools/bench/mcpgo, a module of its own, never
// linked into membrane), all in the same run. x_mcpgo_rps above 1 means
// membrane answers more lists a second than mcp-go.
func BenchmarkHTTPToolsList(b *testing.B) {
	bin, base := benchBinaries(b)
	peer := mcptest.BuildBinary(b, "./tools/bench/mcpgo")
	_, url := benchHTTP(b, bin, noOllama...)

	cs := mcptest.ConnectHTTP(b, url, "", nil)
	list, err := cs.ListTools(b.Context(), nil)
	if err != nil || len(list.Tools) == 0 {
		b.Fatalf("tools/list: %v %v", list, err)
	}
	data, err := json.Marshal(list.Tools)
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "tools.json")
	if p := os.Getenv("MEMBRANE_BENCH_TOOLS_OUT"); p != "" {
		os.WriteFile(p, data, 0o644)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	_, burl := benchHTTP(b, base, "-tools", file)
	_, purl := benchHTTP(b, peer, "-tools", file)

	const workers = 50
	body := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	total := max(b.N, 4000)
	for _, u := range []string{url, burl, purl} {
		runLoad(b, u, workers, 200, body) // warm up each
	}
	// Round by round, so that load from elsewhere on the machine weighs on
	// the three alike.
	const rounds = 4
	var rps [3]float64
	var errs [3]int
	b.ResetTimer()
	for range rounds {
		for i, u := range []string{url, burl, purl} {
			r := runLoad(b, u, workers, total/rounds, body)
			rps[i] += r.RPS() / rounds
			errs[i] += r.Errors
		}
	}
	b.StopTimer()
	for i, name := range []string{"membrane", "bare", "mcpgo"} {
		if errs[i] > 0 {
			b.Fatalf("%s: %d errors", name, errs[i])
		}
	}
	b.ReportMetric(float64(len(list.Tools)), "tools")
	b.ReportMetric(float64(len(data)), "list_bytes")
	b.ReportMetric(rps[0], "req/s")
	b.ReportMetric(rps[1], "bare_req/s")
	b.ReportMetric(rps[2], "mcpgo_req/s")
	b.ReportMetric(rps[0]/rps[1], "x_bare_rps")
	b.ReportMetric(rps[0]/rps[2], "x_mcpgo_rps")
}
