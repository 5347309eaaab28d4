package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestLimitHits runs a real fork bomb and a real output flood through
// bubblewrap and checks that the result says which limit each ran into
// (process_limit_hits from the call cgroup's pids.events, the output
// cap from the capture) and that calls.RunInfo.Limits names them, with a
// call under both limits beside them naming none.
func TestLimitHits(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)

	// Allow: a few processes and a little output hit nothing.
	r := sh(t, cs, `for i in 1 2 3 4 5; do sleep 0.1 & done; wait; echo quiet`)
	if out := ok(t, r); out != "quiet\n" {
		t.Fatalf("%q", out)
	}
	if n := r.st["process_limit_hits"]; n != float64(0) {
		t.Fatalf("process_limit_hits %v for a call under the limit:\n%s", n, r.text)
	}

	flood := sh(t, cs, `head -c 1000000 /dev/zero | tr '\0' x`)
	if !flood.flag("stdout_truncated") {
		t.Fatalf("flood not cut:\n%.300s", flood.text)
	}

	if s.cg == nil || !s.cg.limitsPids {
		// Without a pids cgroup the kernel counts no refused fork.
		mcptest.Require(t, fmt.Sprintf("no pids cgroup to count the process limit's hits (%v)", s.cgErr))
	}
	bomb := call(t, cs, "sh", map[string]any{"cmd": `f(){ f|f & }; f; sleep 1; echo bomb-over`, "timeout_s": 30})
	if bomb.flag("timed_out") {
		t.Fatalf("the fork bomb ran to the timeout:\n%.300s", bomb.text)
	}
	if n, _ := bomb.st["process_limit_hits"].(float64); n < 1 {
		t.Fatalf("fork bomb: process_limit_hits %v, want at least 1:\n%.500s", bomb.st["process_limit_hits"], bomb.text)
	}
	if !strings.Contains(bomb.text, "note: the process limit (") {
		t.Fatalf("fork bomb: the text does not say the process limit was hit:\n%.500s", bomb.text)
	}
	if d := waitNoDescendants(); len(d) > 0 {
		t.Fatalf("fork bomb left %d processes", len(d))
	}
}

// TestLimitHitsRunInfo checks what the sandbox hands the router's
// observers (the ledger, store, metrics and span read it): Limits names
// the output cap and the process limit when they were hit, and nothing for
// a quiet call.
func TestLimitHitsRunInfo(t *testing.T) {
	s := newTestSandbox(t, nil)
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	run := func(cmd string) *calls.RunInfo {
		t.Helper()
		args, _ := json.Marshal(map[string]string{"cmd": cmd})
		res, err := r.Call(context.Background(), "sh", &calls.Request{Arguments: args})
		if err != nil {
			t.Fatal(err)
		}
		if res.Info == nil || res.Info.Run == nil {
			t.Fatalf("no run info: %+v", res)
		}
		return res.Info.Run
	}
	if l := run(`echo quiet`).Limits; l != nil {
		t.Fatalf("quiet call: Limits %v", l)
	}
	if l := run(`head -c 1000000 /dev/zero`).Limits; !slices.Equal(l, []string{calls.LimitOutput}) {
		t.Fatalf("flood: Limits %v, want [output]", l)
	}
	if s.cg == nil || !s.cg.limitsPids {
		mcptest.Require(t, fmt.Sprintf("no pids cgroup to count the process limit's hits (%v)", s.cgErr))
	}
	if l := run(`f(){ f|f & }; f; sleep 1`).Limits; !slices.Contains(l, calls.LimitProcesses) {
		t.Fatalf("fork bomb: Limits %v, want processes", l)
	}
}
