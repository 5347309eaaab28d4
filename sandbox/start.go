package sandbox

import (
	"fmt"
	"log/slog"
	"sync"
)

// StartOptions configure Start. The zero value starts a Sandbox and does
// nothing more with it.
type StartOptions struct {
	// Logger is the Sandbox's logger. Nil discards.
	Logger *slog.Logger
	// Then, when set, runs in the background with the new Sandbox (to
	// register its calls, say); an error from it fails the start.
	Then func(*Sandbox) error
	// OnFail, when set, is called once, in the background, with the error
	// when New or Then fails.
	OnFail func(error)
}

// Starter is a Sandbox being made in the background. New prepares the
// private root every sandbox sees, which takes a while; a server need not
// wait for it to answer its clients' first requests.
type Starter struct {
	done chan struct{}
	mu   sync.Mutex
	box  *Sandbox
	err  error
}

// Start makes a Sandbox from cfg in the background, then runs o.Then with
// it. Close waits for both and closes the Sandbox. A nil o is the zero
// StartOptions.
func Start(cfg Config, o *StartOptions) *Starter {
	if o == nil {
		o = &StartOptions{}
	}
	s := &Starter{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		b, err := New(cfg, o.Logger)
		if err != nil {
			err = fmt.Errorf("sandbox: %w", err)
		} else {
			s.mu.Lock()
			s.box = b
			s.mu.Unlock()
			if o.Then != nil {
				err = o.Then(b)
			}
		}
		if err == nil {
			return
		}
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		if o.OnFail != nil {
			o.OnFail(err)
		}
	}()
	return s
}

// Err is why the start failed: nil while it runs, and once it succeeded.
func (s *Starter) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close waits for the start to end and closes the Sandbox, if one was
// made.
func (s *Starter) Close() error {
	<-s.done
	s.mu.Lock()
	b := s.box
	s.mu.Unlock()
	if b == nil {
		return nil
	}
	return b.Close()
}
