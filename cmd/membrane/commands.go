package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/membrane-mcp/membrane/mcp"
)

// commands are membrane's subcommands; with none, membrane serves.
var commands = []string{"doctor", "calls", "version", "completion", "config"}

// shells are the shells `membrane completion SHELL` writes a script for.
var shells = []string{"bash", "zsh", "fish"}

// commandHeads are the subcommands' --help heads; the flags follow.
var commandHeads = map[string]string{
	"membrane doctor": `membrane doctor checks the set-up with the settings given (the same flags,
variables and config file as serving) and says what is wrong and what to
do: the sandbox, each Ollama server, each logical tool against its model,
and the HTTP address. It exits 1 when something must be fixed.

Usage:
  membrane doctor [--json] [flags]

  --json  print the findings as JSON (name, status, detail, fix) instead

Flags:
`,
	"membrane config": `membrane config prints a ready MCP client entry that launches this binary
(by its absolute path) over stdio with the flags given. Merge it into the
client's file: claude_desktop_config.json (claude-desktop),
~/.cursor/mcp.json (cursor) or .vscode/mcp.json (vscode).

Usage:
  membrane config claude-desktop|cursor|vscode [flags]

Flags (passed on to the entry):
`,
	"membrane completion": `membrane completion prints a completion script for a shell:
  source <(membrane completion bash)     # ~/.bashrc
  source <(membrane completion zsh)      # ~/.zshrc
  membrane completion fish | source      # ~/.config/fish/config.fish

Usage:
  membrane completion bash|zsh|fish

Flags completed:
`,
}

// clients are the MCP clients `membrane config CLIENT` writes an entry for.
var clients = mcp.EntryClients

// runCompletion prints the completion script of one shell.
func runCompletion(cfg *Config, shell string, stdout, stderr io.Writer) int {
	if err := cfg.set.Completion(stdout, shell, commands); err != nil {
		fmt.Fprintf(stderr, "membrane completion: %v\n", err)
		return 2
	}
	return 0
}

// runClientConfig prints a ready MCP client entry that launches this very
// binary over stdio, with the flags given on the command line (and
// --sandbox=rlimit on macOS, where bubblewrap does not exist).
func runClientConfig(cfg *Config, client string, flags []string, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		fmt.Fprintf(stderr, "membrane config: cannot find this binary's path: %v\n", err)
		return 1
	}
	flags = slices.Clone(flags)
	if runtime.GOOS == "darwin" && !cfg.set.IsSet("sandbox") {
		flags = append(flags, "--sandbox=rlimit")
	}
	out, err := mcp.StdioEntry(client, "membrane", exe, flags)
	if err != nil {
		fmt.Fprintf(stderr, "membrane config: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}
