package ollamatest

import "flag"

// TB is the part of testing.TB the helpers use. It is declared here, not
// imported, so that programs using the server alone (the demo) do not
// link the testing package; any *testing.T, *testing.B or testing.TB is
// one.
type TB interface {
	Helper()
	Cleanup(func())
	Error(args ...any)
	Failed() bool
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
}

// short reports whether the tests run with -short, as testing.Short does,
// without importing testing.
func short() bool {
	f := flag.Lookup("test.short")
	return f != nil && f.Value.String() == "true"
}
