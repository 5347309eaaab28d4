package calls

import (
	"runtime"
)

// Bounds of MachineConcurrency.
const (
	minMachineConcurrency = 2
	maxMachineConcurrency = 64
	callsPerCore          = 8
)

// MachineConcurrency returns a concurrency limit for one call sized to this
// machine, for calls that may each use up to perCallMemory bytes (the
// sandbox's memory cap, say): 8 per core (sandboxed calls mostly wait on a
// process, and a CPU limit stops spinners), no more than three quarters of
// the memory available now can hold at perCallMemory each, and between 2
// and 64. perCallMemory <= 0, or a system that does not say how much memory
// is available, leaves memory out.
func MachineConcurrency(perCallMemory int64) int {
	n := callsPerCore * runtime.NumCPU()
	if avail := memAvailable(); perCallMemory > 0 && avail > 0 {
		n = min(n, int(avail/4*3/perCallMemory))
	}
	return min(max(n, minMachineConcurrency), maxMachineConcurrency)
}

// memAvailable returns Linux's estimate of the memory available to new
// work, in bytes, or 0 when it cannot be read.
func memAvailable() int64 { return meminfo("MemAvailable:") }
