package sandbox

import (
	"errors"
	"testing"
)

func TestStart(t *testing.T) {
	// A bad config fails the start; Then never runs.
	failed := make(chan error, 1)
	s := Start(Config{Mode: "docker"}, &StartOptions{
		Then:   func(*Sandbox) error { t.Error("Then ran after New failed"); return nil },
		OnFail: func(err error) { failed <- err },
	})
	if err := <-failed; !errors.Is(err, ErrConfig) {
		t.Fatalf("OnFail got %v, want ErrConfig", err)
	}
	if err := s.Err(); !errors.Is(err, ErrConfig) {
		t.Errorf("Err() = %v, want ErrConfig", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after a failed start: %v", err)
	}

	// A good config runs Then with the Sandbox, and does not fail.
	got := make(chan *Sandbox, 1)
	s = Start(testConfig(), &StartOptions{
		Then:   func(b *Sandbox) error { got <- b; return nil },
		OnFail: func(err error) { t.Errorf("OnFail(%v) after a good start", err) },
	})
	if b := <-got; b == nil || len(b.Calls()) == 0 {
		t.Fatalf("Then got %v, want a Sandbox with calls", b)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err() = %v after a good start", err)
	}

	// An error from Then fails the start, and Close still closes the
	// Sandbox New made.
	boom := errors.New("boom")
	s = Start(testConfig(), &StartOptions{Then: func(*Sandbox) error { return boom }})
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Err(); !errors.Is(err, boom) {
		t.Errorf("Err() = %v, want Then's error", err)
	}
	if err := Start(testConfig(), nil).Close(); err != nil {
		t.Errorf("Start with nil options: Close: %v", err)
	}
}
