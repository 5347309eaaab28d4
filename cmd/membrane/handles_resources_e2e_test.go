package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// TestHandleResourcesBinary: a 2026-07-28 HTTP client (no session) lists
// as resources the files of its token's workspace handles, paged across
// two handles with the cursor, and reads one; another token lists only
// its own handle's files and cannot read alice's.
func TestHandleResourcesBinary(t *testing.T) {
	bin := binary(t)
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"alice","token":"`+handleAlice+`"},{"name":"bob","token":"`+handleBob+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base, _, _ := startHTTP(t, bin, append([]string{"--tokens-file", tokens}, noOllama...)...)
	url := base + "/mcp"
	ctx := t.Context()

	// shIn runs cmd in a new workspace of cs and returns its handle.
	shIn := func(cs *sdk.ClientSession, cmd string) string {
		t.Helper()
		res, text := mcptest.CallText(t, cs, "sh", map[string]any{"cmd": cmd})
		if res.IsError && strings.Contains(text, "bwrap") {
			mcptest.Require(t, "the sandbox cannot run here: "+text)
		}
		st, _ := res.StructuredContent.(map[string]any)
		h, _ := st["workspace"].(string)
		if res.IsError || !calls.ValidWorkspaceHandle(h) {
			t.Fatalf("sh: handle %q:\n%s", h, text)
		}
		return h
	}
	// list pages through resources/list and returns every URI.
	list := func(cs *sdk.ClientSession) (uris []string, pages int) {
		t.Helper()
		params := &sdk.ListResourcesParams{}
		for {
			l, err := cs.ListResources(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, r := range l.Resources {
				uris = append(uris, r.URI)
			}
			if l.NextCursor == "" || pages > 10 {
				return uris, pages
			}
			params = &sdk.ListResourcesParams{Cursor: l.NextCursor}
		}
	}

	alice := mcptest.ConnectHTTPVersion(t, url, handleAlice, "", nil)
	if v := alice.InitializeResult().ProtocolVersion; v != newProto || alice.ID() != "" {
		t.Fatalf("negotiated %s with session %q, want %s without one", v, alice.ID(), newProto)
	}
	many := shIn(alice, "for i in $(seq 1000 1599); do : > f$i; done")
	one := shIn(alice, "echo hello > note.txt")
	bob := mcptest.ConnectHTTPVersion(t, url, handleBob, "", nil)
	bobs := shIn(bob, "echo bob > mine.txt")

	uris, pages := list(alice)
	seen := map[string]bool{}
	byHandle := map[string]int{}
	for _, u := range uris {
		h, _, err := calls.ParseWorkspaceURI(u)
		if err != nil {
			t.Fatalf("uri %q: %v", u, err)
		}
		if seen[u] {
			t.Fatalf("%s listed twice", u)
		}
		seen[u] = true
		byHandle[h]++
	}
	if byHandle[many] != 600 || byHandle[one] != 1 || len(byHandle) != 2 || pages < 2 {
		t.Fatalf("alice's listing in %d pages: %v (want 600 of %s, 1 of %s, none of bob's %s)", pages, byHandle, many, one, bobs)
	}
	note := calls.WorkspaceURI(one, "note.txt")
	if !seen[note] {
		t.Fatalf("%s not listed", note)
	}
	rd, err := alice.ReadResource(ctx, &sdk.ReadResourceParams{URI: note})
	if err != nil || len(rd.Contents) != 1 || rd.Contents[0].Text != "hello\n" {
		t.Fatalf("read %s: %v %+v", note, err, rd)
	}

	// Bob: his own handle's file (the allow control), none of alice's.
	got, _ := list(bob)
	if len(got) != 1 || got[0] != calls.WorkspaceURI(bobs, "mine.txt") {
		t.Fatalf("bob's listing: %v, want only his %s", got, calls.WorkspaceURI(bobs, "mine.txt"))
	}
	if _, err := bob.ReadResource(ctx, &sdk.ReadResourceParams{URI: note}); err == nil || !strings.Contains(strings.ToLower(err.Error()), "not found") {
		t.Fatalf("bob read alice's %s: %v", note, err)
	}
}
