//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// findBwrap looks for bwrap on PATH, then in bwrapFallbacks, and reads which
// options it knows.
func findBwrap() (string, bwrapFeatures, error) {
	path, err := exec.LookPath("bwrap")
	if err != nil {
		for _, p := range bwrapFallbacks {
			if _, serr := os.Stat(p); serr == nil {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return "", bwrapFeatures{}, errors.New("bubblewrap (bwrap) is not installed or not on PATH")
	}
	out, _ := exec.Command(path, "--help").CombinedOutput()
	f := bwrapFeatures{
		disableUserns: strings.Contains(string(out), "--disable-userns"),
		size:          strings.Contains(string(out), "--size"),
	}
	if !strings.Contains(string(out), "--die-with-parent") || !strings.Contains(string(out), "--unshare-cgroup") {
		return path, f, fmt.Errorf("bubblewrap at %s is too old (it lacks --die-with-parent or --unshare-cgroup): install bubblewrap 0.4 or newer, 0.8 or newer for --disable-userns", path)
	}
	return path, f, nil
}

// bwrapArgs returns the bwrap options for j, up to but not including "--",
// the files to pass as fds 3, 4, ... (the caller closes them), and the
// pipes to talk to bwrap through.
func (s *Sandbox) bwrapArgs(ctx context.Context, j *job) ([]string, []*os.File, bwrapPipes, error) {
	var files []*os.File
	var pipes bwrapPipes
	fail := func(err error) ([]string, []*os.File, bwrapPipes, error) {
		for _, f := range files {
			f.Close()
		}
		pipes.close()
		return nil, nil, bwrapPipes{}, err
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
	for _, h := range s.hide {
		if h.dir {
			a = append(a, "--tmpfs", h.path, "--remount-ro", h.path)
		} else {
			a = append(a, "--ro-bind", "/dev/null", h.path)
		}
	}
	etc, err := s.etc.current(ctx)
	if err != nil {
		return fail(err)
	}
	j.etc = etc
	a = append(a,
		"--ro-bind", etc, "/etc",
		"--proc", "/proc",
	)
	for _, m := range s.procMasks {
		if m.dir {
			a = append(a, "--ro-bind", filepath.Join(s.root, "empty"), m.path)
		} else {
			a = append(a, "--ro-bind", "/dev/null", m.path)
		}
	}
	a = append(a, "--dev", "/dev")
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
	// After the tmpfs mounts, so that an interpreter under /tmp (say) is
	// not hidden by the sandbox's own /tmp.
	for _, d := range s.extraBinds {
		a = append(a, "--ro-bind", d, d)
	}
	for _, name := range slices.Sorted(maps.Keys(j.files)) {
		f, err := memfd("membrane-file", j.files[name])
		if err != nil {
			return fail(err)
		}
		a = append(a, "--ro-bind-data", fd(f), name)
	}
	for _, name := range slices.Sorted(maps.Keys(j.binds)) {
		a = append(a, "--ro-bind", j.binds[name], name)
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
	pipes.info = infoR
	a = append(a, "--info-fd", fd(infoW))
	if j.block {
		// The sandbox's init waits, namespaces and mounts made, until a
		// byte arrives: time to set its rlimits and move it into the
		// call's cgroup before it starts the command.
		blockR, blockW, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("sandbox: pipe: %w", err))
		}
		pipes.block = blockW
		a = append(a, "--block-fd", fd(blockR))
	}
	return a, files, pipes, nil
}

// bwrapPipes are the parent's ends of the pipes to a starting bwrap: info
// carries the pid of the sandbox's init; block, when set, releases it.
type bwrapPipes struct{ info, block *os.File }

func (p bwrapPipes) close() {
	for _, f := range []*os.File{p.info, p.block} {
		if f != nil {
			f.Close()
		}
	}
}

// bwrapCommand returns the bwrap command that runs j, the closers of the
// files handed to bwrap (for after the run), and the pipes to talk to bwrap
// through. The command's rlimits are not in its argv: limitInit sets them on
// the sandbox's init while it waits on the block pipe.
func (s *Sandbox) bwrapCommand(ctx context.Context, j *job) (*exec.Cmd, []func(), bwrapPipes, error) {
	var closers []func()
	args, extra, pipes, err := s.bwrapArgs(ctx, j)
	for _, f := range extra {
		closers = append(closers, func() { f.Close() })
	}
	if err != nil {
		return nil, closers, bwrapPipes{}, err
	}
	// The options travel through an fd, not argv, so that the sandbox's
	// /proc/1/cmdline shows the command and no host paths.
	af, err := memfd("membrane-bwrap-args", []byte(strings.Join(args, "\x00")+"\x00"))
	if err != nil {
		pipes.close()
		return nil, closers, bwrapPipes{}, err
	}
	extra = append(extra, af)
	closers = append(closers, func() { af.Close() })
	argv := []string{"--args", strconv.Itoa(2 + len(extra)), "--"}
	argv = append(argv, j.argv...)
	cmd := exec.Command(s.bwrap, argv...)
	cmd.ExtraFiles = extra
	cmd.Env = []string{}
	// bwrap itself must be able to enter the workspace's parent.
	cmd.Dir = "/"
	return cmd, closers, pipes, nil
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

// procMasks returns the entries of maskedProc this kernel has: a bind
// needs its target to exist, and a fresh /proc holds what the host's does.
func procMasks() []hidden {
	var out []hidden
	for _, name := range maskedProc {
		p := "/proc/" + name
		if fi, err := os.Lstat(p); err == nil {
			out = append(out, hidden{path: p, dir: fi.IsDir()})
		}
	}
	return out
}

// initLimits are the rlimits set on a bubblewrap sandbox's init while it
// waits on its block pipe: inherited by the command it then starts, and by
// everything that forks from it. "as" is not special here: the limits are
// set from outside, so no runtime of ours needs the address space.
func (s *Sandbox) initLimits() []rlimit {
	return []rlimit{
		{unix.RLIMIT_CORE, 0},
		{unix.RLIMIT_CPU, uint64(s.cfg.CPUSeconds)},
		{unix.RLIMIT_FSIZE, uint64(s.cfg.FileSizeBytes)},
		{unix.RLIMIT_NOFILE, uint64(s.cfg.OpenFiles)},
		{unix.RLIMIT_NPROC, uint64(s.nprocLimit())},
		{unix.RLIMIT_AS, uint64(s.cfg.MemoryBytes)},
	}
}

// nprocLimit is a bubblewrap sandbox's RLIMIT_NPROC: Procs, or where each
// call's cgroup carries pids.max at Procs, a backstop a little above it.
func (s *Sandbox) nprocLimit() int {
	if s.cg != nil && s.cg.limitsPids {
		return s.cfg.Procs + nprocBackstop
	}
	return s.cfg.Procs
}

// limitInit sets s's rlimits on the sandbox init pid with prlimit(2), then
// checks through initFD (a pidfd of that same process) that it is still the
// process the limits were meant for: had it died and its pid been reused,
// the call fails rather than run unlimited.
//
// This replaces util-linux prlimit inside the sandbox, one process (about a
// millisecond) less per call, with the same effect: the init is already in
// the sandbox's user namespace, where RLIMIT_NPROC counts only that
// sandbox's processes, and the limits are in place before the command
// exists. A hard limit above the current one (which only CAP_SYS_RESOURCE
// may raise) falls back to the current one, as setLimit does.
//
// asUID, when not negative, is the host uid the sandbox runs as while
// membrane runs as root: the limits are then set from a thread of ours
// whose effective uid is that uid for the moment, the owner of the
// sandbox's user namespace and so holding CAP_SYS_RESOURCE in it, which
// root need not have in a container.
func limitInit(pid, initFD, asUID int, limits []rlimit) error {
	if asUID < 0 {
		return setInitLimits(pid, initFD, limits)
	}
	done := make(chan error, 1)
	go func() {
		// A locked thread whose uid changes: no other goroutine runs on
		// it, and the runtime clones no new thread from it. If the uid
		// cannot be put back, the goroutine ends still locked and the
		// runtime ends the thread with it.
		runtime.LockOSThread()
		if err := setEUID(asUID); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("take uid %d to set the limits: %w", asUID, err)
			return
		}
		err := setInitLimits(pid, initFD, limits)
		if rerr := setEUID(0); rerr != nil {
			done <- errors.Join(err, fmt.Errorf("back to uid 0: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// setEUID sets the effective uid of the calling thread only (the raw
// syscall; syscall.Setresuid would change every thread of the process).
func setEUID(uid int) error {
	keep := ^uintptr(0) // -1: unchanged
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
		return e
	}
	return nil
}

func setInitLimits(pid, initFD int, limits []rlimit) error {
	for _, l := range limits {
		want := unix.Rlimit{Cur: l.n, Max: l.n}
		err := unix.Prlimit(pid, l.res, &want, nil)
		if errors.Is(err, unix.EPERM) {
			var cur unix.Rlimit
			if unix.Prlimit(pid, l.res, nil, &cur) == nil && l.n > cur.Max {
				want = unix.Rlimit{Cur: cur.Max, Max: cur.Max}
				err = unix.Prlimit(pid, l.res, &want, nil)
			}
		}
		if err != nil {
			return fmt.Errorf("set rlimit %d of the sandbox's init to %d: %w", l.res, l.n, err)
		}
	}
	if initFD < 0 {
		return errors.New("no pidfd of the sandbox's init to check it against")
	}
	if err := unix.PidfdSendSignal(initFD, 0, nil, 0); err != nil {
		return fmt.Errorf("the sandbox's init is gone: %w", err)
	}
	return nil
}
