package main

import (
	"bytes"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2EInterruptDuringStartup: Ctrl-C while connecting exits 130, as
// the README says, not 1 with a connect error.
func TestE2EInterruptDuringStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: -short")
	}
	orch := mcptest.BuildBinary(t, "./cmd/orchestrator")
	// A server that accepts and never answers: start-up hangs in connect.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	cmd := exec.Command(orch, "--server-url", "http://"+ln.Addr().String()+"/mcp", "--base-url", "http://127.0.0.1:1/v1", "--model", "m", "-e", "hi")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the orchestrator never connected")
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("Ctrl-C during start-up: exit %d, want 130; stderr %q", code, stderr.String())
	}
}

// TestE2EModelErrors: a model the endpoint lacks is said once, with one
// piece of advice and no package prefixes, and no summary line of a turn
// that never reached the model; /model refuses a name the endpoint lacks.
func TestE2EModelErrors(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	r := c.run(t, c.env(t), "--membrane", c.membrane, "--base-url", c.ollama.URL+"/v1", "--model", "no-such-model", "-e", "hi")
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	for _, bad := range []string{"agent:", "model: model", "try pulling", "steps", "failed"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr has %q: %q", bad, r.stderr)
		}
	}
	if strings.Count(r.stderr, "ollama pull") != 1 || !strings.Contains(r.stderr, "ollama pull no-such-model") {
		t.Errorf("want the pull advice once: %q", r.stderr)
	}

	cmd := exec.Command(c.orch, c.args()...)
	cmd.Env = c.env(t)
	cmd.Stdin = strings.NewReader("/model scriptd\n/model\n/model scripted\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	got := stderr.String()
	if !strings.Contains(got, `does not serve "scriptd"; the model stays scripted (did you mean scripted?)`) ||
		!strings.Contains(got, "model: scripted\n") || strings.Contains(got, "model: scriptd") {
		t.Errorf("/model with a typo:\n%s", got)
	}
}

// TestE2EVerboseLogsACallOnce: under -v one tool call has one call
// record (the server's), not a second from the orchestrator's router
// with a session id of its own.
func TestE2EVerboseLogsACallOnce(t *testing.T) {
	c := newChain(t, ollamatest.Script{})
	r := c.run(t, c.env(t), c.args("-v", "-e", "say hello")...)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	records := 0
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.Contains(line, " call call=sh ") {
			records++
		}
	}
	if records != 1 || !strings.Contains(r.stderr, "✓ sh") {
		t.Errorf("%d call records of one sh call, want 1:\n%s", records, r.stderr)
	}
}
