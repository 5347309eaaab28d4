package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/diag"
	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/ollama"
	"github.com/membrane-mcp/membrane/sandbox"
)

// runDoctor prints what membrane would find and what to do about each
// problem, and returns 1 when something is broken.
func runDoctor(ctx context.Context, cfg *Config, jsonOut bool, w io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var checks []diag.Check
	if cfg.File != "" {
		checks = append(checks, diag.Check{Name: "config file", Status: diag.StatusOK, Detail: cfg.File + " reads without errors"})
	}
	checks = append(checks, sandbox.Diagnose(ctx, cfg.sandboxConfig())...)
	checks = append(checks, ollama.Diagnose(ctx, cfg.Ollama.Hosts)...)
	backends := cfg.ollamaConfig().Backends
	checks = append(checks, ollama.DiagnoseBackends(ctx, backends)...)
	checks = append(checks, ollama.DiagnoseTools(ctx, cfg.Ollama.Hosts, backends, cfg.Ollama.Tools)...)
	if cfg.HTTP.Addr != "" {
		checks = append(checks, mcp.DiagnoseListen(cfg.HTTP.Addr, cfg.HTTP.Token))
	}
	diag.Advise(checks, settingNames)
	failed := false
	if jsonOut {
		failed = diag.WriteJSON(w, versionString(), checks)
	} else {
		fmt.Fprintf(w, "membrane %s doctor\n\n", versionString())
		failed = diag.WriteText(w, checks)
	}
	if failed {
		return 1
	}
	return 0
}

// settingNames names the setting with this config-file key as a user sets
// it: "--sandbox-network, MEMBRANE_SANDBOX_NETWORK or sandbox.network in the
// config file". An unknown key is given as it is.
func settingNames(key string) string {
	for _, x := range define("membrane", &Config{}).All() {
		if x.Key != key {
			continue
		}
		var names []string
		if x.Flag != "" {
			names = append(names, "--"+x.Flag)
		}
		if x.Env != "" {
			names = append(names, x.Env)
		}
		return strings.Join(names, ", ") + " or " + key + " in the config file"
	}
	return key
}
