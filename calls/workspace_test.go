package calls

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// workspaceFixture makes a workspace holding a regular file, a FIFO, a
// directory, links in and out, and a secret file next to it (outside).
func workspaceFixture(t *testing.T) (dir, secret string) {
	t.Helper()
	parent := t.TempDir()
	dir = filepath.Join(parent, "ws")
	secret = filepath.Join(parent, "secret.txt")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(dir, 0o700))
	must(os.WriteFile(secret, []byte("host secret"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "img.png"), []byte("picture"), 0o600))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "sub", "deep.png"), []byte("deeper"), 0o600))
	must(syscall.Mkfifo(filepath.Join(dir, "pipe.png"), 0o600))
	must(os.Symlink("img.png", filepath.Join(dir, "link-in.png")))
	must(os.Symlink("pipe.png", filepath.Join(dir, "link-fifo.png")))
	must(os.Symlink(secret, filepath.Join(dir, "link-out.png")))
	must(os.Symlink("../secret.txt", filepath.Join(dir, "link-up.png")))
	must(os.Symlink("/dev/zero", filepath.Join(dir, "zero.png")))
	must(os.Symlink("sub", filepath.Join(dir, "subdir")))
	return dir, secret
}

func TestReadWorkspaceFile(t *testing.T) {
	t.Parallel()
	dir, secret := workspaceFixture(t)
	ok := []struct{ name, want string }{
		{"img.png", "picture"},
		{"./img.png", "picture"},
		{"sub/deep.png", "deeper"},
		{"sub/../img.png", "picture"},
		{"/workspace/img.png", "picture"},
		{"/workspace//sub/deep.png", "deeper"},
		{"link-in.png", "picture"},
		{"subdir/deep.png", "deeper"},
		{filepath.Join(dir, "img.png"), "picture"},
	}
	for _, tt := range ok {
		b, err := ReadWorkspaceFile(t.Context(), dir, tt.name, 100)
		if err != nil || string(b) != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, b, err, tt.want)
		}
	}
	bad := []struct {
		name string
		want error
	}{
		{"pipe.png", ErrNotRegular},
		{"/workspace/pipe.png", ErrNotRegular},
		{"link-fifo.png", ErrNotRegular},
		{"sub", ErrNotRegular},
		{"/workspace", ErrNotRegular},
		{".", ErrNotRegular},
		{"link-out.png", ErrOutsideWorkspace},
		{"link-up.png", ErrOutsideWorkspace},
		{"zero.png", ErrOutsideWorkspace},
		{"../secret.txt", ErrOutsideWorkspace},
		{"/workspace/../secret.txt", ErrOutsideWorkspace},
		{"sub/../../secret.txt", ErrOutsideWorkspace},
		{secret, ErrOutsideWorkspace},
		{"/etc/passwd", ErrOutsideWorkspace},
		{"/workspacex/img.png", ErrOutsideWorkspace},
		{"", ErrOutsideWorkspace},
		{"a\x00b", ErrOutsideWorkspace},
		{"missing.png", fs.ErrNotExist},
		{"/workspace/missing.png", fs.ErrNotExist},
	}
	for _, tt := range bad {
		b, err := ReadWorkspaceFile(t.Context(), dir, tt.name, 100)
		if !errors.Is(err, tt.want) || b != nil {
			t.Errorf("%q: %q, %v; want %v", tt.name, b, err, tt.want)
			continue
		}
		var we *WorkspaceFileError
		if !errors.As(err, &we) || we.Path != tt.name {
			t.Errorf("%q: error %T %+v is not a *WorkspaceFileError with the path as given", tt.name, err, err)
		}
		if msg := err.Error(); strings.Contains(msg, dir) && !strings.Contains(tt.name, dir) || strings.Contains(msg, "host secret") {
			t.Errorf("%q: the error reveals the host workspace: %s", tt.name, msg)
		}
	}
	if _, err := ReadWorkspaceFile(t.Context(), "", "img.png", 100); !errors.Is(err, ErrNoWorkspace) {
		t.Errorf("no workspace: %v", err)
	}
}

func TestReadWorkspaceFileCaps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A sparse terabyte is refused from its size, without reading it.
	f, err := os.Create(filepath.Join(dir, "huge.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadWorkspaceFile(t.Context(), dir, "huge.png", 20<<20); !errors.Is(err, ErrFileTooLarge) || !strings.Contains(err.Error(), "20971520") {
		t.Errorf("huge file: %v", err)
	}
	// Allow control: a file at the limit is read whole; one byte more is not.
	at := bytes.Repeat([]byte("x"), 3*readChunk)
	if err := os.WriteFile(filepath.Join(dir, "at.png"), at, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadWorkspaceFile(t.Context(), dir, "at.png", int64(len(at))); err != nil || !bytes.Equal(b, at) {
		t.Errorf("file at the limit: %d bytes, %v", len(b), err)
	}
	if _, err := ReadWorkspaceFile(t.Context(), dir, "at.png", int64(len(at))-1); !errors.Is(err, ErrFileTooLarge) {
		t.Errorf("file one byte over: %v", err)
	}
	if b, err := ReadWorkspaceFile(t.Context(), dir, "at.png", 0); err != nil || len(b) != len(at) {
		t.Errorf("no limit: %d bytes, %v", len(b), err)
	}
	// A character device, as a shared workspace could hold, is not read.
	if os.Getuid() == 0 {
		if err := syscall.Mknod(filepath.Join(dir, "zero.png"), syscall.S_IFCHR|0o600, 1<<8|5); err != nil {
			t.Fatalf("mknod /dev/zero's twin as root: %v", err)
		}
		if _, err := ReadWorkspaceFile(t.Context(), dir, "zero.png", 100); !errors.Is(err, ErrNotRegular) {
			t.Errorf("character device: %v", err)
		}
	}
	// A cancelled context reads nothing.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ReadWorkspaceFile(ctx, dir, "at.png", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestReadWorkspaceFileFIFOsHoldNoThreads reads many FIFOs at once: none
// waits for a writer, so none pins an OS thread in open().
func TestReadWorkspaceFileFIFOsHoldNoThreads(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("counts threads in /proc")
	}
	dir, _ := workspaceFixture(t)
	before := threads(t)
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for range 500 {
		wg.Go(func() {
			_, err := ReadWorkspaceFile(t.Context(), dir, "pipe.png", 100)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("FIFO: %v", err)
		}
	}
	// Go keeps idle threads, so the count after may exceed the count before
	// by what the goroutines used at once; with blocking opens it would be
	// about 500.
	if after := threads(t); after > before+64 {
		t.Errorf("threads grew from %d to %d reading FIFOs", before, after)
	}
}

func threads(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestRootEscapeText pins the os.Root error text isEscape matches.
func TestRootEscapeText(t *testing.T) {
	t.Parallel()
	dir, _ := workspaceFixture(t)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = root.Open("link-out.png")
	if !isEscape(err) {
		t.Fatalf("os.Root's escape error changed: %v", err)
	}
	if _, err := root.Open("img.png"); err != nil || isEscape(err) {
		t.Fatalf("allow control: %v", err)
	}
}

// FuzzWorkspaceRel checks the lexical check: an accepted name is a local
// path, so joined to the workspace it stays inside it.
func FuzzWorkspaceRel(f *testing.F) {
	for _, s := range []string{"img.png", "/workspace/a", "../x", "/workspace/../x", "a/../../b", "/ws/a", "/ws/../x", ".", "/workspace", "a//b/./c"} {
		f.Add(s)
	}
	const dir = "/ws"
	f.Fuzz(func(t *testing.T, name string) {
		rel, ok := workspaceRel(dir, name)
		if !ok {
			return
		}
		if !filepath.IsLocal(rel) {
			t.Fatalf("%q accepted as %q, not local", name, rel)
		}
		j := filepath.Join(dir, rel)
		if j != dir && !strings.HasPrefix(j, dir+"/") {
			t.Fatalf("%q accepted as %q, joined %q", name, rel, j)
		}
	})
}
