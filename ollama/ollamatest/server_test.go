package ollamatest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"go.uber.org/goleak"
)

func (s *Server) pgid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pgid
}

// loadModel makes the server spawn a runner by chatting with a model.
func loadModel(t *testing.T, s *Server) {
	t.Helper()
	s.Create(t, "chat", ChatModel())
	stream := false
	err := s.Client().Chat(t.Context(), &api.ChatRequest{Model: "chat", Stream: &stream,
		Messages: []api.Message{{Role: "user", Content: "hi"}}}, func(api.ChatResponse) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
}

func TestStopLeavesNothingBehind(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := Start(t)
	loadModel(t, s)
	pgid := s.pgid()
	if n := groupAlive(pgid); n < 2 {
		t.Fatalf("%d processes in the server's group after a chat, want the server and a runner", n)
	}
	dir := s.dir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := groupAlive(pgid); n != 0 {
		t.Errorf("%d processes left after Stop", n)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there after Stop (%v)", dir, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	goleak.VerifyNone(t, before) // log copier, waiter, HTTP connections: all gone
}

func TestKillRestart(t *testing.T) {
	s := Start(t)
	loadModel(t, s)
	pgid, url := s.pgid(), s.URL
	s.Kill(t)
	if n := groupAlive(pgid); n != 0 {
		t.Errorf("%d processes left after Kill", n)
	}
	if s.Running() {
		t.Error("Running after Kill")
	}
	if _, err := http.Get(url); err == nil {
		t.Error("the server still answers after Kill")
	}
	s.Restart(t)
	if s.URL != url || !s.Running() {
		t.Errorf("after Restart: URL %s (was %s), running %v", s.URL, url, s.Running())
	}
	list, err := s.Client().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 1 || list.Models[0].Name != "chat:latest" {
		t.Errorf("after Restart /api/tags = %+v, want the model created before", list.Models)
	}
	loadModel(t, s) // and it still runs
	s.Restart(t)    // restarting a running server kills it first
	if !s.Running() {
		t.Error("not running after a second Restart")
	}
}

func TestEnvironmentIsClean(t *testing.T) {
	t.Setenv("OLLAMA_HOST", "127.0.0.1:1")
	t.Setenv("OLLAMA_MODELS", "/nonexistent/models")
	t.Setenv("OLLAMA_ORIGINS", "http://evil.example")
	s := StartWith(t, &Options{Env: []string{"OLLAMA_KEEP_ALIVE=0"}})
	if !strings.HasPrefix(s.ModelsDir, s.dir) {
		t.Errorf("model store %s is not in the server's own dir %s", s.ModelsDir, s.dir)
	}
	b, err := os.ReadFile("/proc/" + itoa(s.pgid()) + "/environ")
	if err != nil {
		t.Skipf("cannot read the server's environment: %v", err)
	}
	env := strings.Split(string(b), "\x00")
	for _, want := range []string{"OLLAMA_HOST=" + s.Host, "OLLAMA_MODELS=" + s.ModelsDir, "OLLAMA_KEEP_ALIVE=0", "OLLAMA_NOPRUNE=1"} {
		if !slices.Contains(env, want) {
			t.Errorf("server environment lacks %s", want)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "OLLAMA_ORIGINS=") || kv == "OLLAMA_HOST=127.0.0.1:1" || kv == "OLLAMA_MODELS=/nonexistent/models" {
			t.Errorf("the caller's %s leaked into the server", kv)
		}
	}
}

func TestStartFailsClearly(t *testing.T) {
	// A binary that exits at once: the error carries its output.
	bin := t.TempDir() + "/ollama"
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'Error: listen: boom' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartServer(context.Background(), &Options{Binary: bin})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("error = %v, want one saying it exited, with its output", err)
	}
}

func TestFindBinaryEnv(t *testing.T) {
	t.Setenv(EnvBinary, "/nonexistent/ollama")
	_, err := FindBinary()
	if err == nil || !strings.Contains(err.Error(), EnvBinary) || !strings.Contains(err.Error(), "make test-deps") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error = %v, want one naming %s and the fix", err, EnvBinary)
	}
	dir := t.TempDir()
	t.Setenv(EnvBinary, dir)
	if _, err := FindBinary(); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("a directory: error = %v", err)
	}
	if _, err := EnsureBinary(t.Context()); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("EnsureBinary on a directory: error = %v, want no build", err)
	}
}

func TestLockFileExcludes(t *testing.T) {
	path := t.TempDir() + "/.lock"
	unlock, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := lockFile(ctx, path); err == nil {
		t.Error("a second lock was granted while the first is held")
	}
	unlock()
	unlock2, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestOrphanHelper is the child of TestNothingLeftWhenTestProcessDies.
func TestOrphanHelper(t *testing.T) {
	if os.Getenv("OLLAMATEST_ORPHAN_CHILD") != "1" {
		t.Skip("runs only as the child of TestNothingLeftWhenTestProcessDies")
	}
	s := Start(t)
	loadModel(t, s)
	fmt.Printf("pgid=%d dir=%s\n", s.pgid(), s.dir)
	select {} // killed by the parent
}

func TestNothingLeftWhenTestProcessDies(t *testing.T) {
	Binary(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "OLLAMATEST_ORPHAN_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pgid, dir := 0, ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "pgid=%d dir=%s", &pgid, &dir); err == nil {
			break
		}
	}
	if pgid == 0 {
		cmd.Wait()
		t.Fatal("the child test never reported its server")
	}
	if n := groupAlive(pgid); n < 2 {
		t.Fatalf("%d processes in the child's server group, want at least the server and a runner", n)
	}
	cmd.Process.Kill() // no cleanup runs: as with a test killed by -timeout
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(pgid) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d processes of the dead test's Ollama survived", groupAlive(pgid))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the dead test's Ollama dir %s is still there (%v)", dir, err)
	}
}
