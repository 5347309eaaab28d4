package main

import (
	"testing"
)

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct{ total, want int64 }{
		{0, 512 << 20},
		{-1, 512 << 20},
		{256 << 20, 64 << 20},
		{2 << 30, 256 << 20},
		{24 << 30, 512 << 20},
	} {
		if got := softMemoryLimit(tc.total); got != tc.want {
			t.Errorf("softMemoryLimit(%d) = %d, want %d", tc.total, got, tc.want)
		}
	}
}
