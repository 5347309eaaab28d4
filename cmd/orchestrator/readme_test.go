package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every flag and variable the orchestrator's --help names must be in the
// README, the user's manual.
func TestREADMEListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	var help bytes.Buffer
	_, _ = parseConfig([]string{"--help"}, func(string) string { return "" }, &help)
	flags := regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`).FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 20 {
		t.Fatalf("found %d flags in --help; the pattern no longer matches its layout:\n%s", len(flags), help.String())
	}
	for _, m := range flags {
		name := "`--" + m[1]
		if len(m[1]) == 1 {
			name = "`-" + m[1]
		}
		if !strings.Contains(readme, name) {
			t.Errorf("README does not mention the orchestrator flag -%s", m[1])
		}
	}
	for _, v := range regexp.MustCompile(`\b(?:MEMBRANE|OPENAI|OLLAMA)_[A-Z_]+`).FindAllString(help.String(), -1) {
		if !strings.Contains(readme, v) {
			t.Errorf("README does not mention %s", v)
		}
	}
}
