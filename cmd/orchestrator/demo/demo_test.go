package main

import (
	"os"
	"os/exec"
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
		if os.Getenv(ollamatest.EnvRequire) == "1" {
			t.Fatal("bubblewrap is missing and MEMBRANE_REQUIRE_E2E=1")
		}
		t.Skip("bubblewrap is missing (run `make test-deps`)")
	}
	ollamatest.Binary(t) // fails or skips, with the reason, when Ollama cannot be had
	orch := mcptest.BuildBinary(t, "./cmd/orchestrator")
	t.Setenv("MEMBRANE_BIN", mcptest.BuildBinary(t, "./cmd/membrane"))
	t.Setenv("NO_COLOR", "1")
	if err := run(t.Context(), orch); err != nil {
		t.Fatal(err)
	}
}
