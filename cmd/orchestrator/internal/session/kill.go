package session

import (
	"context"
	"os"
	"os/signal"
	"sync"

	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
)

// NewKillSwitch returns a kill switch that notes a kill on u. It listens
// from the first During.
func NewKillSwitch(u *display.UI) *KillSwitch { return &KillSwitch{u: u} }

// KillSwitch listens for Ctrl-C from start-up to the end of the run. While
// a step that Ctrl-C ends is running (start-up, a one-shot turn), the first
// Ctrl-C ends it; any Ctrl-C after that kills the servers' process groups.
// One listener does both, so that a second Ctrl-C right after the first
// never falls in a gap where nobody listens (and the program waits on a
// server that ignores SIGTERM for good).
type KillSwitch struct {
	u *display.UI

	mu   sync.Mutex
	kill func()             // nil: no servers yet
	sigs chan os.Signal     // nil: not armed
	done chan struct{}      // closed by disarm
	step context.CancelFunc // what the next Ctrl-C ends; nil: kill
}

// arm starts listening for Ctrl-C; arming again does nothing.
func (k *KillSwitch) arm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sigs != nil {
		return
	}
	sigs, done := make(chan os.Signal, 1), make(chan struct{})
	k.sigs, k.done = sigs, done
	signal.Notify(sigs, os.Interrupt)
	go func() {
		for {
			select {
			case <-sigs:
			case <-done:
				return
			}
			k.mu.Lock()
			step := k.step
			k.step = nil
			k.mu.Unlock()
			if step != nil {
				step()
				continue
			}
			k.mu.Lock()
			kill := k.kill
			k.mu.Unlock()
			if kill == nil {
				continue // nothing launched yet; start-up is ending
			}
			k.u.Note("%s", k.u.Style("Ctrl-C again: killing the servers", display.Red))
			kill()
			return
		}
	}()
}

// During arms k and makes the next Ctrl-C call cancel (nil: kill the
// servers).
func (k *KillSwitch) During(cancel context.CancelFunc) {
	k.arm()
	k.mu.Lock()
	k.step = cancel
	k.mu.Unlock()
}

// SetKill gives k what kills the servers (mcp.Fleet.Kill).
func (k *KillSwitch) SetKill(kill func()) {
	k.mu.Lock()
	k.kill = kill
	k.mu.Unlock()
}

// Phase runs fn, a step of start-up that may block on something outside
// the program (a pipe, a FIFO, a hung mount), and reports whether it
// ended before ctx (a Ctrl-C). When ctx ends first, fn is left to finish
// on its own as the program exits, and must not be waited for.
func Phase(ctx context.Context, fn func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Disarm stops listening, if armed.
func (k *KillSwitch) Disarm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sigs == nil {
		return
	}
	signal.Stop(k.sigs)
	close(k.done)
	k.sigs, k.done, k.step = nil, nil, nil
}
