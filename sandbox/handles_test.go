package sandbox

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

var handleInText = regexp.MustCompile(`workspace: (ws_[A-Z2-7]{26}) `)

// TestWorkspaceHandles: a sessionless request without a handle gets a new
// workspace and its handle, in the structured content and in the text; a
// later request naming the handle works in it (sh, then python_run), one
// naming none gets another, and expiry removes the directory.
func TestWorkspaceHandles(t *testing.T) {
	s := newTestSandbox(t, nil)
	r := calls.NewRouter(nil)
	for _, c := range s.Calls() {
		r.Add(c)
	}
	store := calls.NewWorkspaces(&calls.WorkspacesOptions{Idle: time.Hour})
	defer store.Close()
	// Each request has a throwaway session of its own, as a stateless
	// HTTP request does.
	do := func(owner, tool string, args map[string]any) *calls.Result {
		t.Helper()
		sess := calls.NewSession("")
		sess.BindWorkspaces(store, owner, true)
		defer sess.Close()
		raw, _ := json.Marshal(args)
		res, err := r.Call(t.Context(), tool, &calls.Request{Arguments: raw, Session: sess})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := do("", "sh", map[string]any{"cmd": "echo kept > note"})
	if first.IsError {
		t.Fatal(first.TextOf())
	}
	h, _ := first.Structured.(map[string]any)["workspace"].(string)
	m := handleInText.FindStringSubmatch(first.TextOf())
	if !calls.ValidWorkspaceHandle(h) || m == nil || m[1] != h {
		t.Fatalf("handle in structured content %q, in the text %v:\n%s", h, m, first.TextOf())
	}
	res := do("", "python_run", map[string]any{"code": "print(open('note').read().strip())", "workspace": h})
	if res.IsError || !strings.Contains(res.TextOf(), "stdout:\nkept\n") {
		t.Fatalf("python_run by handle should read what sh wrote:\n%s", res.TextOf())
	}
	if got := res.Structured.(map[string]any)["workspace"]; got != h {
		t.Fatalf("result by handle names workspace %v, want %s", got, h)
	}
	// Control: without the handle, a new empty workspace.
	fresh := do("", "sh", map[string]any{"cmd": "cat note"})
	if !fresh.IsError || fresh.Structured.(map[string]any)["workspace"] == h {
		t.Fatalf("a call without the handle saw the file, or got the same handle:\n%s", fresh.TextOf())
	}
	// Another owner is refused, and nothing runs.
	foreign := do("mallory", "sh", map[string]any{"cmd": "cat note", "workspace": h})
	if !foreign.IsError || !strings.Contains(foreign.TextOf(), "not run") || strings.Contains(foreign.TextOf(), "kept") {
		t.Fatalf("another owner's call by handle:\n%s", foreign.TextOf())
	}
	// A bad handle is an argument error the model can fix.
	bad := do("", "sh", map[string]any{"cmd": "true", "workspace": "nope"})
	if !bad.IsError || !strings.Contains(bad.TextOf(), "not a workspace handle") {
		t.Fatalf("bad handle:\n%s", bad.TextOf())
	}
	var dir string
	s.mu.Lock()
	for sess, ws := range s.workspaces {
		if strings.HasPrefix(sess.ID(), "w-") && ws.owned {
			if b, err := os.ReadFile(ws.dir + "/note"); err == nil && string(b) == "kept\n" {
				dir = ws.dir
			}
		}
	}
	s.mu.Unlock()
	if dir == "" {
		t.Fatal("the handle's workspace directory was not found")
	}
	store.Close()
	waitFor(t, func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) })
}
