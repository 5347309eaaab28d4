//go:build unix

package mcp

import "syscall"

// killGroup sends SIGKILL to the process group pgid.
func killGroup(pgid int) { syscall.Kill(-pgid, syscall.SIGKILL) }
