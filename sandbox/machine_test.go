package sandbox_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/sandbox"
)

func TestSizedToMachine(t *testing.T) {
	t.Parallel()
	c := sandbox.Config{}.SizedToMachine()
	if c.Concurrency < 2 || c.Concurrency > 64 || c.Warm != min(runtime.NumCPU(), sandbox.MaxWarm) {
		t.Errorf("zero config sized to %d calls, %d warm", c.Concurrency, c.Warm)
	}
	c = sandbox.Config{Concurrency: 3, Warm: -1}.SizedToMachine()
	if c.Concurrency != 3 || c.Warm != 0 {
		t.Errorf("set fields changed: %d calls, %d warm", c.Concurrency, c.Warm)
	}
	if c := (sandbox.Config{Warm: 5}).SizedToMachine(); c.Warm != 5 {
		t.Errorf("warm 5 became %d", c.Warm)
	}
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    sandbox.Config
		want string
	}{
		{sandbox.Config{Mode: sandbox.ModeBwrap}, "bubblewrap: own namespaces, no network"},
		{sandbox.Config{Mode: sandbox.ModeBwrap, Network: true}, "the host's network"},
		{sandbox.Config{Mode: sandbox.ModeRlimit}, "rlimit: resource limits and deadlines only; the code sees the host's files and no network"},
		{sandbox.Config{Mode: "odd"}, "odd"},
	} {
		if got := tc.c.Isolation(); !strings.Contains(got, tc.want) {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}
