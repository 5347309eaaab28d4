//go:build unix

package calls

import "syscall"

// openNoBlock opens a FIFO without waiting for a writer, and a terminal
// without making it the controlling one.
const openNoBlock = syscall.O_NONBLOCK | syscall.O_NOCTTY
