package calls

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// MemTotal returns the machine's memory in bytes, from /proc/meminfo, or 0
// where the system does not say (macOS).
func MemTotal() int64 { return meminfo("MemTotal:") }

// meminfo returns the line of /proc/meminfo named key ("MemTotal:") in
// bytes, or 0 when it cannot be read.
func meminfo(key string) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return parseMeminfo(data, key)
}

// parseMeminfo reads the line named key of /proc/meminfo ("key N kB").
func parseMeminfo(data []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 || string(f[0]) != key {
			continue
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil || kb < 0 {
			return 0
		}
		return kb << 10
	}
	return 0
}

// SoftMemoryLimit is a soft memory limit (runtime/debug.SetMemoryLimit)
// for a server on a machine of total bytes (0: unknown): an eighth of it,
// between 64 MiB and 512 MiB. The limit is a backstop for a busy server,
// not what keeps an idle one small.
func SoftMemoryLimit(total int64) int64 {
	if total <= 0 {
		return 512 << 20
	}
	return min(max(total/8, 64<<20), 512<<20)
}
