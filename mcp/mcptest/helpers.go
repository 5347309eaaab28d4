package mcptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// EnvRequire, set to 1 (as CI sets it), turns every skip for a missing
// prerequisite of an end-to-end test into a failure.
const EnvRequire = "MEMBRANE_REQUIRE_E2E"

// Require skips the test because why (a missing prerequisite, said so the
// reader knows what to install), or fails it when $MEMBRANE_REQUIRE_E2E is
// 1: no silent skips in CI.
func Require(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s=1 but %s", EnvRequire, why)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", why, EnvRequire)
}

// SyncBuffer is a bytes.Buffer safe for one writer (a process's stderr,
// a logger) and readers in other goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProcess starts cmd (a helper server a test runs beside the code
// under test: Prometheus, Jaeger) with its stdout and stderr in the
// returned buffer, kills it when the test ends, and then logs what it
// wrote, under name, if the test failed.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *SyncBuffer {
	t.Helper()
	var logs SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("mcptest: start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
	return &logs
}

// FreeAddr returns a loopback host:port that nothing listened on a moment
// ago, for a server under test that must be given its address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Alternate runs base and other b.N times each, in alternating rounds of
// round calls so that both see the same machine, and returns how long
// other took over how long base took (1.0: other costs no more). Call it
// after the setup; it resets the benchmark's timer.
func Alternate(b *testing.B, round int, base, other func()) float64 {
	return AlternateRatios(b, round, base, other).Total
}

// Ratios are the two views of an Alternate run.
type Ratios struct {
	// Total is other's whole time over base's whole time: every pause
	// (a garbage collection, another process on the machine) counts, in
	// whichever rounds it fell.
	Total float64
	// Median is the median, over the rounds, of one round of other over
	// the round of base beside it: a round that another process on a
	// loaded machine took the CPU from weighs no more than any other.
	Median float64
}

// AlternateRatios is Alternate, reporting both the total and the median
// ratio. The order of base and other swaps every round, so that neither
// always runs in the other's wake.
func AlternateRatios(b *testing.B, round int, base, other func()) Ratios {
	var tBase, tOther time.Duration
	var per []float64
	run := func(f func()) time.Duration {
		t0 := time.Now()
		for range round {
			f()
		}
		return time.Since(t0)
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		var db, do time.Duration
		if len(per)%2 == 0 {
			db = run(base)
			do = run(other)
		} else {
			do = run(other)
			db = run(base)
		}
		tBase += db
		tOther += do
		per = append(per, float64(do)/float64(db))
	}
	b.StopTimer()
	slices.Sort(per)
	med := per[len(per)/2]
	if len(per)%2 == 0 {
		med = (per[len(per)/2-1] + per[len(per)/2]) / 2
	}
	return Ratios{Total: float64(tOther) / float64(tBase), Median: med}
}

// EchoCall is a tool that answers its "text" argument back; any other
// argument is a tool error.
func EchoCall(name string) calls.Call {
	return calls.Call{
		Name:        name,
		Description: "Echo the text back.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`),
		Kind:        calls.KindTool,
		Handler: calls.HandlerFunc(func(_ context.Context, req *calls.Request) (*calls.Result, error) {
			var in struct {
				Text string `json:"text"`
			}
			if err := calls.DecodeArgs(req.Arguments, &in); err != nil {
				return calls.Errorf("%v", err), nil
			}
			return calls.Text(in.Text), nil
		}),
	}
}

// EchoRouter returns a router holding one EchoCall, "echo": the smallest
// tool set a test of the MCP path needs.
func EchoRouter(t testing.TB) *calls.Router {
	t.Helper()
	r := calls.NewRouter(nil)
	if err := r.Add(EchoCall("echo")); err != nil {
		t.Fatal(err)
	}
	return r
}

// Do sends one HTTP request and returns the response with its body read
// (up to 1 MiB) and closed. A body of "" sends none. hdr sets headers,
// and its "Host" sets the request's Host. Redirects are not followed, and
// no cookie jar keeps what the server sets: a test sees each answer as the
// server gave it.
func Do(t testing.TB, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b)
}
