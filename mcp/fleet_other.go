//go:build !unix

package mcp

// killGroup does nothing where there are no process groups.
func killGroup(int) {}
