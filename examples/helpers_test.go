package examples

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// requireE2E reports whether CI demands that end-to-end tests run
// (MEMBRANE_REQUIRE_E2E=1): a missing prerequisite is then a failure, not a
// skip.
func requireE2E() bool { return os.Getenv("MEMBRANE_REQUIRE_E2E") == "1" }

// missing skips t, or fails it when CI requires end-to-end tests.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if requireE2E() {
		t.Fatalf("MEMBRANE_REQUIRE_E2E=1 but "+format, args...)
	}
	t.Skipf(format, args...)
}

// needBwrap skips (or, in CI, fails) a test that calls the sandboxed tools
// when bubblewrap is not installed.
func needBwrap(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		missing(t, "bubblewrap is not installed (apt-get install bubblewrap); sh and python_run need it")
	}
}

var rootOnce struct {
	sync.Once
	dir string
	err error
}

// repoRoot returns the module's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			rootOnce.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		rootOnce.dir = filepath.Dir(strings.TrimSpace(string(out)))
	})
	if rootOnce.err != nil {
		t.Fatal(rootOnce.err)
	}
	return rootOnce.dir
}

// membraneBinary returns the membrane binary to test: $MEMBRANE_BIN (set by
// .ci/clients.sh to bin/membrane), else one built for this test process.
func membraneBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("MEMBRANE_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("MEMBRANE_BIN: %v", err)
		}
		return bin
	}
	return mcptest.BuildBinary(t, "./cmd/membrane")
}

// pythonBinary returns a real python3: /usr/bin/python3 when present (the
// python3 first on PATH may be a slow pyenv shim), else PATH's.
func pythonBinary(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		missing(t, "python3 is not installed")
	}
	return p
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// membraneHTTP is a membrane process serving streamable HTTP on loopback.
type membraneHTTP struct {
	Port  string
	URL   string // http://127.0.0.1:PORT/mcp
	Token string // "" when it runs without one
	Log   *syncBuffer
}

// startMembraneHTTP runs `membrane --http 127.0.0.1:PORT` with env added to
// the test's environment (and MEMBRANE_TOKEN=token when token is set), waits
// for /healthz, and stops it with SIGTERM at cleanup. Its log goes to the
// test log when the test fails.
func startMembraneHTTP(t testing.TB, env []string, token string) *membraneHTTP {
	t.Helper()
	if token != "" {
		env = append(slices.Clone(env), "MEMBRANE_TOKEN="+token)
	}
	srv := startMembrane(t, func(port string) []string { return []string{"--http", "127.0.0.1:" + port} }, append(os.Environ(), env...))
	srv.Token = token
	return srv
}

// startMembrane runs membrane with the arguments argsFor gives for a free
// port and exactly env as its environment (NO_COLOR=1 added), waits for
// http://127.0.0.1:PORT/healthz, and stops it with SIGTERM at cleanup.
func startMembrane(t testing.TB, argsFor func(port string) []string, env []string) *membraneHTTP {
	t.Helper()
	bin := membraneBinary(t)
	var lastErr error
	for range 3 { // the port may be taken between freePort and the bind
		port := freePort(t)
		cmd := exec.Command(bin, argsFor(port)...)
		cmd.Env = append(slices.Clone(env), "NO_COLOR=1")
		stderr := &syncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start membrane: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		srv := &membraneHTTP{Port: port, URL: "http://127.0.0.1:" + port + "/mcp", Log: stderr}
		if err := waitHealthy(t.Context(), "http://127.0.0.1:"+port+"/healthz", exited); err != nil {
			stop()
			lastErr = fmt.Errorf("%v\nmembrane %q stderr:\n%s", err, cmd.Args[1:], stderr.String())
			if strings.Contains(stderr.String(), "address already in use") {
				continue
			}
			break
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("membrane %q stderr:\n%s", cmd.Args[1:], stderr.String())
			}
		})
		return srv
	}
	t.Fatalf("membrane did not come up: %v", lastErr)
	return nil
}

func waitHealthy(ctx context.Context, url string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("membrane exited before it was healthy: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %v", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// syncBuffer is mcptest.SyncBuffer: safe for a process to write while a
// test reads it.
type syncBuffer = mcptest.SyncBuffer

// orchestratorBinary returns the orchestrator binary to test:
// $MEMBRANE_ORCHESTRATOR_BIN (set by .ci/clients.sh), else one built for
// this test process.
func orchestratorBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("MEMBRANE_ORCHESTRATOR_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("MEMBRANE_ORCHESTRATOR_BIN: %v", err)
		}
		return bin
	}
	return mcptest.BuildBinary(t, "./cmd/orchestrator")
}

// startServe runs `orchestrator serve` on a free port with the agents of
// agentsYAML, launching membraneBinary, and returns its API's base URL
// (ending in /v1) once it serves. It is stopped with SIGTERM at cleanup.
func startServe(t testing.TB, orch string, env []string, agentsYAML string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "agents.yaml")
	if err := os.WriteFile(f, []byte(agentsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(orch, "serve", "--http", "127.0.0.1:0", "--agents", f, "--membrane", membraneBinary(t))
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("orchestrator serve stderr:\n%s", stderr.String())
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), " at http://"); ok {
				a, _, _ := strings.Cut(rest, " ")
				addr <- "http://" + a
			}
		}
		close(addr)
	}()
	select {
	case u, ok := <-addr:
		if !ok {
			t.Fatalf("orchestrator serve exited:\n%s", stderr.String())
		}
		return u
	case <-time.After(90 * time.Second):
		t.Fatalf("orchestrator serve did not start:\n%s", stderr.String())
	}
	return ""
}
