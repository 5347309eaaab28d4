package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLimitsHelperFailures runs the limits helper (this test binary, as
// membrane would run itself) with what it must refuse: each failure is an
// exit code a shell would give and a message that says what went wrong.
func TestLimitsHelperFailures(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cpu=x", "--", "/bin/true"}, 126, `bad limit "cpu=x"`},
		{[]string{"cpu=5"}, 126, "no command after --"},
		{[]string{"cpu=5", "--"}, 126, "no command after --"},
		{[]string{"cpu=5", "--", "/nonexistent/x"}, 127, "exec /nonexistent/x"},
		{[]string{"--", "no-such-command-here"}, 127, `exec: "no-such-command-here"`},
	} {
		cmd := exec.Command(exe, append([]string{limitsHelperArg}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(string(out), "membrane: sandbox: "+tc.want) {
			t.Errorf("%v: want exit %d and %q, got %v: %s", tc.args, tc.code, tc.want, err, out)
		}
	}
	// And it runs a command with the limits set; a process cap above the
	// hard limit falls back to it.
	args := append(selfLimitArgs(exe, 7, 256<<20, 1<<20, 32, 100000, nil)[1:], "/bin/sh", "-c", "ulimit -t; ulimit -n; ulimit -c; ulimit -Hf")
	out, err := exec.Command(exe, args...).CombinedOutput()
	if err != nil || string(out) != "7\n32\n0\n2048\n" {
		t.Fatalf("helper run: %v: %q", err, out)
	}
}

func TestMachOMagic(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{"\xcf\xfa\xed\xfe", true}, // 64-bit little-endian: arm64 and x86_64
		{"\xce\xfa\xed\xfe", true},
		{"\xca\xfe\xba\xbe", true}, // universal
		{"\x7fELF", false},
		{"#!/b", false},
		{"\xcf\xfa", false},
	} {
		if got := machOMagic([]byte(tc.head)); got != tc.want {
			t.Errorf("machOMagic(%q) = %v, want %v", tc.head, got, tc.want)
		}
	}
}

func TestRlimitCaveat(t *testing.T) {
	mac, bsd := rlimitCaveatFor("darwin"), rlimitCaveatFor("freebsd")
	if !strings.Contains(mac, "memory limit") || strings.Contains(bsd, "memory limit") {
		t.Errorf("only macOS lacks the memory limit: darwin %q, freebsd %q", mac, bsd)
	}
	for _, c := range []string{mac, bsd} {
		if !strings.Contains(c, "not if membrane itself is killed") {
			t.Errorf("caveat must say calls outlive a killed membrane: %q", c)
		}
	}
}
