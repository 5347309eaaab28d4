//go:build linux && (amd64 || arm64)

package sandbox

import (
	"encoding/binary"
	"runtime"

	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside a bubblewrap sandbox. The namespaces
// already make most of them harmless; the filter is a second wall, and for
// io_uring (which can open sockets and files without the syscalls a reader
// of this list would look for, IORING_OP_SOCKET among them) and ptrace it is
// the only one. Ordinary programs, shells and Python never need any of them.
var deniedSyscalls = []uint32{
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_MOVE_MOUNT,
	unix.SYS_OPEN_TREE, unix.SYS_FSOPEN, unix.SYS_FSMOUNT, unix.SYS_FSCONFIG,
	unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_ACCT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT, unix.SYS_SYSLOG,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT, unix.SYS_QUOTACTL,
	unix.SYS_LOOKUP_DCOOKIE, unix.SYS_VHANGUP,
}

// unaccountedMemorySyscalls make memory that RLIMIT_AS does not count: a
// memfd's pages, and System V shared memory and message queues, live apart
// from any address space. They are denied when no cgroup caps a call's
// memory (and Config.AllowMemfd is not set), so that the memory limit holds.
var unaccountedMemorySyscalls = []uint32{
	unix.SYS_MEMFD_CREATE, unix.SYS_MEMFD_SECRET, unix.SYS_SHMGET, unix.SYS_MSGGET,
}

// allowedSocketFamilies are the only address families socket(2) and
// socketpair(2) accept in a sandbox. Every other family (AF_VSOCK, whose
// port space is the host's and reaches the hypervisor; AF_PACKET; AF_ALG;
// AF_KCM; AF_XDP; AF_TIPC; AF_RDS; AF_CAN; AF_BLUETOOTH; ...) fails with
// EAFNOSUPPORT, as if the kernel lacked it. AF_INET and AF_INET6 reach only
// the sandbox's own loopback (the network namespace); AF_NETLINK talks to
// the sandbox's own kernel objects, which ip(8) and getaddrinfo use.
var allowedSocketFamilies = []uint32{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

// seccompOptions says what the filter adds to its fixed lists.
type seccompOptions struct {
	// denyUnaccountedMemory adds unaccountedMemorySyscalls.
	denyUnaccountedMemory bool
}

// seccompProgram returns the classic BPF program bwrap --seccomp loads:
// native-architecture syscalls in deniedSyscalls fail with EPERM, and so does
// every syscall of a foreign ABI (i386 on amd64, x32), whose numbers differ;
// socket and socketpair fail with EAFNOSUPPORT for a family outside
// allowedSocketFamilies. There is no socketcall(2) on amd64 or arm64, and
// the foreign ABIs that have one are denied whole.
func seccompProgram(o seccompOptions) []byte {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return nil
	}
	const (
		ldAbs  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge    = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
		deny   = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		noAF   = unix.SECCOMP_RET_ERRNO | uint32(unix.EAFNOSUPPORT)
		allow  = unix.SECCOMP_RET_ALLOW
		offNr  = 0
		offArc = 4
		// args[0] is at 16; its low 32 bits come first on these
		// little-endian machines. The kernel reads the family as an
		// int, so the high half does not matter.
		offArg0 = 16
	)
	denied := append([]uint32(nil), deniedSyscalls...)
	if o.denyUnaccountedMemory {
		denied = append(denied, unaccountedMemorySyscalls...)
	}
	// Jumps are forward only and resolved at the end, by label.
	type fix struct {
		at     int
		jt, jf string // label names; "" falls through
	}
	var (
		p      []unix.SockFilter
		fixes  []fix
		labels = map[string]int{}
	)
	emit := func(code uint16, k uint32, jt, jf string) {
		fixes = append(fixes, fix{at: len(p), jt: jt, jf: jf})
		p = append(p, unix.SockFilter{Code: code, K: k})
	}
	emit(ldAbs, offArc, "", "")
	emit(jeq, arch, "", "deny") // a foreign ABI
	emit(ldAbs, offNr, "", "")
	if runtime.GOARCH == "amd64" {
		emit(jge, 0x40000000, "deny", "") // __X32_SYSCALL_BIT
	}
	emit(jeq, unix.SYS_FALLOCATE, "no-fallocate", "")
	emit(jeq, unix.SYS_SOCKET, "socket", "")
	emit(jeq, unix.SYS_SOCKETPAIR, "socket", "")
	for _, nr := range denied {
		emit(jeq, nr, "deny", "")
	}
	labels["allow"] = len(p)
	emit(ret, allow, "", "")
	labels["deny"] = len(p)
	emit(ret, deny, "", "")
	// fallocate(2) takes disk space far faster than writing does, past
	// the workspace quota's watch; EOPNOTSUPP makes glibc's
	// posix_fallocate write zeros instead, as on a file system without it.
	labels["no-fallocate"] = len(p)
	emit(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.EOPNOTSUPP), "", "")
	labels["socket"] = len(p)
	emit(ldAbs, offArg0, "", "")
	for _, fam := range allowedSocketFamilies {
		emit(jeq, fam, "family-ok", "")
	}
	emit(ret, noAF, "", "")
	labels["family-ok"] = len(p) // classic BPF jumps only forward
	emit(ret, allow, "", "")
	rel := func(from int, label string) uint8 {
		if label == "" {
			return 0
		}
		d := labels[label] - from - 1
		if d < 0 || d > 255 {
			panic("sandbox: seccomp jump out of range")
		}
		return uint8(d)
	}
	for _, f := range fixes {
		p[f.at].Jt, p[f.at].Jf = rel(f.at, f.jt), rel(f.at, f.jf)
	}
	out := make([]byte, 0, 8*len(p))
	for _, f := range p {
		out = binary.NativeEndian.AppendUint16(out, f.Code)
		out = append(out, f.Jt, f.Jf)
		out = binary.NativeEndian.AppendUint32(out, f.K)
	}
	return out
}
