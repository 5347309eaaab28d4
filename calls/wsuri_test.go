package calls

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestWorkspaceURI(t *testing.T) {
	for _, c := range []struct{ handle, rel, uri string }{
		{"wabc", "out/plot.png", "workspace://wabc/out/plot.png"},
		{"wabc", ".", "workspace://wabc/"},
		{"wabc", "a b/%x?#.txt", "workspace://wabc/a%20b/%25x%3F%23.txt"},
		{"w-1_2", "ünï/çødé", "workspace://w-1_2/%C3%BCn%C3%AF/%C3%A7%C3%B8d%C3%A9"},
	} {
		if got := WorkspaceURI(c.handle, c.rel); got != c.uri {
			t.Errorf("WorkspaceURI(%q, %q) = %q, want %q", c.handle, c.rel, got, c.uri)
		}
		h, rel, err := ParseWorkspaceURI(c.uri)
		if err != nil || h != c.handle || rel != filepath.FromSlash(c.rel) {
			t.Errorf("ParseWorkspaceURI(%q) = %q, %q, %v", c.uri, h, rel, err)
		}
	}
	for _, bad := range []string{
		"", "file:///etc/passwd", "workspace://", "workspace:///x", "workspace://h h/x", "workspace://w/../x",
		"workspace://w/a/../../x", "workspace://w/%2e%2e/x", "workspace://w/a%2f..%2f..%2fx", "workspace://w//x",
		"workspace://w/a%00b", "workspace://w/x?y", "workspace://w/x#y", "workspace://w/%zz",
		"workspace://" + strings.Repeat("a", 65) + "/x", "workspace://w/" + strings.Repeat("a/", 5000),
	} {
		if h, rel, err := ParseWorkspaceURI(bad); !errors.Is(err, ErrWorkspaceURI) {
			t.Errorf("ParseWorkspaceURI(%q) = %q, %q, %v; want an error", bad, h, rel, err)
		}
	}
	// A trailing slash names the same directory.
	if _, rel, err := ParseWorkspaceURI("workspace://w/out/"); err != nil || rel != "out" {
		t.Errorf("trailing slash: %q %v", rel, err)
	}
}

// FuzzWorkspaceURI checks two properties: whatever ParseWorkspaceURI
// accepts names a path that stays inside the workspace and makes the same
// URI back; and every local path makes a URI that parses back to it.
func FuzzWorkspaceURI(f *testing.F) {
	for _, s := range []string{"workspace://w/out/plot.png", "workspace://w/", "workspace://w/a%2f..", "workspace://w/%2e%2e", "workspace://w/a%20b/c", "../x"} {
		f.Add(s)
	}
	const dir = "/srv/ws"
	f.Fuzz(func(t *testing.T, s string) {
		if h, rel, err := ParseWorkspaceURI(s); err == nil {
			if !handlePattern.MatchString(h) {
				t.Fatalf("%q: handle %q", s, h)
			}
			if rel != "." && !filepath.IsLocal(rel) {
				t.Fatalf("%q: path %q is not local", s, rel)
			}
			if j := filepath.Join(dir, rel); j != dir && !strings.HasPrefix(j, dir+"/") {
				t.Fatalf("%q: %q escapes the workspace", s, j)
			}
			h2, rel2, err := ParseWorkspaceURI(WorkspaceURI(h, rel))
			if err != nil || h2 != h || rel2 != rel {
				t.Fatalf("%q: round trip gave %q, %q, %v; want %q, %q", s, h2, rel2, err, h, rel)
			}
		}
		// s as a path inside a workspace.
		if !filepath.IsLocal(s) || strings.ContainsRune(s, 0) {
			return
		}
		rel := filepath.Clean(s)
		uri := WorkspaceURI("w", rel)
		if len(uri) > maxWorkspaceURI {
			if _, _, err := ParseWorkspaceURI(uri); err == nil {
				t.Fatalf("a URI of %d bytes was accepted", len(uri))
			}
			return
		}
		_, got, err := ParseWorkspaceURI(uri)
		if err != nil || got != rel {
			t.Fatalf("path %q: URI %q parsed as %q, %v", s, uri, got, err)
		}
	})
}
