package main

import (
	"flag"
	"testing"

	"github.com/membrane-mcp/membrane/cmd/internal/settings/settingstest"
)

var update = flag.Bool("update", false, "rewrite the README's settings table")

// The README is the user's manual: its table of the orchestrator's
// settings is the one the settings make, and every flag and variable is in
// it.
func TestREADMEListsEveryFlag(t *testing.T) {
	settingstest.README(t, "../../README.md", define(&Config{}, &rawConfig{}), *update)
}
