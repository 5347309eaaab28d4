package mcp

import (
	"encoding/json"
	"fmt"
	"slices"
)

// EntryClients are the MCP clients StdioEntry writes an entry for.
var EntryClients = []string{"claude-desktop", "cursor", "vscode"}

// StdioEntry returns a ready entry of an MCP client's config file that
// launches command with args as the stdio server named name: the
// mcpServers document of claude_desktop_config.json (claude-desktop) and
// ~/.cursor/mcp.json (cursor), or the servers document of .vscode/mcp.json
// (vscode). A client not in EntryClients is an error.
func StdioEntry(client, name, command string, args []string) ([]byte, error) {
	if args == nil {
		args = []string{}
	}
	server := map[string]any{"command": command, "args": args}
	var doc map[string]any
	switch client {
	case "vscode":
		server["type"] = "stdio"
		doc = map[string]any{"servers": map[string]any{name: server}}
	case "claude-desktop", "cursor":
		doc = map[string]any{"mcpServers": map[string]any{name: server}}
	default:
		return nil, fmt.Errorf("no entry for MCP client %q: want one of %v", client, slices.Clone(EntryClients))
	}
	return json.MarshalIndent(doc, "", "  ")
}
