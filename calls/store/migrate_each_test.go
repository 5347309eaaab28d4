package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// TestMigrationFromEachVersion opens a database of every older schema,
// each holding a call written with the first schema's columns, and finds
// it at the current version with the call kept, and every table the later
// steps added (calls with traces, turns, conversations) working.
func TestMigrationFromEachVersion(t *testing.T) {
	for v := 1; v < SchemaVersion; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			id := fmt.Sprintf("v%d-call", v)
			s := openOld(t, v, `INSERT INTO calls(id, session, call, kind, started_at, dur_us, outcome, reason, args) VALUES('`+id+`', 's', 'sh', 'tool', ?, 1500, 'tool_error', 'exit code 1', '{"cmd":"false"}')`)
			var got int
			if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&got); err != nil || got != SchemaVersion {
				t.Fatalf("schema version %d (%v), want %d", got, err, SchemaVersion)
			}
			c, err := s.Get(t.Context(), id)
			if err != nil || c.Reason != "exit code 1" || c.Outcome != "tool_error" || string(c.Args) != `{"cmd":"false"}` {
				t.Fatalf("the old call after the migration: %+v, %v", c, err)
			}
			tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			s.Observe(calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: 7, Call: "sh", Kind: calls.KindTool, Client: "new", Outcome: calls.OutcomeOK,
				TraceParent: tp, TraceID: calls.TraceID(tp), TokenName: "alice"})
			if err := s.RecordTurn(t.Context(), &Turn{ID: "turn-1", Started: time.Now(), Question: "q", Outcome: "ok"}); err != nil {
				t.Fatalf("a turn on the migrated database: %v", err)
			}
			s.Flush()
			cs, err := s.Calls(t.Context(), Filter{Outcome: "ok"})
			if err != nil || len(cs) != 1 || cs[0].Client != "new" || cs[0].TraceID != calls.TraceID(tp) || cs[0].TokenName != "alice" {
				t.Errorf("a new call on the migrated database: %+v %v", cs, err)
			}
			// The old call has no token (schema 6 added it); the token
			// filter finds the new one only.
			if cs, err := s.Calls(t.Context(), Filter{Token: "alice"}); err != nil || len(cs) != 1 || cs[0].Client != "new" {
				t.Errorf("calls of token alice on the migrated database: %+v %v", cs, err)
			}
			if old, err := s.Get(t.Context(), id); err != nil || old.TokenName != "" {
				t.Errorf("the old call's token: %+v %v", old, err)
			}
			if tr, err := s.GetTurn(t.Context(), "turn-1"); err != nil || tr.Question != "q" {
				t.Errorf("the turn: %+v %v", tr, err)
			}
			if err := s.SaveConversation(t.Context(), "a", "coder", "c1", []byte(`[1]`), time.Hour, 0); err != nil {
				t.Fatalf("a conversation on the migrated database: %v", err)
			}
			if h, err := s.LoadConversation(t.Context(), "a", "coder", "c1"); err != nil || string(h) != `[1]` {
				t.Errorf("the conversation: %q %v", h, err)
			}
		})
	}
}
