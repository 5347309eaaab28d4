package ollama

import (
	"strings"
	"testing"
	"time"
)

// TestSilentTimeoutSaysWhy: a server that takes a chat and sends nothing
// (loading a large model, say) until the call's limit gets a timeout that
// says nothing came and what to do, and the upstream request is closed. A
// fault server: no real one holds a reply back on purpose. The control
// beside it: one that sent a token first says how many came.
func TestSilentTimeoutSaysWhy(t *testing.T) {
	f := newFakeBackend(t, "slow")
	h, closed := hangChat(nil)
	f.setChat(h)
	_, r := backendModels(t, f.URL, Config{CallTimeout: 300 * time.Millisecond}, Backend{})
	res := call(t, r, "chat_slow", map[string]any{"prompt": "hi"})
	if txt := res.TextOf(); !res.IsError || !strings.Contains(txt, "timeout: slow on ") || !strings.Contains(txt, "sent no token within 300ms") || !strings.Contains(txt, "try again later") {
		t.Errorf("silent server: IsError=%v %q", res.IsError, txt)
	}
	wantUpstreamClosed(t, closed, "the timeout")
}
