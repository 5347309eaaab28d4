package calls

import (
	"runtime"
	"testing"
)

func TestParseMemTotal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"MemTotal:       16384 kB\nMemFree: 1 kB\n": 16384 << 10,
		"MemFree: 1 kB\nMemTotal: 2 kB":             2 << 10,
		"MemTotal: 2 MB\n":                          0,
		"MemTotal: x kB\n":                          0,
		"MemTotal: -5 kB\n":                         0,
		"":                                          0,
	} {
		if got := parseMemTotal([]byte(in)); got != want {
			t.Errorf("parseMemTotal(%q) = %d, want %d", in, got, want)
		}
	}
	if runtime.GOOS == "linux" && MemTotal() <= 0 {
		t.Error("MemTotal found no MemTotal in /proc/meminfo")
	}
}
