//go:build !linux

package mcp

import "os/exec"

func detach(cmd *exec.Cmd) {}
