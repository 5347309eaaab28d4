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
