//go:build !linux || (!amd64 && !arm64)

package sandbox

// seccompOptions says what the filter adds to its fixed lists. There is no
// filter on this system.
type seccompOptions struct{ denyUnaccountedMemory bool }

// seccompProgram returns nil on architectures without a filter: the
// namespaces and bwrap's own defaults are the whole boundary there, and
// results say "seccomp: none".
func seccompProgram(seccompOptions) []byte { return nil }
