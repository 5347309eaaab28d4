package main

import (
	"context"
	"encoding/json"
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
	checks = append(checks, ollama.DiagnoseTools(ctx, cfg.Ollama.Hosts, cfg.Ollama.Tools)...)
	if cfg.HTTP.Addr != "" {
		c := diag.Check{Name: "http", Status: diag.StatusOK, Detail: "would serve http://" + cfg.HTTP.Addr + mcp.DefaultPath}
		if err := mcp.CheckListen(cfg.HTTP.Addr, cfg.HTTP.Token); err != nil {
			c.Status, c.Detail, c.Fix, c.Setting = diag.StatusFail, err.Error(), "set a token, or listen on 127.0.0.1", "http.token"
		} else if cfg.HTTP.Token == "" {
			c.Detail += " without a token (loopback only)"
		} else {
			c.Detail += " with a bearer token"
		}
		checks = append(checks, c)
	}
	adviseSettings(checks)
	if jsonOut {
		return printJSON(w, checks)
	}
	fmt.Fprintf(w, "membrane %s doctor\n\n", versionString())
	return printChecks(w, checks)
}

// printJSON writes the findings as one JSON document, for scripts, and
// returns the exit code as printChecks does.
func printJSON(w io.Writer, checks []diag.Check) int {
	type finding struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail"`
		Fix    string `json:"fix,omitempty"`
	}
	doc := struct {
		Version string    `json:"version"`
		OK      bool      `json:"ok"`
		Checks  []finding `json:"checks"`
	}{Version: versionString(), OK: true, Checks: []finding{}}
	for _, c := range checks {
		if c.Status == diag.StatusFail {
			doc.OK = false
		}
		doc.Checks = append(doc.Checks, finding{c.Name, c.Status.String(), oneLine(c.Detail), oneLine(c.Fix)})
	}
	out, _ := json.MarshalIndent(doc, "", "  ")
	fmt.Fprintf(w, "%s\n", out)
	if !doc.OK {
		return 1
	}
	return 0
}

// printChecks writes one block per check and returns the exit code: 1 when
// any check failed.
func printChecks(w io.Writer, checks []diag.Check) int {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	var fails, warns int
	for _, c := range checks {
		mark := "ok  "
		switch c.Status {
		case diag.StatusWarn:
			mark = "warn"
			warns++
		case diag.StatusFail:
			mark = "FAIL"
			fails++
		}
		fmt.Fprintf(w, "%s  %-*s  %s\n", mark, width, c.Name, oneLine(c.Detail))
		if c.Fix != "" && c.Status != diag.StatusOK {
			fmt.Fprintf(w, "      %-*s  fix: %s\n", width, "", oneLine(c.Fix))
		}
	}
	fmt.Fprintln(w)
	switch {
	case fails > 0:
		fmt.Fprintf(w, "%d problem(s) to fix, %d warning(s).\n", fails, warns)
		return 1
	case warns > 0:
		fmt.Fprintf(w, "Ready, with %d warning(s).\n", warns)
	default:
		fmt.Fprintln(w, "Ready.")
	}
	return 0
}

// adviseSettings adds, to each fix that is about a setting, the flag,
// variable and file key that set it: the libraries give only the key.
func adviseSettings(checks []diag.Check) {
	for i, c := range checks {
		if c.Setting != "" && c.Fix != "" {
			checks[i].Fix += " (" + settingNames(c.Setting) + ")"
		}
	}
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

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
