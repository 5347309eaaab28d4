package store_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls/store"
)

func TestWriteCall(t *testing.T) {
	t.Parallel()
	c := &store.Call{ID: "c1", Session: "s1", Call: "sh", Kind: "sandbox", Group: "sandbox", Started: time.Unix(0, 0),
		DurMS: 12.34, Outcome: "tool_error", Reason: "exit 1", Args: json.RawMessage(`{"command":"false"}`), ArgsBytes: 19,
		Run: json.RawMessage(`{"exit":1}`), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Events: []store.Event{{Kind: "progress", Progress: 1, Total: 2, Message: "half"}, {Kind: "progress", Progress: 3, Message: "3 tokens"}}}
	var b bytes.Buffer
	store.WriteCall(&b, c)
	for _, want := range []string{"call      sh (sandbox, sandbox)\n", "duration  12.3ms\n", "outcome   tool_error\n", "reason    exit 1\n",
		`arguments {"command":"false"} (19 bytes`, "run       {\"exit\":1}\n", " progress 1/2 half\n",
		// Without a total, the progress alone (not "3/0").
		" progress 3 3 tokens\n",
		// The trace, to look the call up in Jaeger or another OTLP backend.
		"trace     4bf92f3577b34da6a3ce929d0e0e4736\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "model ") {
		t.Errorf("a call without a model shows one:\n%s", b.String())
	}
}

func TestWriteCalls(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	// A session ID is shown whole, so that it can be pasted into
	// --session (which matches exactly); only an ID longer than any
	// membrane makes (26 characters) is cut.
	sess := strings.Repeat("s", 26)
	store.WriteCalls(&b, []store.Call{
		{ID: "c1", Call: "sh", Outcome: "ok", Session: sess, Reason: strings.Repeat("r", 70) + "\tx"},
		{ID: "c2", Call: "sh", Outcome: "ok", Session: strings.Repeat("L", 50)},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "STARTED") || !strings.Contains(lines[1], " "+sess+" ") ||
		!strings.Contains(lines[1], strings.Repeat("r", 60)+"…") || strings.Contains(lines[1], "\t") ||
		!strings.Contains(lines[2], strings.Repeat("L", 32)+"…") || strings.Contains(lines[2], strings.Repeat("L", 33)) {
		t.Errorf("table:\n%s", b.String())
	}
}

// Every term a listing is selected by is one Filter.Set takes.
func TestFilterTermsSet(t *testing.T) {
	t.Parallel()
	good := map[string]string{"tool": "sh", "outcome": "ok", "session": "abc", "client": "desktop", "token": "alice", "since": "1h", "limit": "5"}
	for _, term := range store.FilterTerms {
		var f store.Filter
		if err := f.Set(term.Key, good[term.Key], time.Now()); err != nil || term.Doc == "" {
			t.Errorf("term %s: %v (doc %q)", term.Key, err, term.Doc)
		}
	}
	if len(store.FilterTerms) != len(good) {
		t.Errorf("%d terms, want %d", len(store.FilterTerms), len(good))
	}
}
