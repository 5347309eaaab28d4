package agent_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// loop starts one per tool call and must not leak them, even on cancel.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
