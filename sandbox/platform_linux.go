//go:build linux

package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file holds what the package does differently on Linux; platform_other.go
// holds the portable versions the other systems use.

// sysProcAttr starts a sandboxed process in a process group of its own,
// sent SIGKILL when membrane dies (Pdeathsig), as cred when not nil.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: cred,
	}
}

// killInit sends SIGKILL to the sandbox's init through its pidfd, if it is
// known. The caller holds p.mu.
func (p *process) killInit() {
	if p.initFD >= 0 {
		_ = unix.PidfdSendSignal(p.initFD, unix.SIGKILL, nil, 0)
	}
}

// chmodDirNoFollow sets the mode of the directory at path without
// following a symbolic link there. O_PATH opens even a mode-000 directory;
// O_NOFOLLOW refuses a link; the chmod then goes through the descriptor's
// magic link, which names exactly the directory opened.
func chmodDirNoFollow(path string, mode uint32) {
	if fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
		unix.Close(fd)
	}
}

// initAlive says whether the sandbox's init is still running (true when
// there is no pidfd to ask).
func (p *process) initAlive() bool {
	fd := p.pidfd()
	if fd < 0 {
		return true
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 0
}

// readInit reads bwrap's info JSON from r, keeps a pidfd of the sandbox's
// init, and returns its pid (0 when bwrap said nothing: it failed before
// making the sandbox). bwrap writes it at once after clone(2).
func (p *process) readInit(r *os.File) int {
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer r.SetReadDeadline(time.Time{})
	var info struct {
		ChildPID int `json:"child-pid"`
	}
	if err := json.NewDecoder(r).Decode(&info); err != nil || info.ChildPID <= 0 {
		return 0
	}
	fd, err := unix.PidfdOpen(info.ChildPID, 0)
	if err == nil {
		p.mu.Lock()
		p.initFD = fd
		if p.killed {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		p.mu.Unlock()
	}
	return info.ChildPID
}

// drainInfo reads r to its end (bwrap closes it when it exits) and closes
// it.
func (p *process) drainInfo(r *os.File) {
	defer r.Close()
	_, _ = io.Copy(io.Discard, r)
}

// waitInit waits until the sandbox's init, and so every process of the
// sandbox, has exited: a killed bwrap takes its sandbox down a moment
// after it dies itself, and a call must not return before that.
func (p *process) waitInit() {
	p.mu.Lock()
	fd := p.initFD
	p.initFD = -1
	p.mu.Unlock()
	if fd < 0 {
		return
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Poll(fds, 1000)
		if n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
	}
}

// countProcs counts the processes (thread groups) whose real uid is uid.
func countProcs(uid int) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name(), &st) == nil && int(st.Uid) == uid {
			n++
		}
	}
	return n
}

// markInheritedCloexec sets close-on-exec on every descriptor above 2, so
// that a sandboxed process inherits only 0-2 (and the ExtraFiles bwrap reads
// and closes). Go opens its own files close-on-exec, but descriptors
// membrane inherited from whoever started it (a shell, a supervisor) are
// not, and bwrap passes on whatever it gets.
func markInheritedCloexec() {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	// Kernels before 5.11.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// errBwrapUnsupported is findBwrap's error where bubblewrap cannot exist at
// all; nil on Linux, where it can.
var errBwrapUnsupported error

// sandboxPATH is the PATH of every sandboxed process.
const sandboxPATH = "/usr/local/bin:/usr/bin:/bin"

// sandboxLANG is the LANG of every sandboxed process.
const sandboxLANG = "C.UTF-8"

// pythonFallbacks are where findPython looks after PATH.
var pythonFallbacks = []string{"/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"}

// pythonStub reports whether path is a stand-in for Python that must not be
// run. There is none on Linux.
func pythonStub(string) bool { return false }

// executableMagic reports whether a file starting with head is a binary.
func executableMagic(head []byte) bool { return bytes.Equal(head, []byte("\x7fELF")) }

// Fixes and caveats that differ between Linux and the rest.
const (
	fixBwrapMissing = "Fix: install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; Alpine: apk add bubblewrap), " +
		"or set membrane's sandbox mode to rlimit to accept weaker isolation (limits and timeouts only, no namespaces). `membrane doctor` explains more."
	// fixBwrapForIsolation is the fix for a missing bwrap in rlimit mode.
	fixBwrapForIsolation = "install bubblewrap for real isolation"
	// fixRlimitWeak is the fix for the weak isolation of rlimit mode.
	fixRlimitWeak = "install bubblewrap and leave rlimit sandbox mode, unless a container or VM around membrane is the boundary"
	// rlimitCaveat ends the isolation summary of rlimit mode.
	rlimitCaveat = ""
)

// unread says how many bytes written to a pipe or FIFO no reader has read
// yet (0 when it cannot tell): FIONREAD, which Linux calls TIOCINQ.
func unread(f *os.File) int {
	n := 0
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	}
	return n
}
