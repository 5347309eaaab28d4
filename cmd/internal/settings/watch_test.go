package settings_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/cmd/internal/settings"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestFileWatcher checks the reload rules read by read: a change is used
// once two reads agree; a refused, empty or missing file changes nothing,
// and a refusal is logged once.
func TestFileWatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("v1")
	var used []string
	var logs mcptest.SyncBuffer
	w := settings.NewFileWatcher(path, []byte("v1"), func(b []byte) error {
		if strings.HasPrefix(string(b), "bad") {
			return errors.New("refused")
		}
		used = append(used, string(b))
		return nil
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	if w.Check() {
		t.Fatal("an unchanged file was used")
	}
	write("v2")
	if w.Check() {
		t.Fatal("used on the first read of a change")
	}
	if !w.Check() || strings.Join(used, ",") != "v2" {
		t.Fatalf("after two reads: %q", used)
	}
	write("bad")
	for range 3 {
		if w.Check() {
			t.Fatal("a refused file counts as used")
		}
	}
	write("")
	w.Check()
	w.Check()
	os.Remove(path)
	w.Check()
	w.Check()
	if strings.Join(used, ",") != "v2" {
		t.Fatalf("a bad, empty or missing file was used: %q", used)
	}
	if n := strings.Count(logs.String(), "cannot be used"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once:\n%s", n, logs.String())
	}
	write("v3")
	w.Check()
	if !w.Check() || strings.Join(used, ",") != "v2,v3" {
		t.Fatalf("a good file after all that: %q", used)
	}
}
