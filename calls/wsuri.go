package calls

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// WorkspaceScheme is the URI scheme of files in a workspace:
// workspace://HANDLE/PATH, where HANDLE names the workspace and PATH is
// relative to it, each segment percent-encoded.
const WorkspaceScheme = "workspace"

// WorkspaceURITemplate is the RFC 6570 template of workspace URIs.
const WorkspaceURITemplate = WorkspaceScheme + "://{handle}/{+path}"

// handlePattern is what a workspace handle looks like.
var handlePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ErrWorkspaceURI is wrapped by the errors of ParseWorkspaceURI.
var ErrWorkspaceURI = errors.New("not a workspace URI")

// maxWorkspaceURI bounds the length of a URI ParseWorkspaceURI accepts.
const maxWorkspaceURI = 8 << 10

// WorkspaceURI returns the URI of the file rel (a path relative to the
// workspace, slash- or OS-separated; "." or "" for the workspace itself)
// in the workspace named handle.
func WorkspaceURI(handle, rel string) string {
	rel = filepath.ToSlash(filepath.Clean("/" + rel))[1:]
	var b strings.Builder
	b.WriteString(WorkspaceScheme + "://" + handle + "/")
	for i, seg := range strings.Split(rel, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(seg))
	}
	return b.String()
}

// ParseWorkspaceURI splits a workspace URI into its handle and the path
// it names, relative to the workspace ("." for the workspace itself). The
// path is always local (filepath.IsLocal): no "..", no absolute path, no
// NUL, so that joining it to the workspace directory stays inside it
// lexically (os.Root must still refuse links out).
func ParseWorkspaceURI(uri string) (handle, rel string, err error) {
	fail := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w: %s (want %s, such as %s)", ErrWorkspaceURI, why, WorkspaceURITemplate, WorkspaceURI("HANDLE", "out/plot.png"))
	}
	if len(uri) > maxWorkspaceURI {
		return fail(fmt.Sprintf("it is longer than %d bytes", maxWorkspaceURI))
	}
	rest, ok := strings.CutPrefix(uri, WorkspaceScheme+"://")
	if !ok {
		return fail("it does not start with " + WorkspaceScheme + "://")
	}
	if strings.ContainsAny(rest, "?#") {
		return fail("it has a query or fragment")
	}
	handle, path, _ := strings.Cut(rest, "/")
	if !handlePattern.MatchString(handle) {
		return fail("the handle must be 1 to 64 letters, digits, '-' or '_'")
	}
	if path == "" {
		return handle, ".", nil
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		s, err := url.PathUnescape(seg)
		if err != nil {
			return fail("a path segment is not validly percent-encoded")
		}
		if s == "" && i == len(segs)-1 {
			segs = segs[:i] // a trailing slash
			break
		}
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") || (filepath.Separator != '/' && strings.ContainsRune(s, filepath.Separator)) {
			return fail("a path segment is empty, '.', '..', or holds a slash or NUL")
		}
		segs[i] = s
	}
	if len(segs) == 0 {
		return handle, ".", nil
	}
	rel = filepath.Join(segs...)
	if !filepath.IsLocal(rel) {
		return fail("the path leads outside the workspace")
	}
	return handle, rel, nil
}
