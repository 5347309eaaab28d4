package ollama

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
)

// TestVisionImageByHandle: a sessionless vision call reads an image path in
// the workspace its "workspace" handle names; another token's call with the
// handle is refused, and one without a handle does not see the file.
func TestVisionImageByHandle(t *testing.T) {
	store := calls.NewWorkspaces(nil)
	t.Cleanup(store.Close)
	// sessionless is the throwaway session of one stateless request.
	sessionless := func(owner string) *calls.Request {
		s := calls.NewSession("")
		s.BindWorkspaces(store, owner, true)
		t.Cleanup(s.Close)
		return &calls.Request{Session: s}
	}
	made, err := calls.ResolveWorkspace(sessionless("alice"), "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plot.png"), pngBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	made.Session.SetWorkspace(dir) // as the sandbox does when it makes it
	made.Release()

	m := &Models{cfg: Config{}}
	m.cfg.withDefaults()
	mod := &model{Name: "eyes:latest", ContextLength: 2048, Capabilities: []string{capCompletion, capVision}}
	build := func(owner, handle string) ([]byte, error) {
		t.Helper()
		a := &chatArgs{Prompt: "what is it?", Images: []string{"plot.png"}, Workspace: handle}
		creq, err := m.buildChat(t.Context(), sessionless(owner), mod, nil, a)
		if err != nil {
			return nil, err
		}
		return creq.Messages[len(creq.Messages)-1].Images[0], nil
	}
	img, err := build("alice", made.Handle)
	if err != nil || !bytes.Equal(img, pngBytes) {
		t.Fatalf("alice by handle: %v, image %d bytes", err, len(img))
	}
	if _, err := build("bob", made.Handle); err == nil || !strings.Contains(err.Error(), "not a workspace of this token") {
		t.Fatalf("bob with alice's handle: %v", err)
	}
	if _, err := build("alice", ""); err == nil || !strings.Contains(err.Error(), "no workspace") {
		t.Fatalf("without the handle: %v", err)
	}
	if _, err := build("alice", "ws_bad"); err == nil || !strings.HasPrefix(err.Error(), "invalid arguments") {
		t.Fatalf("a bad handle: %v", err)
	}
}
