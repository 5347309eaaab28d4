package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// limitsHelperArg, as the first argument of the executable that holds this
// package (membrane, or a test binary), makes it set rlimits and exec a
// command instead of running its main:
//
//	EXE limitsHelperArg cpu=N as=N fsize=N nofile=N nproc=N core=N [uid=N gid=N] -- ARGV...
//
// ModeRlimit uses it where util-linux prlimit is missing: always on macOS
// and the BSDs, and on Linux systems without util-linux. The limits are
// set with setrlimit(2) in bytes and counts, so no shell's ulimit units or
// options come into it. With uid and gid (membrane runs as root) it drops
// to that uid after setting the limits, before the exec.
const limitsHelperArg = "__membrane-sandbox-exec"

func init() {
	if len(os.Args) > 1 && os.Args[1] == limitsHelperArg {
		os.Exit(limitsHelper(os.Args[2:]))
	}
}

// rlimitNames maps the helper's names to resources. "as" is set last, just
// before the exec, since the helper's own Go runtime may need address space
// until then.
var rlimitNames = []struct {
	name string
	res  int
}{
	{"core", unix.RLIMIT_CORE},
	{"cpu", unix.RLIMIT_CPU},
	{"fsize", unix.RLIMIT_FSIZE},
	{"nofile", unix.RLIMIT_NOFILE},
	{"nproc", unix.RLIMIT_NPROC},
	{"as", unix.RLIMIT_AS},
}

// rlimit is one resource limit, soft and hard alike.
type rlimit struct {
	res int
	n   uint64
}

// selfLimitArgs is the helper's command line for the given limits.
func selfLimitArgs(exe string, cpu int, as, fsize int64, nofile, nproc int, cred *syscall.Credential) []string {
	a := []string{
		exe, limitsHelperArg,
		"cpu=" + strconv.Itoa(cpu),
		"as=" + strconv.FormatInt(as, 10),
		"fsize=" + strconv.FormatInt(fsize, 10),
		"nofile=" + strconv.Itoa(nofile),
		"nproc=" + strconv.Itoa(nproc),
		"core=0",
	}
	if cred != nil {
		a = append(a, "uid="+strconv.FormatUint(uint64(cred.Uid), 10), "gid="+strconv.FormatUint(uint64(cred.Gid), 10))
	}
	return append(a, "--")
}

// limitsHelper runs in the child: it parses args, sets the limits, drops
// privileges if asked and execs the command. It returns only on failure,
// with 126 (could not set up) or 127 (could not exec), as a shell would,
// after saying why on stderr.
func limitsHelper(args []string) int {
	debug.SetGCPercent(-1) // nothing to collect before the exec
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "membrane: sandbox: "+format+"\n", a...)
		return code
	}
	want := map[string]uint64{}
	uid, gid := -1, -1
	i := 0
	for ; i < len(args) && args[i] != "--"; i++ {
		k, v, _ := strings.Cut(args[i], "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fail(126, "bad limit %q", args[i])
		}
		switch k {
		case "uid":
			uid = int(n)
		case "gid":
			gid = int(n)
		default:
			want[k] = n
		}
	}
	if i+1 >= len(args) {
		return fail(126, "no command after --")
	}
	argv := args[i+1:]
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return fail(127, "%v", err)
		}
		path = p
	}
	for _, r := range rlimitNames {
		if n, ok := want[r.name]; ok && r.res != unix.RLIMIT_AS {
			if err := setLimit(r.res, n); err != nil {
				return fail(126, "set RLIMIT_%s to %d: %v", strings.ToUpper(r.name), n, err)
			}
		}
	}
	if uid >= 0 {
		if err := syscall.Setgroups([]int{}); err != nil {
			return fail(126, "setgroups: %v", err)
		}
		if err := syscall.Setgid(gid); err != nil {
			return fail(126, "setgid %d: %v", gid, err)
		}
		if err := syscall.Setuid(uid); err != nil {
			return fail(126, "setuid %d: %v", uid, err)
		}
	}
	if n, ok := want["as"]; ok {
		// macOS accepts RLIMIT_AS only partly and enforces none of it;
		// results there say the memory limit does not hold.
		if err := setLimit(unix.RLIMIT_AS, n); err != nil && runtime.GOOS == "linux" {
			return fail(126, "set RLIMIT_AS to %d: %v", n, err)
		}
	}
	err := syscall.Exec(path, argv, os.Environ())
	return fail(127, "exec %s: %v", path, err)
}

// setLimit sets both the soft and the hard limit of res to n, as prlimit
// does. A process without CAP_SYS_RESOURCE (any non-root user, and root in
// most containers) cannot raise a hard limit, so a value above the current
// one falls back to it. syscall.Setrlimit, not unix's, so that the Go
// runtime does not restore its own RLIMIT_NOFILE at the exec.
func setLimit(res int, n uint64) error {
	set := func(n uint64) error {
		var l syscall.Rlimit
		setRlim(&l.Cur, n)
		setRlim(&l.Max, n)
		return syscall.Setrlimit(res, &l)
	}
	err := set(n)
	var cur syscall.Rlimit
	if err != nil && syscall.Getrlimit(res, &cur) == nil && n > uint64(cur.Max) {
		err = set(uint64(cur.Max))
	}
	return err
}

// setRlim stores n in an rlimit field, which is int64 on FreeBSD and uint64
// elsewhere.
func setRlim[T int64 | uint64](p *T, n uint64) { *p = T(n) }

// rlimitCaveatFor is what the isolation summary of rlimit mode adds on goos
// (other than Linux): the limits that do not hold there.
func rlimitCaveatFor(goos string) string {
	s := "; a call's processes are killed at its end, but not if membrane itself is killed (no parent-death signal outside Linux)"
	if goos == "darwin" {
		s = "; macOS does not enforce the memory limit" + s
	}
	return s
}
