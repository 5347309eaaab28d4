package scrub_test

import (
	"testing"

	"github.com/membrane-mcp/membrane/calls/scrub"
)

// BenchmarkString is the scrubber on the texts an observer scrubs per
// call: a reason or an argument without a secret (the common case), and
// one with a key to hide.
func BenchmarkString(b *testing.B) {
	s := scrub.New(&scrub.Options{Secrets: []string{"mbr-test-token-5f0c1d2e3a4b"}})
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"args", `{"x":1}`},
		{"reason", "exit code 2: ls: cannot access 'x': No such file or directory"},
		{"command", `{"command":"ls -la /workspace && cat notes.txt | head -n 20","timeout":30}`},
		{"secret", `{"command":"aws s3 ls --key AKIAIOSFODNN7EXAMPLE"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s.String(tc.in)
			}
		})
	}
}
