// Package mcptest connects real go-sdk MCP clients to membrane for tests:
// in memory through the full server adapter, to a built binary over stdio,
// or to a running server over streamable HTTP. Every session it returns is
// closed by t.Cleanup.
package mcptest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// Connect serves r through mcp.NewServer over an in-memory transport and
// returns a connected client session. The session and the server are
// closed by t.Cleanup. A nil opts means the SDK's default client options.
func Connect(t testing.TB, r *calls.Router, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	return ConnectWith(t, r, nil, opts, nil)
}

// ConnectWith is Connect with the server's options (nil: the defaults,
// named "membrane", version "test") and the session's (nil: the newest
// protocol).
func ConnectWith(t testing.TB, r *calls.Router, sopts *mcp.ServerOptions, opts *sdk.ClientOptions, sess *sdk.ClientSessionOptions) *sdk.ClientSession {
	t.Helper()
	if sopts == nil {
		sopts = &mcp.ServerOptions{Name: "membrane", Version: "test"}
	}
	srv := mcp.NewServer(r, sopts)
	st, ct := sdk.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := srv.SDK().Connect(ctx, st, nil)
	if err != nil {
		srv.Close()
		t.Fatalf("mcptest: server connect: %v", err)
	}
	cs, err := client(opts).Connect(ctx, ct, sess)
	if err != nil {
		ss.Close()
		srv.Close()
		t.Fatalf("mcptest: client connect: %v", err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
		srv.Close()
	})
	return cs
}

var builds struct {
	sync.Mutex
	bins map[string]string
	errs map[string]error
}

// BuildBinary builds the main package pkg (such as "./cmd/membrane",
// relative to the module root) once per test process and returns the path
// of the binary. Later calls with the same pkg return the cached path.
//
// The binary goes to one fixed directory under os.TempDir
// (membrane-mcptest), replaced atomically when it changes, so that test
// processes building at once never see a half-written file and repeated
// runs do not pile up copies. go build links there into a file of its own
// (NAME.build), which it reads the build ID of and relinks only when the
// sources changed: a test process whose binaries are up to date spends
// well under a second on them, where linking membrane takes 10-25 s on a
// loaded 2-core machine.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[pkg]; ok {
		return bin
	}
	if err, ok := builds.errs[pkg]; ok {
		t.Fatalf("mcptest: build %s: %v", pkg, err)
	}
	if builds.bins == nil {
		builds.bins = map[string]string{}
		builds.errs = map[string]error{}
	}
	bin, err := build(pkg)
	if err != nil {
		builds.errs[pkg] = err
		t.Fatalf("mcptest: build %s: %v", pkg, err)
	}
	builds.bins[pkg] = bin
	return bin
}

func build(pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	// One directory per checkout: two worktrees testing at once on one
	// machine must not run each other's binaries.
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "membrane-mcptest-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := strings.Trim(strings.NewReplacer("/", "_", ".", "_").Replace(pkg), "_")
	out := filepath.Join(dir, name)
	// One build of pkg at a time: test packages run in parallel processes.
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close() // and so unlocked
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	// The binary tests run is never the one go build writes: go may write
	// into its output in place, which a running binary must not see.
	stage := out + ".build"
	cmd := exec.Command("go", "build", "-o", stage, pkg)
	cmd.Dir = root
	// A package with a module of its own (a peer baseline under tools/,
	// kept out of membrane's dependencies) builds inside that module.
	if _, err := os.Stat(filepath.Join(root, pkg, "go.mod")); err == nil {
		cmd = exec.Command("go", "build", "-o", stage, ".")
		cmd.Dir = filepath.Join(root, pkg)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, stderr.String())
	}
	if id := buildID(stage); id != "" && id == buildID(out) {
		return out, nil // the same build as last time
	}
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	if err := copyFile(tmp, stage); err != nil {
		os.Remove(tmp)
		return "", err
	}
	// A rename replaces the file while processes still run the old one.
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return out, nil
}

// buildID returns the Go build ID of the ELF binary at path, which names
// its content (the linker's inputs), or "" when it has none to read.
func buildID(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	b, err := s.Data()
	if err != nil {
		return ""
	}
	return string(b)
}

// copyFile copies the executable src to a new file dst.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return calls.WriteNewFile(dst, in, 0o755)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// ConnectStdio launches bin with args over stdio, as Claude Desktop does,
// and returns a connected client session. env is added to the test's own
// environment (NO_COLOR=1 is always set). The child's stderr goes to the
// test log. t.Cleanup closes the session, which closes the child's stdin and
// waits for it to exit (then SIGTERM, then SIGKILL).
func ConnectStdio(t testing.TB, bin string, args, env []string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	cs, _ := ConnectStdioProcess(t, bin, args, env, opts)
	return cs
}

// ConnectStdioProcess is ConnectStdio that also returns the child process,
// for a test that reads its memory or CPU time from /proc.
func ConnectStdioProcess(t testing.TB, bin string, args, env []string, opts *sdk.ClientOptions) (*sdk.ClientSession, *os.Process) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	cmd.Stderr = &testWriter{t: t, prefix: filepath.Base(bin) + ": "}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client(opts).Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, nil)
	if err != nil {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		t.Fatalf("mcptest: launch %s: %v", bin, err)
	}
	t.Cleanup(func() {
		if err := cs.Close(); err != nil {
			t.Logf("mcptest: close %s: %v", bin, err)
		}
	})
	return cs, cmd.Process
}

// ConnectHTTP connects to a streamable HTTP endpoint such as
// http://127.0.0.1:8765/mcp. A non-empty token is sent as a bearer token on
// every request. t.Cleanup closes the session.
func ConnectHTTP(t testing.TB, url, token string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	return ConnectHTTPVersion(t, url, token, "", opts)
}

// ConnectHTTPVersion is ConnectHTTP with the newest protocol version the
// client offers: "" for the SDK's newest (2026-07-28: server/discover,
// without a session, where the server takes it), or an older one such
// as "2025-11-25" (initialize, and a session).
func ConnectHTTPVersion(t testing.TB, url, token, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	tr := &sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1}
	if token != "" {
		tr.HTTPClient = &http.Client{Transport: BearerTransport{Token: token}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client(opts).Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("mcptest: connect %s offering %q: %v", url, version, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// BearerTransport adds "Authorization: Bearer Token" to every request.
type BearerTransport struct {
	Token string
	// Base is the underlying transport; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (b BearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.Token)
	base := b.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// CallText calls the tool name with args and returns the result and its
// text contents joined by newlines. A protocol error fails the test; a tool
// error (IsError) does not: check res.IsError.
func CallText(t testing.TB, cs *sdk.ClientSession, name string, args map[string]any) (*sdk.CallToolResult, string) {
	t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	res, err := cs.CallTool(contextOf(t), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("mcptest: call %s: %v", name, err)
	}
	return res, TextOf(res)
}

// TextOf joins the text contents of res, one per line.
func TextOf(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func contextOf(t testing.TB) context.Context {
	if c, ok := t.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}

func client(opts *sdk.ClientOptions) *sdk.Client {
	return sdk.NewClient(&sdk.Implementation{Name: "mcptest", Version: "test"}, opts)
}

// testWriter sends a child's stderr to the test log, line by line, until the
// test ends.
type testWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	buf    []byte
	done   bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *testWriter) log(line string) {
	defer func() {
		// Logging after the test ended panics; the child may outlive it
		// by a moment.
		if recover() != nil {
			w.done = true
		}
	}()
	w.t.Log(w.prefix + line)
}

// RunPrivate runs a package's tests with PrivateState, for a TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(mcptest.RunPrivate(m)) }
func RunPrivate(m *testing.M) int {
	cleanup := PrivateState()
	defer cleanup()
	return m.Run()
}

// PrivateState points XDG_STATE_HOME at a new directory for the rest of
// the test binary's life, and so for every program its tests start:
// membrane keeps its trace store there by default, and a test run must not
// write into the user's home. Call it first in TestMain; the returned
// function removes the directory.
func PrivateState() (cleanup func()) {
	dir, err := os.MkdirTemp("", "membrane-state-")
	if err != nil {
		panic("mcptest: private state directory: " + err.Error())
	}
	os.Setenv("XDG_STATE_HOME", dir)
	return func() { os.RemoveAll(dir) }
}
