package calls

import (
	"bytes"
	"os"
	"strconv"
)

// MemTotal returns the machine's memory in bytes, from /proc/meminfo, or 0
// where the system does not say (macOS).
func MemTotal() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return parseMemTotal(data)
}

// parseMemTotal reads the MemTotal line of /proc/meminfo ("MemTotal: N kB").
func parseMemTotal(data []byte) int64 {
	for l := range bytes.SplitSeq(data, []byte("\n")) {
		rest, ok := bytes.CutPrefix(l, []byte("MemTotal:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 2 && string(f[1]) == "kB" {
			if kb, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil && kb >= 0 {
				return kb << 10
			}
		}
		return 0
	}
	return 0
}
