package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	obsv "github.com/membrane-mcp/membrane/calls/observers"
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
	for _, term := range store.FilterTerms {
		fs.Func(term.Key, term.Doc, func(v string) error { return f.Set(term.Key, v, now) })
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
	p, err := obsv.StorePath(*path, getenv)
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
		store.WriteCall(stdout, c)
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
	store.WriteCalls(stdout, cs)
	return 0
}
