package mcp

import (
	"strconv"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
)

// FuzzResourcesCursor: a cursor the parser takes names the session's own
// workspace or a valid handle, with an offset inside the bound, and the
// cursor made from it parses back to the same place.
func FuzzResourcesCursor(f *testing.F) {
	h := calls.NewWorkspaceHandle()
	for _, c := range []string{"", "0", "500", h + ":0", h + ":1000", "ws_x:1", ":1", h + ":-1", "200001", h + ":" + h} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c string) {
		handle, n, err := parseResourcesCursor(c)
		if err != nil {
			return
		}
		if n < 0 || n > maxResourcesSkip || (handle != "" && !calls.ValidWorkspaceHandle(handle)) {
			t.Fatalf("%q parsed to %q %d", c, handle, n)
		}
		if c == "" {
			return
		}
		again := resourcesCursor(resourceSource{handle: handle, own: handle == ""}, n)
		h2, n2, err := parseResourcesCursor(again)
		if err != nil || h2 != handle || n2 != n {
			t.Fatalf("%q -> %q %d -> %q -> %q %d %v", c, handle, n, again, h2, n2, err)
		}
	})
}

// TestResourcesCursorRefusesBad: bad cursors are refused; the ones a page
// makes (the allow control) are taken.
func TestResourcesCursorRefusesBad(t *testing.T) {
	h := calls.NewWorkspaceHandle()
	for _, c := range []string{"x", "-1", strconv.Itoa(maxResourcesSkip + 1), "ws_short:1", h + ":", h + ":x", ":3"} {
		if _, _, err := parseResourcesCursor(c); err == nil {
			t.Errorf("cursor %q taken", c)
		}
	}
	for _, c := range []string{"0", "500", h + ":0", h + ":" + strconv.Itoa(maxResourcesSkip)} {
		if _, _, err := parseResourcesCursor(c); err != nil {
			t.Errorf("cursor %q refused: %v", c, err)
		}
	}
}
