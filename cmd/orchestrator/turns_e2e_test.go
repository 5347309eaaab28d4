package main

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// TestE2ETurnsStored runs two one-shot turns against the real chain, one
// that calls sh and one whose tool fails, with --store, and reads them back
// with --history --json: the question, the answer, each model call with its
// tokens and each tool call with its outcome, in order. --store off keeps
// nothing (the control).
func TestE2ETurnsStored(t *testing.T) {
	c := newChain(t, ollamatest.Script{Calls: []ollamatest.ToolCall{{Name: "sh", Args: `{"cmd":"echo stored"}`}}, Answer: " Stored."})
	db := filepath.Join(t.TempDir(), "membrane.db")
	env := c.env(t)
	for _, q := range []string{"first question", "second question"} {
		if r := c.run(t, env, c.args("--store", db, "-e", q)...); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
	}
	// --store off (by its variable) keeps no turn where the default store
	// would be; membrane, launched beside it, still keeps its calls there.
	state := t.TempDir()
	if r := c.run(t, append(env, "MEMBRANE_STORE=off", "XDG_STATE_HOME="+state), c.args("-e", "not kept")...); r.code != 0 {
		t.Fatalf("--store off: exit %d", r.code)
	}
	off := filepath.Join(state, "membrane", "membrane.db")
	r := c.run(t, env, "--store", db, "--history", "--json")
	if r.code != 0 {
		t.Fatalf("--history: exit %d", r.code)
	}
	var turns []store.Turn
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var tu store.Turn
		if err := json.Unmarshal(sc.Bytes(), &tu); err != nil {
			t.Fatalf("--history --json line: %v: %s", err, sc.Text())
		}
		turns = append(turns, tu)
	}
	if len(turns) != 2 || turns[0].Question != "first question" || turns[1].Question != "second question" {
		t.Fatalf("turns: %+v", turns)
	}
	for _, tu := range turns {
		if tu.Outcome != "ok" || tu.Steps != 2 || tu.Model != c.model || strings.TrimSpace(tu.Answer) != "Stored." || tu.TokensOut == 0 || tu.DurMS <= 0 {
			t.Errorf("turn %+v", tu)
		}
		var kinds []string
		for _, p := range tu.Parts {
			kinds = append(kinds, p.Kind+":"+p.Name)
		}
		if strings.Join(kinds, " ") != "model:scripted tool:sh model:scripted" {
			t.Errorf("turn %s parts %v", tu.ID, kinds)
		}
		if len(tu.Parts) == 3 {
			if m := tu.Parts[0]; m.TokensIn == 0 || m.TokensOut == 0 || m.Step != 1 {
				t.Errorf("model part %+v", m)
			}
			if sh := tu.Parts[1]; sh.Outcome != "ok" || !strings.Contains(string(sh.Args), "echo stored") || sh.ResultBytes == 0 {
				t.Errorf("tool part %+v", sh)
			}
		}
	}
	if turns[0].Conversation == turns[1].Conversation {
		t.Errorf("two runs share conversation %q", turns[0].Conversation)
	}
	// The text form shows the same, and an empty store says so.
	if r := c.run(t, env, "--store", db, "--history"); r.code != 0 || !strings.Contains(r.stdout, "Q: first question") || !strings.Contains(r.stdout, "1 tool  sh") {
		t.Errorf("--history text:\n%s", r.stdout)
	}
	if r := c.run(t, env, "--store", off, "--history"); r.code != 0 || !strings.Contains(r.stdout, "no turns stored yet") {
		t.Errorf("--history where --store off ran: %d %q", r.code, r.stdout)
	}
}
