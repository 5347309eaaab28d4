package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEtcSnapshot(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	write := func(name, data string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	write("hosts", "127.0.0.1 localhost\n", 0o644)
	write("ssl/certs/ca.pem", "CERT", 0o644)
	write("ssl/private/key.pem", "KEY", 0o600)
	os.Chmod(filepath.Join(src, "ssl/private"), 0o700)
	write("real-resolv.conf", "nameserver 10.0.0.1\n", 0o644)
	os.Symlink(filepath.Join(src, "real-resolv.conf"), filepath.Join(src, "resolv.conf"))
	os.Symlink("/usr/bin/python3", filepath.Join(src, "ssl/certs/link"))
	write("shadow", "root:secret", 0o644) // not in etcFiles: never copied

	e := &etcSnapshot{src: src, root: root, passwd: []byte("p\n"), group: []byte("g\n")}
	e.start()
	defer e.wait()
	dir, err := e.current(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	if read("hosts") != "127.0.0.1 localhost\n" || read("ssl/certs/ca.pem") != "CERT" || read("passwd") != "p\n" {
		t.Fatalf("copy incomplete: %q %q %q", read("hosts"), read("ssl/certs/ca.pem"), read("passwd"))
	}
	if read("resolv.conf") != "nameserver 10.0.0.1\n" {
		t.Fatalf("a top-level symlink should be followed: %q", read("resolv.conf"))
	}
	if l, err := os.Readlink(filepath.Join(dir, "ssl/certs/link")); err != nil || l != "/usr/bin/python3" {
		t.Fatalf("a deeper symlink should stay a link: %q %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ssl/private")); !os.IsNotExist(err) {
		t.Fatal("a private directory was copied")
	}
	if _, err := os.Stat(filepath.Join(dir, "shadow")); !os.IsNotExist(err) {
		t.Fatal("an entry outside the allowlist was copied")
	}
	// Unchanged: a recheck keeps the same copy.
	e.checked.Store(0)
	e.current(t.Context())
	e.wait()
	if again, _ := e.current(t.Context()); again != dir {
		t.Fatalf("rebuilt without a change: %s then %s", dir, again)
	}
	// A change in a nested file shows after the recheck interval, and not
	// before.
	write("ssl/certs/ca.pem", "CERT2", 0o644)
	os.Chtimes(filepath.Join(src, "ssl/certs/ca.pem"), time.Now(), time.Now().Add(time.Second))
	e.current(t.Context())
	e.wait()
	if again, _ := e.current(t.Context()); again != dir {
		t.Fatal("rechecked before the interval")
	}
	e.checked.Store(0)
	// The call that finds the check due does not wait for the new copy: it
	// gets the one it had, and the copy is made in the background.
	if during, err := e.current(t.Context()); err != nil || during != dir {
		t.Fatalf("the call path waited for a rebuild: %q %v", during, err)
	}
	e.wait()
	dir2, err := e.current(t.Context())
	if err != nil || dir2 == dir {
		t.Fatalf("not rebuilt after a change: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir2, "ssl/certs/ca.pem")); string(b) != "CERT2" {
		t.Fatalf("%q", b)
	}
	// The old copy stays for sandboxes that still have it bound.
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// TestEtcSnapshotFirstBuildFails checks that a first copy that cannot be
// made is an error for the calls, and that a later failure keeps the last
// good copy.
func TestEtcSnapshotFirstBuildFails(t *testing.T) {
	e := &etcSnapshot{src: t.TempDir(), root: filepath.Join(t.TempDir(), "missing")}
	e.start()
	defer e.wait()
	if dir, err := e.current(t.Context()); err == nil || !strings.Contains(err.Error(), "copy /etc") {
		t.Fatalf("want a copy error, got %q %v", dir, err)
	}
	// Allow: with a root to make it in, the next check makes the copy.
	os.Mkdir(e.root, 0o755)
	e.checked.Store(0)
	e.current(t.Context())
	e.wait()
	dir, err := e.current(t.Context())
	if err != nil || dir == "" {
		t.Fatalf("no copy once possible: %q %v", dir, err)
	}
	// A failed rebuild keeps the good copy.
	os.WriteFile(filepath.Join(e.src, "hosts"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(e.root, fmt.Sprintf("etc-%d", e.n)), nil, 0o644) // in the new copy's way
	e.checked.Store(0)
	e.current(t.Context())
	e.wait()
	if again, err := e.current(t.Context()); err != nil || again != dir {
		t.Fatalf("a failed rebuild lost the good copy: %q %v", again, err)
	}
}

// TestEtcSnapshotWaitsForTheFirstCopy checks that a call made before the
// first copy exists waits for it, and gives up with its context.
func TestEtcSnapshotWaitsForTheFirstCopy(t *testing.T) {
	e := &etcSnapshot{first: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.current(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("want the context's error before the first copy, got %v", err)
	}
	e.cur.Store(&etcCopy{dir: "/x"})
	e.checked.Store(time.Now().UnixNano())
	close(e.first)
	if dir, err := e.current(ctx); err != nil || dir != "/x" {
		t.Fatalf("with the copy made, even a done context gets it: %q %v", dir, err)
	}
}

// TestSandboxEtc checks the real sandbox's /etc against the host's.
func TestSandboxEtc(t *testing.T) {
	s := newTestSandbox(t, nil)
	cs := connect(t, s)
	out := ok(t, sh(t, cs, `cat /etc/passwd; ls /etc | tr '\n' ' '; ls /etc/shadow /etc/ssl/private 2>&1 | grep -c 'No such'`))
	if !strings.HasPrefix(out, "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:1000:1000:") {
		t.Fatalf("passwd is not the synthetic one:\n%s", out)
	}
	if !strings.HasSuffix(out, "2\n") {
		t.Fatalf("/etc/shadow or /etc/ssl/private visible:\n%s", out)
	}
	want, err := os.ReadFile("/etc/os-release")
	if err == nil {
		if got := ok(t, sh(t, cs, `cat /etc/os-release`)); got != string(want) {
			t.Fatalf("/etc/os-release differs from the host's")
		}
	}
}
