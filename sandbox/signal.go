package sandbox

import (
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func syscallSignal(n int) syscall.Signal { return syscall.Signal(n) }

// signalName returns "SIGKILL" for 9, and so on.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strings.TrimPrefix(sig.String(), "signal ")
}
