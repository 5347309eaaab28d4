package sandbox

import (
	"os"
	"testing"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestMain keeps the state of the programs these tests start (membrane's
// default trace store) out of the user's home.
func TestMain(m *testing.M) { os.Exit(mcptest.RunPrivate(m)) }
