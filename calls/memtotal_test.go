package calls

import (
	"runtime"
	"testing"
)

func TestParseMeminfo(t *testing.T) {
	t.Parallel()
	const info = "MemTotal:       16384 kB\nMemFree: 1 kB\nMemAvailable:    8192 kB\nBad: x kB\nNeg: -5 kB\n"
	for key, want := range map[string]int64{
		"MemTotal:":     16384 << 10,
		"MemAvailable:": 8192 << 10,
		"Bad:":          0,
		"Neg:":          0,
		"Missing:":      0,
	} {
		if got := parseMeminfo([]byte(info), key); got != want {
			t.Errorf("parseMeminfo(%s) = %d, want %d", key, got, want)
		}
	}
	if runtime.GOOS == "linux" && (MemTotal() <= 0 || memAvailable() <= 0 || memAvailable() > MemTotal()) {
		t.Errorf("MemTotal %d, memAvailable %d from /proc/meminfo", MemTotal(), memAvailable())
	}
}

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct{ total, want int64 }{
		{0, 512 << 20},
		{-1, 512 << 20},
		{256 << 20, 64 << 20},
		{2 << 30, 256 << 20},
		{24 << 30, 512 << 20},
	} {
		if got := SoftMemoryLimit(tc.total); got != tc.want {
			t.Errorf("SoftMemoryLimit(%d) = %d, want %d", tc.total, got, tc.want)
		}
	}
}
