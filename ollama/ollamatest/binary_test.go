package ollamatest

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeGo puts a `go` script first on PATH and points the user cache dir at
// a temporary directory, so EnsureBinary's build path runs in milliseconds.
func fakeGo(t *testing.T, script string) (cache, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	body := "#!/bin/sh\necho \"$@\" >> " + calls + "\n" + script
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cache = t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", cache)
	t.Setenv(EnvBinary, "")
	os.Unsetenv(EnvBinary)
	return cache, calls
}

func TestEnsureBinaryBuildsOnce(t *testing.T) {
	cache, calls := fakeGo(t, "sleep 0.3\nprintf '#!/bin/sh\\n' > \"$GOBIN/ollama\"\nchmod +x \"$GOBIN/ollama\"\n")
	var wg sync.WaitGroup
	paths := make([]string, 4)
	errs := make([]error, 4)
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = EnsureBinary(t.Context()) })
	}
	wg.Wait()
	want := filepath.Join(cache, "membrane", "ollama-"+Version, "ollama")
	for i := range paths {
		if errs[i] != nil || paths[i] != want {
			t.Errorf("EnsureBinary = %q, %v; want %q", paths[i], errs[i], want)
		}
	}
	b, _ := os.ReadFile(calls)
	if got := strings.Count(string(b), "install"); got != 1 {
		t.Errorf("go ran %d times (%q), want one build", got, b)
	}
	if !strings.Contains(string(b), "install "+Module+"@"+Version) {
		t.Errorf("go was run as %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(want), "build-*"))
	if len(left) != 0 {
		t.Errorf("temporary build dirs left: %v", left)
	}
}

func TestEnsureBinaryBuildFails(t *testing.T) {
	cache, _ := fakeGo(t, "echo 'gcc: command not found' >&2\nexit 2\n")
	_, err := EnsureBinary(t.Context())
	if err == nil {
		t.Fatal("a failed build returned no error")
	}
	for _, want := range []string{"go install " + Module + "@" + Version, "gcc: command not found", "needs cgo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "membrane", "ollama-"+Version, "ollama")); !os.IsNotExist(err) {
		t.Errorf("a failed build left a binary behind (%v)", err)
	}
}

func TestEnsureBinaryBuildsAtEnvPath(t *testing.T) {
	_, calls := fakeGo(t, "printf '#!/bin/sh\\n' > \"$GOBIN/ollama\"\nchmod +x \"$GOBIN/ollama\"\n")
	want := filepath.Join(t.TempDir(), "sub", "ollama-test")
	t.Setenv(EnvBinary, want)
	got, err := EnsureBinary(t.Context())
	if err != nil || got != want {
		t.Fatalf("EnsureBinary = %q, %v; want %q", got, err, want)
	}
	if err := executable(want); err != nil {
		t.Error(err)
	}
	if b, _ := os.ReadFile(calls); strings.Count(string(b), "install") != 1 {
		t.Errorf("go ran as %q, want one install", b)
	}
}
