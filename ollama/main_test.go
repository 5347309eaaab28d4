package ollama

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: a stream
// reader, a heartbeat, a refresh loop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
