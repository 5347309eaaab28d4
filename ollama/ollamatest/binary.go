package ollamatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Version is the Ollama release the tests always run. It builds from the Go
// module proxy alone; newer tags lack llama.cpp's vendored C++ headers in
// their module zip (see [NewerVersion] for the one the tests also run).
const Version = "v0.6.5"

// Module is the Go package built into the test Ollama binary.
const Module = "github.com/ollama/ollama"

// Environment variables read by this package.
const (
	// EnvBinary is where the test Ollama is, or is to be built, instead of
	// the cache path. The Makefile sets it to the same cache path.
	EnvBinary = "MEMBRANE_TEST_OLLAMA"
	// EnvRequire, set to 1, turns every skip for a missing Ollama into a
	// failure. CI sets it.
	EnvRequire = "MEMBRANE_REQUIRE_E2E"
)

// CachePath returns where the pinned Ollama is built and cached:
// <os.UserCacheDir>/membrane/ollama-v0.6.5/ollama.
func CachePath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("ollamatest: no user cache dir (set XDG_CACHE_HOME or HOME): %w", err)
	}
	return filepath.Join(dir, "membrane", "ollama-"+Version, "ollama"), nil
}

// Path returns where the test Ollama is, or is to be built:
// $MEMBRANE_TEST_OLLAMA when set, else [CachePath].
func Path() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	return CachePath()
}

// FindBinary returns the test Ollama at [Path] without building it. Its
// error wraps [fs.ErrNotExist] when there is none yet.
func FindBinary() (string, error) {
	p, err := Path()
	if err != nil {
		return "", err
	}
	if err := executable(p); err != nil {
		if os.Getenv(EnvBinary) != "" {
			return "", fmt.Errorf("ollamatest: %s=%s: %w (run `make test-deps` to build Ollama %s there, or unset it to use the cache)", EnvBinary, p, err, Version)
		}
		return "", fmt.Errorf("ollamatest: %w (run `make test-deps` to build Ollama %s)", err, Version)
	}
	return p, nil
}

// EnsureBinary returns the test Ollama at [Path], building it there when it
// is missing: `go install github.com/ollama/ollama@v0.6.5`, about two minutes
// on two cores (cgo; it needs gcc and g++). A file lock next to the binary
// makes parallel test processes build it once; the others wait.
func EnsureBinary(ctx context.Context) (string, error) {
	p, err := FindBinary()
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	if p, err = Path(); err != nil {
		return "", err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("ollamatest: make the directory for the test Ollama: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if executable(p) == nil { // another process built it while we waited
		return p, nil
	}
	return p, build(ctx, p)
}

// build runs go install into a temporary GOBIN beside dst and renames the
// result into place, so a half-written binary is never found.
func build(ctx context.Context, dst string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("ollamatest: building Ollama %s needs the go command: %w", Version, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "build-")
	if err != nil {
		return fmt.Errorf("ollamatest: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goBin, "install", Module+"@"+Version)
	cmd.Dir = tmp // outside any module, so the project's go.mod plays no part
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false", "CGO_ENABLED=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ollamatest: `go install %s@%s` failed (it needs cgo with gcc and g++, and the Go module proxy): %w\n%s",
			Module, Version, err, tail(out.Bytes(), 4096))
	}
	if err := os.Rename(filepath.Join(tmp, filepath.Base(Module)), dst); err != nil {
		return fmt.Errorf("ollamatest: install the built Ollama: %w", err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling until it is free or
// ctx is done (no goroutine is left blocked in flock).
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ollamatest: lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("ollamatest: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("ollamatest: waiting for another process to build Ollama: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Binary returns the test Ollama for t, building it when missing (see
// [EnsureBinary]). In -short mode it skips without building. When the binary
// cannot be had, t fails if $MEMBRANE_REQUIRE_E2E is 1 and skips otherwise,
// with the reason either way.
func Binary(t TB) string {
	t.Helper()
	if short() {
		if p, err := FindBinary(); err == nil {
			return p
		}
		unavailable(t, fmt.Sprintf("-short: not building Ollama %s (run `make test-deps` or drop -short)", Version))
	}
	ctx := context.Background()
	if tc, ok := t.(interface{ Context() context.Context }); ok {
		ctx = tc.Context()
	}
	p, err := EnsureBinary(ctx)
	if err != nil {
		unavailable(t, err.Error())
	}
	return p
}

// unavailable fails or skips t because a real Ollama is missing.
func unavailable(t TB, why string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("real Ollama required (%s=1) but unavailable: %s", EnvRequire, why)
	}
	t.Skipf("no real Ollama, skipping (set %s=1 to fail instead): %s", EnvRequire, why)
}
