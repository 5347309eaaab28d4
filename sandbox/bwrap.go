package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// bwrapFeatures says which newer options the installed bwrap knows.
type bwrapFeatures struct {
	disableUserns bool // 0.8: no nested user namespaces
	size          bool // 0.7: a size cap on --tmpfs
}

// etcFiles are the entries of the host's /etc a sandbox sees (a copy, see
// etcSnapshot), when they exist: what the dynamic loader, name resolution,
// TLS and Python need. passwd and group are synthetic. Everything else in
// /etc, membrane's own config included, is absent.
var etcFiles = []string{
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "host.conf", "hosts",
	"resolv.conf", "gai.conf", "services", "protocols", "localtime", "timezone",
	"ssl", "ca-certificates", "ca-certificates.conf", "pki", "crypto-policies",
	"alternatives", "mime.types", "magic", "os-release", "debian_version",
	"locale.alias", "locale.conf", "profile", "inputrc", "terminfo",
	"python3", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14",
}

// runDir is where files handed to a sandbox (python_run's code) appear.
const runDir = "/run/membrane"

// bwrapArgs returns the bwrap options for j, up to but not including "--",
// the files to pass as fds 3, 4, ... (the caller closes them), and the read
// end of the pipe on which bwrap reports the pid of the sandbox's init.
func (s *Sandbox) bwrapArgs(j *job) ([]string, []*os.File, *os.File, error) {
	var files []*os.File
	fail := func(err error) ([]string, []*os.File, *os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, nil, nil, err
	}
	fd := func(f *os.File) string {
		files = append(files, f)
		return strconv.Itoa(2 + len(files))
	}
	a := []string{
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
	}
	if !s.cfg.Network {
		a = append(a, "--unshare-net")
	}
	if s.bwrapFeat.disableUserns {
		a = append(a, "--disable-userns")
	}
	a = append(a,
		"--die-with-parent", "--new-session", "--clearenv",
		"--uid", strconv.Itoa(SandboxUID), "--gid", strconv.Itoa(SandboxGID),
		"--hostname", "sandbox",
	)
	for _, kv := range sandboxEnv(WorkspaceDir, "/tmp") {
		k, v, _ := strings.Cut(kv, "=")
		a = append(a, "--setenv", k, v)
	}
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err == nil {
				a = append(a, "--symlink", target, d)
			}
		case fi.IsDir():
			a = append(a, "--ro-bind", d, d)
		}
	}
	for _, d := range s.extraBinds {
		a = append(a, "--ro-bind", d, d)
	}
	for _, h := range s.hide {
		if h.dir {
			a = append(a, "--tmpfs", h.path, "--remount-ro", h.path)
		} else {
			a = append(a, "--ro-bind", "/dev/null", h.path)
		}
	}
	etc, err := s.etc.current()
	if err != nil {
		return fail(err)
	}
	a = append(a,
		"--ro-bind", etc, "/etc",
		"--proc", "/proc",
		"--dev", "/dev",
	)
	// Every writable tmpfs is size-capped, and the rest of the tree (bwrap's
	// own root tmpfs and /dev) is remounted read-only below: memory a
	// sandbox can fill is bounded.
	for _, d := range []string{"/tmp", "/dev/shm"} {
		if s.bwrapFeat.size {
			a = append(a, "--size", strconv.FormatInt(s.cfg.TmpBytes, 10))
		}
		a = append(a, "--tmpfs", d)
	}
	a = append(a, "--remount-ro", "/dev")
	a = append(a, "--dir", "/run", "--dir", runDir)
	for _, name := range slices.Sorted(maps.Keys(j.files)) {
		f, err := memfd("membrane-file", j.files[name])
		if err != nil {
			return fail(err)
		}
		a = append(a, "--ro-bind-data", fd(f), name)
	}
	a = append(a,
		"--bind", j.ws.dir, WorkspaceDir,
		"--chdir", WorkspaceDir,
		"--remount-ro", "/",
	)
	if len(s.seccomp) > 0 {
		f, err := memfd("membrane-seccomp", s.seccomp)
		if err != nil {
			return fail(err)
		}
		a = append(a, "--seccomp", fd(f))
	}
	infoR, infoW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("sandbox: pipe: %w", err))
	}
	a = append(a, "--info-fd", fd(infoW))
	return a, files, infoR, nil
}

// memfd returns a sealed-size in-memory file holding data, positioned at
// its start, for bwrap to read from an fd.
func memfd(name string, data []byte) (*os.File, error) {
	n, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sandbox: memfd: %w", err)
	}
	f := os.NewFile(uintptr(n), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: memfd: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: memfd: %w", err)
	}
	return f, nil
}

// probe runs `true` in a sandbox exactly as a call would, and reports why
// it failed, if it did.
func (s *Sandbox) probe(ctx context.Context) error {
	if s.bwrapErr != nil {
		return s.bwrapErr
	}
	dir, err := os.MkdirTemp(filepath.Join(s.root, "run"), "probe-")
	if err != nil {
		return err
	}
	defer removeTree(dir)
	if s.cred != nil {
		if err := os.Chown(dir, s.uid, s.gid); err != nil {
			return err
		}
	}
	o, err := s.run(ctx, &job{
		argv:    []string{"/bin/true"},
		timeout: 10 * time.Second,
		ws:      &workspace{dir: dir},
	})
	if err != nil {
		return err
	}
	switch {
	case o.setupErr != "":
		return errors.New(o.setupErr)
	case o.exitCode != 0:
		return fmt.Errorf("a sandboxed /bin/true exited with %d: %s", o.exitCode, strings.TrimSpace(string(o.stderr.buf)))
	}
	return nil
}
