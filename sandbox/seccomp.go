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
// of this list would look for) and ptrace it is the only one. Ordinary
// programs, shells and Python never need any of them.
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

// seccompProgram returns the classic BPF program bwrap --seccomp loads:
// native-architecture syscalls in deniedSyscalls fail with EPERM, and so does
// every syscall of a foreign ABI (i386 on amd64, x32), whose numbers differ.
func seccompProgram() []byte {
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
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		deny  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		allow = unix.SECCOMP_RET_ALLOW
	)
	// Offsets in struct seccomp_data: nr at 0, arch at 4.
	var p []unix.SockFilter
	p = append(p, unix.SockFilter{Code: ldAbs, K: 4})
	// Foreign arch: jump to deny, which is placed last.
	archJump := len(p)
	p = append(p, unix.SockFilter{Code: jeq, K: arch})
	p = append(p, unix.SockFilter{Code: ldAbs, K: 0})
	var toDeny []int
	if runtime.GOARCH == "amd64" {
		toDeny = append(toDeny, len(p))
		p = append(p, unix.SockFilter{Code: jge, K: 0x40000000}) // __X32_SYSCALL_BIT
	}
	for _, nr := range deniedSyscalls {
		toDeny = append(toDeny, len(p))
		p = append(p, unix.SockFilter{Code: jeq, K: nr})
	}
	p = append(p, unix.SockFilter{Code: ret, K: allow})
	denyAt := len(p)
	p = append(p, unix.SockFilter{Code: ret, K: deny})
	// Equal arch: fall through (jt 0); otherwise jump to deny.
	p[archJump].Jf = uint8(denyAt - archJump - 1)
	for _, i := range toDeny {
		p[i].Jt = uint8(denyAt - i - 1)
	}
	out := make([]byte, 0, 8*len(p))
	for _, f := range p {
		out = binary.NativeEndian.AppendUint16(out, f.Code)
		out = append(out, f.Jt, f.Jf)
		out = binary.NativeEndian.AppendUint32(out, f.K)
	}
	return out
}
