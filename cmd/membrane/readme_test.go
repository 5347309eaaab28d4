package main

import (
	"os"
	"strings"
	"testing"
)

// The README is the user's manual: every setting membrane takes must be in
// it, under its flag and its environment variable.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings() {
		if !strings.Contains(readme, "`--"+s.flag) {
			t.Errorf("README does not mention the flag --%s", s.flag)
		}
		if s.env != "" && !strings.Contains(readme, s.env) {
			t.Errorf("README does not mention %s (--%s)", s.env, s.flag)
		}
	}
	for _, sub := range []string{"membrane doctor", "--version", "OLLAMA_HOST", "NO_COLOR"} {
		if !strings.Contains(readme, sub) {
			t.Errorf("README does not mention %s", sub)
		}
	}
}
