//go:build unix && !linux

package ollamatest

import "syscall"

// sysProcAttr puts the server's shell in a new process group; the server
// and its runners join it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports 1 while any process (zombies included) is in group pgid.
func groupAlive(pgid int) int {
	if syscall.Kill(-pgid, 0) == nil {
		return 1
	}
	return 0
}
