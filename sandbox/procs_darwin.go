package sandbox

import "golang.org/x/sys/unix"

// countProcsSysctl counts the processes whose real uid is uid, from the
// kern.proc.uid sysctl (by effective uid, which for the processes that
// count here is the real one).
func countProcsSysctl(uid int) (int, bool) {
	ps, err := unix.SysctlKinfoProcSlice("kern.proc.uid", uid)
	if err != nil {
		return 0, false
	}
	return len(ps), true
}
