package mcp_test

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestFleetServerNeverAnswers: a launched server that never answers
// initialize (it reads nothing, ignores the end of its input and SIGTERM,
// and has a child in its process group) fails with a *NoAnswerError
// carrying the fleet's bound, and by the time Start returns nothing of its
// process group runs. The control, a launched server that answers (in a
// fleet of its own, with the default bound, which a loaded machine cannot
// miss), is connected with its tools, and its process lives on until
// Close.
func TestFleetServerNeverAnswers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads process groups from /proc")
	}
	t.Parallel()
	var silent *exec.Cmd
	const bound = 300 * time.Millisecond
	fl := mcp.NewFleet(calls.NewRouter(nil), []mcp.FleetServer{
		mcp.CommandFleetServer("silent", func() *exec.Cmd {
			silent = exec.Command("/bin/sh", "-c", `trap "" TERM; sleep 300 & wait`)
			return silent
		}),
	}, &mcp.FleetOptions{ConnectTimeout: bound, Say: func(string, bool) {}})
	defer fl.Close()
	err := fl.Start(t.Context())
	var na *mcp.NoAnswerError
	if !errors.As(err, &na) || na.Within != bound || !errors.Is(err, mcp.ErrNoServers) {
		t.Fatalf("Start: %v (%T), want the server's *NoAnswerError within %v", err, err, bound)
	}
	if !strings.HasPrefix(na.Error(), "no answer within 0.3s: ") {
		t.Errorf("the error says %q", na.Error())
	}
	if silent.Process == nil {
		t.Fatal("the silent server never started")
	}
	if left := waitGroupGone(silent.Process.Pid); len(left) > 0 {
		t.Fatalf("the silent server's process group lives on: %v", left)
	}

	// The control.
	bin := mcptest.BuildBinary(t, "./cmd/membrane/testdata/sdkserver")
	var answering *exec.Cmd
	good := mcp.NewFleet(calls.NewRouter(nil), []mcp.FleetServer{
		mcp.CommandFleetServer("good", func() *exec.Cmd {
			answering = exec.Command(bin)
			return answering
		}),
	}, nil)
	defer good.Close()
	if err := good.Start(t.Context()); err != nil {
		t.Fatalf("Start with an answering server: %v", err)
	}
	if ts := good.Tools(); len(ts) != 1 || ts[0].Local != "noop" {
		t.Fatalf("tools %+v, want noop", ts)
	}
	if live := groupMembers(answering.Process.Pid); len(live) == 0 {
		t.Fatal("the answering server is not running")
	}
	good.Close()
	if left := waitGroupGone(answering.Process.Pid); len(left) > 0 {
		t.Fatalf("the answering server's process group lives on after Close: %v", left)
	}
}

// groupMembers lists the processes of process group pgid that have not
// exited (zombies excluded), as "pid comm".
func groupMembers(pgid int) []string {
	var out []string
	for _, p := range mcptest.Procs() {
		if p.PGID == pgid && p.State != "Z" {
			out = append(out, fmt.Sprintf("%d %s", p.PID, p.Comm))
		}
	}
	return out
}

// waitGroupGone gives a killed process group a moment to be reaped and
// returns what of it still runs.
func waitGroupGone(pgid int) []string {
	var left []string
	for range 100 {
		if left = groupMembers(pgid); len(left) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return left
}
