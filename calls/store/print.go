package store

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// FilterTerm is one term a Filter is set by (Filter.Set), with a line
// saying what it selects, for a program's flags or help. The word in
// backquotes names the value.
type FilterTerm struct {
	Key, Doc string
}

// FilterTerms are the terms of Filter.Set a listing is selected by, in
// the order to show them.
var FilterTerms = []FilterTerm{
	{"tool", "only calls of this tool (`NAME`)"},
	{"outcome", "only calls with this `OUTCOME`: ok, tool_error, error, busy, cancelled or timeout"},
	{"session", "only calls of this session (`ID`)"},
	{"client", "only calls of the client that gave this `NAME`"},
	{"token", "only calls made with the scoped token of this `NAME` (a tokens file's; never the token itself)"},
	{"since", "only calls since `WHEN`: a duration back from now (1h) or a time (2026-12-01T10:00:00Z)"},
	{"limit", "at most `N` calls, newest first (default 50)"},
}

// WriteCall writes one call with its events as aligned lines, times in
// the local zone.
func WriteCall(w io.Writer, c *Call) {
	fmt.Fprintf(w, "call      %s (%s, %s)\nid        %s\nsession   %s %s\n",
		c.Call, c.Kind, c.Group, c.ID, c.Session, c.Client)
	if c.TokenName != "" {
		fmt.Fprintf(w, "token     %s\n", c.TokenName)
	}
	fmt.Fprintf(w, "started   %s\nduration  %.1fms\noutcome   %s\n", c.Started.Local().Format(time.RFC3339Nano), c.DurMS, c.Outcome)
	if c.Reason != "" {
		fmt.Fprintf(w, "reason    %s\n", c.Reason)
	}
	fmt.Fprintf(w, "arguments %s (%d bytes, sha256 %s)\nresult    %d bytes\n", c.Args, c.ArgsBytes, c.ArgsSHA256, c.ResultBytes)
	if c.Run != nil {
		fmt.Fprintf(w, "run       %s\n", c.Run)
	}
	if c.Model != nil {
		fmt.Fprintf(w, "model     %s\n", c.Model)
	}
	if c.TraceID != "" {
		fmt.Fprintf(w, "trace     %s\n", c.TraceID)
	}
	for _, e := range c.Events {
		at := e.Time.Local().Format("15:04:05.000")
		if e.Total > 0 {
			fmt.Fprintf(w, "  %s %s %g/%g %s\n", at, e.Kind, e.Progress, e.Total, e.Message)
		} else {
			fmt.Fprintf(w, "  %s %s %g %s\n", at, e.Kind, e.Progress, e.Message)
		}
	}
}

// WriteCalls writes calls as a table, one line each: a long reason is cut
// at 60 characters. A session ID is shown whole, to be pasted into a
// filter, unless it is longer than 32 (membrane's are 26 at most).
func WriteCalls(w io.Writer, cs []Call) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tCALL\tOUTCOME\tDURATION\tSESSION\tID\tREASON")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fms\t%s\t%s\t%s\n", c.Started.Local().Format("2006-01-02 15:04:05"), c.Call, c.Outcome, c.DurMS,
			shorten(c.Session, 32), c.ID, strings.ReplaceAll(shorten(c.Reason, 60), "\t", " "))
	}
	tw.Flush()
}

// shorten shortens s to n bytes with an ellipsis.
func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
