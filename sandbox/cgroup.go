package sandbox

import "fmt"

// MemoryCap says what caps the memory of a call's processes.
type MemoryCap string

const (
	// MemoryCgroup2 is a cgroup v2 of the call's own: memory.max (and
	// memory.swap.max 0) over its whole process tree, memfds, shared memory
	// and tmpfs pages included, plus pids.max.
	MemoryCgroup2 MemoryCap = "cgroup2"
	// MemoryCgroup1 is the same with cgroup v1's memory and pids
	// controllers: memory.limit_in_bytes (and memory.memsw.limit_in_bytes)
	// and pids.max.
	MemoryCgroup1 MemoryCap = "cgroup1"
	// MemoryRlimit is RLIMIT_AS per process only, with the syscalls that
	// make memory RLIMIT_AS does not count (memfd_create, System V shared
	// memory and message queues) refused by the seccomp filter.
	MemoryRlimit MemoryCap = "rlimit"
	// MemoryRlimitLeaky is RLIMIT_AS per process with those syscalls
	// allowed (Config.AllowMemfd, or rlimit mode, which has no filter): a
	// process can hold memory past the limit.
	MemoryRlimitLeaky MemoryCap = "rlimit-memfd"
)

// nprocBackstop is how far above a call cgroup's pids.max RLIMIT_NPROC
// is set: far enough that the cgroup, which counts what it refuses, is the
// limit a fork meets first (both count the same tasks, the init included).
const nprocBackstop = 4

// memorySummary says in words what caps a call's memory.
func memorySummary(c MemoryCap, bytes int64, procs int) string {
	as := fmt.Sprintf("RLIMIT_AS %s per process", bytesText(bytes))
	switch c {
	case MemoryCgroup2:
		return fmt.Sprintf("cgroup v2 memory.max %s for the whole call (no swap), pids.max %d; %s", bytesText(bytes), procs, as)
	case MemoryCgroup1:
		return fmt.Sprintf("cgroup v1 memory.limit_in_bytes %s for the whole call (no swap), pids.max %d; %s", bytesText(bytes), procs, as)
	case MemoryRlimit:
		return as + "; memfd_create and System V shared memory refused (no cgroup to count them)"
	}
	return as + " only: memfd and shared memory are allowed and not counted, so a process can hold more"
}
