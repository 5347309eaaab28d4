package sandbox

import (
	"runtime"

	"github.com/membrane-mcp/membrane/calls"
)

// SizedToMachine returns c with the fields a server sizes to the machine
// filled in, where c leaves them to it: a zero Concurrency becomes
// calls.MachineConcurrency at the per-process memory cap, a zero Warm one
// pre-started sandbox per core (at most MaxWarm), and a negative Warm none.
func (c Config) SizedToMachine() Config {
	if c.Concurrency == 0 {
		mem := c.MemoryBytes
		if mem <= 0 {
			mem = DefaultMemoryBytes
		}
		c.Concurrency = calls.MachineConcurrency(mem)
	}
	switch {
	case c.Warm < 0:
		c.Warm = 0
	case c.Warm == 0:
		c.Warm = min(runtime.NumCPU(), MaxWarm)
	}
	return c
}

// Isolation says in a line what the configured mode achieves, for a
// program's status pages.
func (c Config) Isolation() string {
	net := "no network"
	if c.Network {
		net = "the host's network"
	}
	switch c.Mode {
	case ModeBwrap, "":
		return "bubblewrap: own namespaces, " + net + ", a private filesystem view, rlimits, a wall-clock deadline, output caps"
	case ModeRlimit:
		return "rlimit: resource limits and deadlines only; the code sees the host's files and " + net
	}
	return string(c.Mode)
}
