package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// stdioArgs start membrane with the test limits and no reachable Ollama.
var stdioArgs = []string{"--procs", "64", "--output-limit", "64KiB", "--tmp-size", "8MiB", "--file-size", "8MiB", "--memory", "512MiB"}

var stdioEnv = []string{"OLLAMA_HOST=127.0.0.1:9", "MEMBRANE_LOG_LEVEL=warn"}

func connectStdio(t *testing.T) (*sdk.ClientSession, string) {
	t.Helper()
	requireBwrap(t)
	bin := mcptest.BuildBinary(t, "./cmd/membrane")
	return mcptest.ConnectStdio(t, bin, stdioArgs, stdioEnv, nil), bin
}

// TestStdio runs a subset of the threat checklist against the real binary
// over stdio, the transport Claude Desktop uses, where a byte of stray
// output on stdout would break the protocol.
func TestStdio(t *testing.T) {
	cs, _ := connectStdio(t)
	if out := ok(t, sh(t, cs, "echo hello")); out != "hello\n" {
		t.Fatalf("%q", out)
	}
	if out := ok(t, py(t, cs, "print(6*7)")); out != "42\n" {
		t.Fatalf("%q", out)
	}
	t.Run("egress", func(t *testing.T) {
		out := ok(t, py(t, cs, `
import socket
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3); print("BREACH")
except OSError as e:
    print("denied", e.errno)
`))
		if !strings.HasPrefix(out, "denied") {
			t.Fatal(out)
		}
	})
	t.Run("write outside", func(t *testing.T) {
		out := ok(t, sh(t, cs, `(echo x > /etc/x) 2>&1; echo ok > /workspace/f && cat /workspace/f`))
		if !strings.Contains(out, "Read-only") || !strings.HasSuffix(out, "ok\n") {
			t.Fatal(out)
		}
	})
	t.Run("stdio pollution", func(t *testing.T) {
		// Writes to the terminal, to every fd, and a fake JSON-RPC message:
		// none may reach the protocol stream.
		r := sh(t, cs, `(echo '{"jsonrpc":"2.0","id":99,"result":{}}' > /dev/tty) 2>/dev/null; for fd in 3 4 5 6 7 8 9; do (echo junk >&$fd) 2>/dev/null; done; echo '{"jsonrpc":"2.0","method":"x"}'; printf '\000\377\n'`)
		out := ok(t, r)
		if !strings.HasPrefix(out, `{"jsonrpc":"2.0","method":"x"}`) {
			t.Fatalf("stdout not captured: %q", out)
		}
		// The stream is intact: the next call works.
		if out := ok(t, sh(t, cs, "echo still-fine")); out != "still-fine\n" {
			t.Fatalf("%q", out)
		}
	})
	t.Run("binary and flood", func(t *testing.T) {
		r := sh(t, cs, `head -c 300000000 /dev/urandom`)
		if !r.flag("stdout_truncated") || r.flag("timed_out") {
			t.Fatalf("%.300s", r.text)
		}
		if n := len(r.stdout()); n > 3*64<<10 {
			t.Fatalf("%d bytes returned", n)
		}
	})
	t.Run("fork bomb", func(t *testing.T) {
		r := call(t, cs, "sh", map[string]any{"cmd": `f(){ f|f & }; f; sleep 1`, "timeout_s": 30})
		if r.flag("timed_out") {
			t.Fatalf("%s", r.text)
		}
		// Only membrane itself is left below us.
		if d := waitOnlyMembrane(); len(d) > 0 {
			t.Fatalf("left behind: %d, e.g. %v", len(d), d[:min(5, len(d))])
		}
	})
	t.Run("orphans", func(t *testing.T) {
		marker := strconv.Itoa(300000 + os.Getpid()%99999)
		ok(t, sh(t, cs, `setsid nohup sleep `+marker+` >/dev/null 2>&1 & echo started`))
		if left := sleepers(marker); len(left) > 0 {
			t.Fatal(left)
		}
	})
}

// TestStdioServerCrash is row 25 of the checklist: kill -9 the server in
// the middle of a call. The sandbox dies with it (die-with-parent and
// Pdeathsig), no mount is left on the host, and the private directory it
// could not remove is swept by the next membrane to start.
func TestStdioServerCrash(t *testing.T) {
	mounts := mountCount(t)
	cs, bin := connectStdio(t)
	marker := strconv.Itoa(200000 + os.Getpid()%99999)
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "setsid sleep " + marker + " & sleep " + marker}})
		done <- err
	}()
	waitFor(t, func() bool { return len(sleepers(marker)) == 2 })
	pid := childRunning(t, bin)
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-*", rootPrefix, pid)))
	if len(dirs) != 1 {
		t.Fatalf("want membrane's private dir, found %v", dirs)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the call should fail when the server dies")
	}
	waitFor(t, func() bool { return len(sleepers(marker)) == 0 })
	cs.Close() // reaps the server
	if n := mountCount(t); n != mounts {
		t.Errorf("host mount table changed: %d entries, was %d", n, mounts)
	}
	// The next membrane (here an in-process sandbox) sweeps the dead one's
	// directory.
	s, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(dirs[0]); !os.IsNotExist(err) {
		t.Fatalf("%s survived the sweep", dirs[0])
	}
}

// childRunning returns the pid of this test's child process running bin.
func childRunning(t *testing.T, bin string) int {
	t.Helper()
	for _, d := range descendants() {
		pid, _ := strconv.Atoi(strings.Fields(d)[0])
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == bin {
			return pid
		}
	}
	t.Fatalf("no child running %s", bin)
	return 0
}

// waitOnlyMembrane waits until the only processes below the test are the
// membrane servers it started, and returns the others.
//
// The binary keeps up to one warm sandbox per core waiting (--warm): an
// outer bwrap and its init, two bwrap processes each, and in a
// python_run's, the interpreter pre-started on its script, which has read
// nothing yet. Those many bwrap processes and interpreters are not
// counted as left over.
func waitOnlyMembrane() []string {
	var left []string
	for range 100 {
		left = left[:0]
		warm := 2 * min(runtime.NumCPU(), MaxWarm)
		interpreters := min(runtime.NumCPU(), MaxWarm)
		for _, d := range descendants() {
			f := strings.Fields(d)
			if len(f) > 1 && f[1] == "bwrap" && warm > 0 {
				warm--
				continue
			}
			if len(f) > 1 && interpreters > 0 && waitingInterpreter(f[0]) {
				interpreters--
				continue
			}
			if len(f) > 1 && !strings.Contains(f[1], "membrane") {
				left = append(left, d)
			}
		}
		if len(left) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return left
}

// waitingInterpreter says whether pid runs an interpreter on python_run's
// script path (as a pre-started one does) and waits (state S).
func waitingInterpreter(pid string) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return len(args) == 2 && args[1] == scriptPath && strings.HasPrefix(filepath.Base(args[0]), "python") &&
		i > 0 && bytes.HasPrefix(stat[i+1:], []byte(" S"))
}

func mountCount(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// TestHTTP runs a subset of the checklist against the real binary over
// streamable HTTP, the other transport: two clients, each with its own
// session and workspace. They offer 2025-11-25, the newest protocol with
// sessions; a 2026-07-28 client keeps its workspace by handle instead
// (TestWorkspaceHandles, and the binary's TestWorkspaceHandlesBinary).
func TestHTTP(t *testing.T) {
	requireBwrap(t)
	bin := mcptest.BuildBinary(t, "./cmd/membrane")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"--http", addr}, stdioArgs...)...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), stdioEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("membrane stderr:\n%s", stderr.String())
		}
	})
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	a := mcptest.ConnectHTTPVersion(t, "http://"+addr+"/mcp", "", "2025-11-25", nil)
	b := mcptest.ConnectHTTPVersion(t, "http://"+addr+"/mcp", "", "2025-11-25", nil)
	t.Setenv("MEMBRANE_TEST_SECRET", "x")
	out := ok(t, sh(t, a, `echo mine > f; ls /proc/self/fd | wc -l; env | grep -c MEMBRANE || true; (echo x > /etc/x) 2>&1; true`))
	// $0 is /bin/sh in a fresh sandbox, the script in a warm one (the
	// first session's first call is warm).
	if want := "4\n0\n" + shScriptPath + ": 1: cannot create /etc/x: Read-only file system\n"; out != want && out != strings.Replace(want, shScriptPath, "/bin/sh", 1) {
		t.Fatalf("%q", out)
	}
	if out := ok(t, sh(t, b, `ls f 2>&1 || true`)); !strings.Contains(out, "No such file") {
		t.Fatalf("session b saw session a's workspace: %q", out)
	}
	if out := ok(t, py(t, a, `print(open("f").read().strip())`)); out != "mine\n" {
		t.Fatalf("%q", out)
	}
	r := py(t, b, `
import socket
try:
    socket.create_connection(("127.0.0.1", `+strings.Split(addr, ":")[1]+`), timeout=3); print("BREACH")
except OSError as e:
    print("denied")
`)
	if out := ok(t, r); out != "denied\n" {
		t.Fatalf("the sandbox reached membrane's own HTTP port: %q", out)
	}
	if r := sh(t, a, `printf '\377'`); !strings.Contains(r.stdout(), "\uFFFD") {
		t.Fatalf("%q", r.stdout())
	}
}

// TestStdioLargeResult is the frame that ended a client's session: 2 MB of
// \x01 on stdout and on stderr, six bytes each in JSON, through the real
// binary over stdio with the default output cap. The result must stay
// under the stated bound (far under go-sdk's 16 MiB frame) and the session
// must go on.
func TestStdioLargeResult(t *testing.T) {
	requireBwrap(t)
	bin := mcptest.BuildBinary(t, "./cmd/membrane")
	cs := mcptest.ConnectStdio(t, bin, []string{"--output-limit", "1MiB"}, stdioEnv, nil)
	r := sh(t, cs, `head -c 2000000 /dev/zero | tr '\0' '\001'; head -c 2000000 /dev/zero | tr '\0' '\001' >&2`)
	frame, err := json.Marshal(r.res)
	if err != nil {
		t.Fatal(err)
	}
	if limit := maxResultBytes(DefaultOutputBytes); int64(len(frame)) > limit || len(frame) < 1<<20 {
		t.Fatalf("result of %d bytes; want about 2 MiB, at most %d", len(frame), limit)
	}
	if !r.flag("stdout_truncated") || !r.flag("stderr_truncated") || !r.flag("output_in_text") {
		t.Fatalf("want both streams truncated and sent once: %v", r.st)
	}
	// Allow: the session is alive and a small call is whole.
	if out := ok(t, sh(t, cs, "echo after")); out != "after\n" {
		t.Fatalf("%q", out)
	}
}

// TestStdioFirstCallWarm checks that the membrane binary serves the first
// call of its first session warm (the script form a warm sandbox runs,
// $0 = /run/membrane/cmd.sh), even when it comes at once after tools/list;
// with --warm -1 (the control) it is served fresh (sh -c, $0 = /bin/sh).
func TestStdioFirstCallWarm(t *testing.T) {
	requireBwrap(t)
	bin := mcptest.BuildBinary(t, "./cmd/membrane")
	for _, tc := range []struct {
		pool, want string
	}{
		{"warm", shScriptPath + "\n"},
		{"cold", "/bin/sh\n"},
	} {
		t.Run(tc.pool, func(t *testing.T) {
			cs := mcptest.ConnectStdio(t, bin, poolArgs(tc.pool), stdioEnv, nil)
			if _, err := cs.ListTools(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
			if out := ok(t, sh(t, cs, `echo "$0"`)); out != tc.want {
				t.Fatalf("the first call's $0 is %q, want %q", out, tc.want)
			}
		})
	}
}
