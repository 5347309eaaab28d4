package mcp_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/mcp"
)

func TestStdioEntry(t *testing.T) {
	t.Parallel()
	type server struct {
		Command string
		Args    []string
		Type    string
	}
	for _, client := range mcp.EntryClients {
		out, err := mcp.StdioEntry(client, "membrane", "/usr/bin/membrane", []string{"--sandbox=rlimit"})
		if err != nil {
			t.Fatalf("%s: %v", client, err)
		}
		var doc struct{ MCPServers, Servers map[string]server }
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%s: %v\n%s", client, err, out)
		}
		servers, typ := doc.MCPServers, ""
		if client == "vscode" {
			servers, typ = doc.Servers, "stdio"
		}
		s, ok := servers["membrane"]
		if !ok || s.Command != "/usr/bin/membrane" || !slices.Equal(s.Args, []string{"--sandbox=rlimit"}) || s.Type != typ {
			t.Errorf("%s: %s", client, out)
		}
	}
	if out, _ := mcp.StdioEntry("cursor", "m", "/bin/m", nil); !json.Valid(out) || !strings.Contains(string(out), `"args": []`) {
		t.Errorf("no args: %s", out)
	}
	if _, err := mcp.StdioEntry("emacs", "m", "/bin/m", nil); err == nil {
		t.Error("an unknown client got an entry")
	}
}
