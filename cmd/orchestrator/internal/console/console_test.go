package console

import (
	"path/filepath"
	"testing"
)

var complete = completer([]string{"/tools", "/model", "/history", "/clear", "/help", "/exit"})

func TestCompleteCommand(t *testing.T) {
	if l, p, ok := complete("/to", 3, '\t'); !ok || l != "/tools " || p != 7 {
		t.Errorf("/to → %q %d %v", l, p, ok)
	}
	if _, _, ok := complete("/", 1, '\t'); ok {
		t.Error("an ambiguous prefix completed")
	}
	if _, _, ok := complete("hello", 5, '\t'); ok {
		t.Error("completed a question")
	}
}

func TestFileHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "h")
	h := LoadHistory(path)
	h.Add("first")
	h.Add("second")
	h.Add("second") // repeats are kept once
	h.Add("  ")
	h = LoadHistory(path)
	if h.Len() != 2 || h.At(0) != "second" || h.At(1) != "first" {
		t.Errorf("history = %v", h.lines)
	}
}
