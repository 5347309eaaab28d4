package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/cmd/internal/settings/settingstest"
)

var update = flag.Bool("update", false, "rewrite the README's settings table")

// The README is the user's manual: its table of membrane's settings is the
// one the settings make, and every flag, variable and file key is in it.
func TestREADMEListsEverySetting(t *testing.T) {
	settingstest.README(t, "../../README.md", define("membrane", &Config{}), *update)
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"membrane doctor", "--version", "OLLAMA_HOST", "NO_COLOR", "a bare number is seconds"} {
		if !strings.Contains(string(b), sub) {
			t.Errorf("README does not mention %s", sub)
		}
	}
}
