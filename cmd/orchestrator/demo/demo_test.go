package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestDemo runs `make demo`'s program against freshly built binaries, so
// that the newcomer's first command keeps working.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: -short")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		mcptest.Require(t, "bubblewrap is missing (run `make test-deps`)")
	}
	ollamatest.Binary(t) // fails or skips, with the reason, when Ollama cannot be had
	orch := mcptest.BuildBinary(t, "./cmd/orchestrator")
	t.Setenv("MEMBRANE_BIN", mcptest.BuildBinary(t, "./cmd/membrane"))
	t.Setenv("NO_COLOR", "1")
	if err := run(t.Context(), orch); err != nil {
		t.Fatal(err)
	}
}

// TestDemoDoesNotLinkTesting: the demo is a program for newcomers, not a
// test; it uses ollamatest's server without the testing package.
func TestDemoDoesNotLinkTesting(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" {
			t.Fatal("the demo links the testing package")
		}
	}
	if !strings.Contains(string(out), "ollama/ollamatest") {
		t.Fatalf("go list -deps does not list ollamatest, so this test checks nothing:\n%s", out)
	}
}
