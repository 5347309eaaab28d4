//go:build !linux

package sandbox

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The portable versions of platform_linux.go. Only ModeRlimit runs here, so
// there is no sandbox init to watch: bubblewrap is Linux-only.

// sysProcAttr starts a sandboxed process in a process group of its own, as
// cred when not nil. There is no Pdeathsig outside Linux: a call's
// processes die with membrane only when membrane shuts down normally.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}

func (p *process) killInit()             {}
func (p *process) readInit(*os.File) int { return 0 }

func (p *process) drainInfo(r *os.File) { r.Close() }
func (p *process) waitInit()            {}
func (p *process) initAlive() bool      { return true }

// chmodDirNoFollow sets the mode of the directory at path without following
// a symbolic link there: AT_SYMLINK_NOFOLLOW changes the link itself.
func chmodDirNoFollow(path string, mode uint32) {
	_ = unix.Fchmodat(unix.AT_FDCWD, path, mode, unix.AT_SYMLINK_NOFOLLOW)
}

// markInheritedCloexec sets close-on-exec on every descriptor above 2 (see
// the Linux version): those listed in /dev/fd, or, where that lists only
// 0-2 (FreeBSD without fdescfs), every number up to the soft RLIMIT_NOFILE,
// at most 4096.
func markInheritedCloexec() {
	if ents, err := os.ReadDir("/dev/fd"); err == nil && len(ents) > 3 {
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				unix.CloseOnExec(fd)
			}
		}
		return
	}
	n := uint64(4096)
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && uint64(lim.Cur) < n {
		n = uint64(lim.Cur)
	}
	for fd := 3; uint64(fd) < n; fd++ {
		unix.CloseOnExec(fd)
	}
}

// countProcs counts the processes whose real uid is uid: from the kernel's
// process table on macOS, from ps(1) elsewhere.
func countProcs(uid int) int {
	if runtime.GOOS == "darwin" {
		if n, ok := countProcsSysctl(uid); ok {
			return n
		}
	}
	out, err := exec.Command("ps", "-ax", "-o", "ruid=").Output()
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range strings.Fields(string(out)) {
		if f == strconv.Itoa(uid) {
			n++
		}
	}
	return n
}

// sandboxPATH is the PATH of every sandboxed process: Homebrew's
// directories first on macOS, as in a login shell there.
var sandboxPATH = map[bool]string{
	true:  "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
	false: "/usr/local/bin:/usr/bin:/bin",
}[runtime.GOOS == "darwin"]

// sandboxLANG is the LANG of every sandboxed process: macOS has no
// C.UTF-8 locale, and tools such as perl complain about one they lack.
var sandboxLANG = map[bool]string{true: "en_US.UTF-8", false: "C.UTF-8"}[runtime.GOOS == "darwin"]

// pythonFallbacks are where findPython looks after PATH: Homebrew's
// (Apple silicon, then Intel), then the system's.
var pythonFallbacks = []string{"/opt/homebrew/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3", "/bin/python3"}

// pythonStub reports whether path is a stand-in for Python that must not be
// run: macOS's /usr/bin/python3 without the Command Line Tools or Xcode
// only opens a dialog that offers to install them.
func pythonStub(path string) bool {
	if runtime.GOOS != "darwin" || path != "/usr/bin/python3" {
		return false
	}
	for _, d := range []string{"/Library/Developer/CommandLineTools/usr/bin/python3", "/Applications/Xcode.app"} {
		if _, err := os.Stat(d); err == nil {
			return false
		}
	}
	return true
}

// executableMagic reports whether a file starting with head is a binary:
// ELF or Mach-O.
func executableMagic(head []byte) bool {
	return bytes.Equal(head, []byte("\x7fELF")) || machOMagic(head)
}

// Fixes and caveats that differ between Linux and the rest.
var (
	fixBwrapMissing = "Fix: bubblewrap is Linux-only; on " + osName() + " set membrane's sandbox mode to rlimit, or run membrane in a Linux VM/container. " +
		"rlimit mode keeps the limits, timeouts, output caps and clean environment but not the isolation: the code can read your files and use the network. " +
		"`membrane doctor` explains more."
	fixBwrapForIsolation = "bubblewrap is Linux-only: for real isolation run membrane in a Linux VM or container with bubblewrap"
	fixRlimitWeak        = "run membrane in a Linux VM or container with bubblewrap for real isolation, unless something around membrane is the boundary"
	rlimitCaveat         = rlimitCaveatFor(runtime.GOOS)
)

// unread is 0: there is no pre-started interpreter (bwrap) here.
func unread(*os.File) int { return 0 }
