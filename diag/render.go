package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Failed reports whether any check failed: what a program's exit code
// follows.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == StatusFail {
			return true
		}
	}
	return false
}

// Advise adds, to each fix that is about a setting (Check.Setting), the
// names a user sets it by, as names gives them for the key: the libraries
// give only the config-file key, and a program knows its own flags and
// variables. A nil names, or one that returns "", leaves the fixes alone.
func Advise(checks []Check, names func(key string) string) {
	if names == nil {
		return
	}
	for i, c := range checks {
		if c.Setting == "" || c.Fix == "" {
			continue
		}
		if n := names(c.Setting); n != "" {
			checks[i].Fix += " (" + n + ")"
		}
	}
}

// WriteText writes one aligned block per check (a mark, the name, the
// detail, and the fix of a check that is not ok) and a summary line. It
// returns Failed(checks).
func WriteText(w io.Writer, checks []Check) (failed bool) {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	var fails, warns int
	for _, c := range checks {
		mark := "ok  "
		switch c.Status {
		case StatusWarn:
			mark = "warn"
			warns++
		case StatusFail:
			mark = "FAIL"
			fails++
		}
		fmt.Fprintf(w, "%s  %-*s  %s\n", mark, width, c.Name, oneLine(c.Detail))
		if c.Fix != "" && c.Status != StatusOK {
			fmt.Fprintf(w, "      %-*s  fix: %s\n", width, "", oneLine(c.Fix))
		}
	}
	fmt.Fprintln(w)
	switch {
	case fails > 0:
		fmt.Fprintf(w, "%d problem(s) to fix, %d warning(s).\n", fails, warns)
	case warns > 0:
		fmt.Fprintf(w, "Ready, with %d warning(s).\n", warns)
	default:
		fmt.Fprintln(w, "Ready.")
	}
	return fails > 0
}

// WriteJSON writes the findings as one JSON document, for scripts:
// {"version", "ok", "checks": [{"name", "status", "detail", "fix"}]}, with
// each text on one line. It returns Failed(checks).
func WriteJSON(w io.Writer, version string, checks []Check) (failed bool) {
	type finding struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail"`
		Fix    string `json:"fix,omitempty"`
	}
	failed = Failed(checks)
	doc := struct {
		Version string    `json:"version"`
		OK      bool      `json:"ok"`
		Checks  []finding `json:"checks"`
	}{Version: version, OK: !failed, Checks: []finding{}}
	for _, c := range checks {
		doc.Checks = append(doc.Checks, finding{c.Name, c.Status.String(), oneLine(c.Detail), oneLine(c.Fix)})
	}
	out, _ := json.MarshalIndent(doc, "", "  ")
	fmt.Fprintf(w, "%s\n", out)
	return failed
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
