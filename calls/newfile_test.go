package calls_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
)

// TestWriteNewFile: a new file gets the bytes and the mode asked for; an
// existing file and a symlink (to a file that exists and to one that does
// not) are refused with fs.ErrExist and left as they were.
func TestWriteNewFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "new")
	if err := calls.WriteNewFile(name, strings.NewReader("hello"), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(name); err != nil || string(b) != "hello" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if fi, err := os.Stat(name); err != nil || fi.Mode().Perm()&^0o640 != 0 || fi.Mode().Perm()&0o600 != 0o600 {
		t.Fatalf("mode %v, %v; want at most 0640, at least 0600", fi.Mode(), err)
	}

	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	dangling := filepath.Join(dir, "dangling")
	if err := errors.Join(os.Symlink(target, link), os.Symlink(filepath.Join(dir, "absent"), dangling)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{name, target, link, dangling} {
		if err := calls.WriteNewFile(p, strings.NewReader("overwritten"), 0o644); !errors.Is(err, fs.ErrExist) {
			t.Errorf("WriteNewFile(%s) = %v, want fs.ErrExist", filepath.Base(p), err)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the link's target now holds %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "absent")); !os.IsNotExist(err) {
		t.Errorf("the dangling link was followed: %v", err)
	}
}
