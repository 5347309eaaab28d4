package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/membrane-mcp/membrane/calls/store"
)

// runCalls is `membrane calls`: it lists the calls in the trace store, or
// shows one (`membrane calls show ID`).
func runCalls(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("membrane calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("store", getenv("MEMBRANE_STORE"), "the trace store's `FILE` (default $XDG_STATE_HOME/membrane/membrane.db)")
	asJSON := fs.Bool("json", false, "print JSON, one call per line")
	now := time.Now()
	var f store.Filter
	for _, key := range []string{"tool", "outcome", "session", "since", "limit"} {
		usage := map[string]string{
			"tool":    "only calls of this tool (`NAME`)",
			"outcome": "only calls with this `OUTCOME`: ok, tool_error, error, busy, cancelled or timeout",
			"session": "only calls of this session (`ID`)",
			"since":   "only calls since `WHEN`: a duration back from now (1h) or a time (2026-12-01T10:00:00Z)",
			"limit":   "at most `N` calls, newest first (default 50)",
		}[key]
		fs.Func(key, usage, func(v string) error { return f.Set(key, v, now) })
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: membrane calls [flags]            list the calls membrane kept\n       membrane calls show [flags] ID    show one call with its events\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	// "show" may come before, between or after the flags.
	show := fs.Arg(0) == "show"
	if show {
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
	}
	if show && fs.NArg() != 1 || !show && fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	if *path == "off" {
		fmt.Fprintln(stderr, "membrane calls: the trace store is off (--store off); nothing was kept")
		return 1
	}
	p, err := storePath(*path, getenv)
	if err == nil {
		if _, serr := os.Stat(p); serr != nil {
			err = fmt.Errorf("no trace store at %s (membrane has not run with it yet, or ran with --store off): %w", p, serr)
		}
	}
	var st *store.Store
	if err == nil {
		st, err = store.Open(p, nil)
	}
	if err != nil {
		fmt.Fprintf(stderr, "membrane calls: %v\n", err)
		return 1
	}
	defer st.Close()
	ctx := context.Background()
	if show {
		c, err := st.Get(ctx, fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "membrane calls: %v (list them with membrane calls)\n", err)
			return 1
		}
		if *asJSON {
			json.NewEncoder(stdout).Encode(c)
			return 0
		}
		fmt.Fprintf(stdout, "call      %s (%s, %s)\nid        %s\nsession   %s %s\nstarted   %s\nduration  %.1fms\noutcome   %s\n",
			c.Call, c.Kind, c.Group, c.ID, c.Session, c.Client, c.Started.Local().Format(time.RFC3339Nano), c.DurMS, c.Outcome)
		if c.Reason != "" {
			fmt.Fprintf(stdout, "reason    %s\n", c.Reason)
		}
		fmt.Fprintf(stdout, "arguments %s (%d bytes, sha256 %s)\nresult    %d bytes\n", c.Args, c.ArgsBytes, c.ArgsSHA256, c.ResultBytes)
		if c.Run != nil {
			fmt.Fprintf(stdout, "run       %s\n", c.Run)
		}
		if c.Model != nil {
			fmt.Fprintf(stdout, "model     %s\n", c.Model)
		}
		for _, e := range c.Events {
			fmt.Fprintf(stdout, "  %s %s %g/%g %s\n", e.Time.Local().Format("15:04:05.000"), e.Kind, e.Progress, e.Total, e.Message)
		}
		return 0
	}
	cs, err := st.Calls(ctx, f)
	if err != nil {
		fmt.Fprintf(stderr, "membrane calls: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for i := range cs {
			enc.Encode(&cs[i])
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tCALL\tOUTCOME\tDURATION\tSESSION\tID\tREASON")
	for _, c := range cs {
		reason := c.Reason
		if len(reason) > 60 {
			reason = reason[:60] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fms\t%s\t%s\t%s\n", c.Started.Local().Format("2006-01-02 15:04:05"), c.Call, c.Outcome, c.DurMS,
			shortID(c.Session), c.ID, strings.ReplaceAll(reason, "\t", " "))
	}
	tw.Flush()
	return 0
}

func shortID(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}
