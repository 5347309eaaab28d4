package mcp_test

import (
	"os"
	"testing"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: every
// session, transport and call the adapter starts must end with it. The
// programs its tests start keep their state (membrane's trace store) in a
// private directory.
func TestMain(m *testing.M) {
	cleanup := mcptest.PrivateState()
	goleak.VerifyTestMain(m,
		goleak.Cleanup(func(code int) { cleanup(); os.Exit(code) }),
		// net/http keeps idle client connections' goroutines around.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
