package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/calls/scrub"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

const (
	token  = "mbr-store-token-5f0c1d2e3a4b"
	akia   = "AKIAIOSFODNN7EXAMPLE"
	pemKey = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----"
)

func tool(name string, h calls.HandlerFunc) calls.Call {
	return calls.Call{Name: name, Description: name, InputSchema: json.RawMessage(`{"type":"object"}`), Kind: calls.KindTool, Handler: h}
}

func openTemp(t *testing.T, opts *Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "membrane.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestMixedWorkload stores ok calls, tool errors, a timeout, a busy, a
// cancel and a model call, then reads them back through every filter;
// the secrets in the arguments are in no file of the database.
func TestMixedWorkload(t *testing.T) {
	scr := scrub.New(&scrub.Options{Secrets: []string{token}})
	s, path := openTemp(t, &Options{Scrubber: scr})
	r := calls.NewRouter(&calls.RouterOptions{Observers: []calls.Observer{s}, Redact: scr.String, QueueLength: -1})
	running := make(chan struct{}, 1)
	r.Add(tool("sh", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		req.Progress.Report(ctx, 1, 2, "half")
		if strings.Contains(string(req.Arguments), "fail") {
			return calls.Errorf("exit code 2: %s", req.Arguments), nil
		}
		res := calls.Text("ok")
		res.Info = &calls.Info{Run: &calls.RunInfo{ExitCode: 0, Isolation: "bwrap"}}
		return res, nil
	}))
	slow := tool("slow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	slow.Timeout = time.Millisecond
	r.Add(slow)
	one := tool("one", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		running <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	one.Concurrency = 1
	r.Add(one)
	m := tool("qwen", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		res := calls.Text("hi")
		res.Info = &calls.Info{Model: &calls.ModelInfo{Model: "qwen3:0.6b", TokensIn: 5, TokensOut: 7}}
		return res, nil
	})
	m.Kind = calls.KindModel
	r.Add(m)

	a, b := r.OpenSession("sess-a", "claude"), r.OpenSession("sess-b", "agents-sdk")
	secret, _ := json.Marshal(map[string]string{"cmd": "fail " + token + " " + akia + "\n" + pemKey})
	r.Call(t.Context(), "sh", &calls.Request{Session: a, Arguments: json.RawMessage(`{"cmd":"ls"}`)})
	r.Call(t.Context(), "sh", &calls.Request{Session: a, Arguments: secret})
	r.Call(t.Context(), "slow", &calls.Request{Session: b})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Call(ctx, "one", &calls.Request{Session: b}); close(done) }()
	<-running
	r.Call(t.Context(), "one", &calls.Request{Session: b})
	cancel()
	<-done
	r.Call(t.Context(), "qwen", &calls.Request{Session: b})
	a.Close()
	r.Close()
	s.Flush()

	count := func(filter string) int {
		t.Helper()
		f, err := ParseFilter(filter, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cs, err := s.Calls(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	for filter, want := range map[string]int{
		"":                            6,
		"tool=sh":                     2,
		"outcome=tool_error":          1,
		"outcome=timeout":             1,
		"outcome=busy":                1,
		"outcome=cancelled":           1,
		"tool=qwen outcome=ok":        1,
		"session=sess-b":              4,
		"session=sess-a tool=sh":      2,
		"since=1h":                    6,
		"since=2000-01-01T00:00:00Z":  6,
		"since=2999-01-01T00:00:00Z":  0,
		"until=2000-01-01T00:00:00Z":  0,
		"until=0s":                    6,
		"limit=2":                     2,
		"tool=nosuch":                 0,
		"session=sess-a outcome=busy": 0,
		"session=x'OR'1'='1":          0,
	} {
		if got := count(filter); got != want {
			t.Errorf("%q: %d calls, want %d", filter, got, want)
		}
	}
	f, _ := ParseFilter("tool=sh outcome=ok", time.Now())
	cs, _ := s.Calls(t.Context(), f)
	if len(cs) != 1 {
		t.Fatalf("ok sh calls: %d", len(cs))
	}
	got, err := s.Get(t.Context(), cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Client != "claude" || string(got.Args) != `{"cmd":"ls"}` || len(got.Events) != 1 || got.Events[0].Message != "half" || !strings.Contains(string(got.Run), `"isolation":"bwrap"`) {
		t.Errorf("stored call %+v", got)
	}
	if _, err := s.Get(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v", err)
	}
	f, _ = ParseFilter("tool=qwen", time.Now())
	cs, _ = s.Calls(t.Context(), f)
	if len(cs) != 1 || !strings.Contains(string(cs[0].Model), `"tokens_out":7`) {
		t.Errorf("model call %+v", cs)
	}
	s.Close()
	for _, p := range []string{path, path + "-wal"} {
		raw, _ := os.ReadFile(p)
		for _, secret := range []string{token, akia, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s holds the secret %q", filepath.Base(p), secret)
			}
		}
	}
}

// TestMigrationFromV1 opens a database of schema 1, with a call in it,
// and finds it migrated with the call kept.
func TestMigrationFromV1(t *testing.T) {
	s := openOld(t, 1, `INSERT INTO calls(id, session, call, kind, started_at, dur_us, outcome, reason, args) VALUES('old-1', 's', 'sh', 'tool', ?, 1500, 'tool_error', 'exit code 1', '{"cmd":"false"}')`)
	c, err := s.Get(t.Context(), "old-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Reason != "exit code 1" || c.DurMS != 1.5 || c.Client != "" || string(c.Args) != `{"cmd":"false"}` {
		t.Errorf("migrated call %+v", c)
	}
	// The new columns work on the migrated database.
	s.Observe(calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: 1, Call: "sh", Kind: calls.KindTool, Client: "new", Outcome: calls.OutcomeOK})
	s.Flush()
	f, _ := ParseFilter("outcome=ok", time.Now())
	if cs, err := s.Calls(t.Context(), f); err != nil || len(cs) != 1 || cs[0].Client != "new" {
		t.Errorf("new call on the migrated database: %+v %v", cs, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	db, _ := sql.Open("sqlite", "file:"+path)
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, nil); !errors.Is(err, ErrNewerSchema) {
		t.Errorf("Open of a newer schema: %v", err)
	}
}

// TestFullDatabase: SQLite's own "database or disk is full" (through a page
// limit) is logged clearly, the event counted as lost, and the calls go on;
// the allow control is the same store writing before the limit.
func TestFullDatabase(t *testing.T) {
	var logs mcptest.SyncBuffer
	s, _ := openTemp(t, &Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	r := calls.NewRouter(&calls.RouterOptions{Observers: []calls.Observer{s}})
	big := strings.Repeat("x", 900)
	r.Add(tool("sh", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ok"), nil }))
	args := json.RawMessage(`{"cmd":"` + big + `"}`)
	r.Call(t.Context(), "sh", &calls.Request{Arguments: args})
	for r.ObserverStats()[0].Delivered < 1 { // the end of the call (the store wants no other event of it)
		time.Sleep(time.Millisecond)
	}
	s.Flush()
	s.db.SetMaxOpenConns(1) // the page limit is per connection: keep one
	s.db.SetMaxIdleConns(1)
	var pages int
	s.db.QueryRow(`PRAGMA page_count`).Scan(&pages)
	if _, err := s.db.Exec(`PRAGMA max_page_count = ` + itoa(pages)); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if res, err := r.Call(t.Context(), "sh", &calls.Request{Arguments: args}); err != nil || res.TextOf() != "ok" {
			t.Fatalf("call with a full store: %v %v", res, err)
		}
	}
	r.Close()
	s.Flush()
	if s.Lost() == 0 {
		t.Error("no event counted as lost")
	}
	if !strings.Contains(logs.String(), "trace store: cannot write") || !strings.Contains(logs.String(), "full") {
		t.Errorf("no clear log line:\n%s", logs.String())
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestOpenUnwritable(t *testing.T) {
	if _, err := Open("/proc/membrane-store-test/membrane.db", nil); err == nil {
		t.Error("Open under /proc succeeded")
	}
	// A directory where the file should be.
	dir := t.TempDir()
	if _, err := Open(dir, nil); err == nil {
		t.Error("Open of a directory succeeded")
	}
}

func TestRetentionByAge(t *testing.T) {
	s, _ := openTemp(t, &Options{MaxAge: time.Hour})
	s.Observe(calls.Event{Type: calls.EventCallFinished, Time: time.Now().Add(-2 * time.Hour), ID: 1, Call: "old", Kind: calls.KindTool, Outcome: calls.OutcomeOK})
	s.Observe(calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: 2, Call: "new", Kind: calls.KindTool, Outcome: calls.OutcomeOK})
	s.Flush()
	s.retain(t.Context())
	cs, err := s.Calls(t.Context(), Filter{})
	if err != nil || len(cs) != 1 || cs[0].Call != "new" {
		t.Errorf("after retention: %+v %v", cs, err)
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, bad := range []string{"tool", "tool=", "tool=a.b", "outcome=fine", "since=yesterday", "since=-1h", "until=soon", "limit=0", "limit=99999", "color=red", "session=a\x01b"} {
		if _, err := ParseFilter(bad, time.Now()); !errors.Is(err, ErrBadFilter) {
			t.Errorf("ParseFilter(%q) = %v, want ErrBadFilter", bad, err)
		}
	}
}

// FuzzFilter checks, for any filter text ParseFilter accepts, that it
// survives a round trip through String, and that the store's answer
// holds only calls the filter matches.
func FuzzFilter(f *testing.F) {
	for _, seed := range []string{"", "tool=sh", "outcome=ok session=s-1", "since=1h limit=3", "since=2026-01-01T00:00:00Z", "since=10m until=1m", "session=x'OR'1'='1", "tool=sh tool=py", "token=alice", "client=desktop token=bob", "token=x'OR'1'='1", "client=a\x01b"} {
		f.Add(seed)
	}
	path := filepath.Join(f.TempDir(), "fuzz.db")
	s, err := Open(path, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	for i, c := range []struct{ call, outcome, session, client, token string }{{"sh", "ok", "s-1", "desktop", "alice"}, {"sh", "tool_error", "s-2", "cli", "bob"}, {"py", "ok", "s-1", "desktop", ""}, {"sh", "timeout", "x'OR'1'='1", "", "x'OR'1'='1"}} {
		var o calls.Outcome
		for _, x := range calls.Outcomes() {
			if x.String() == c.outcome {
				o = x
			}
		}
		s.Observe(calls.Event{Type: calls.EventCallFinished, Time: now.Add(-time.Duration(i) * time.Minute), ID: uint64(i + 1), Call: c.call, Kind: calls.KindTool, Session: c.session, Client: c.client, TokenName: c.token, Outcome: o})
	}
	s.Flush()
	f.Fuzz(func(t *testing.T, text string) {
		flt, err := ParseFilter(text, now)
		if err != nil {
			if !errors.Is(err, ErrBadFilter) {
				t.Fatalf("error without ErrBadFilter: %v", err)
			}
			return
		}
		again, err := ParseFilter(flt.String(), now)
		if err != nil || again.Tool != flt.Tool || again.Outcome != flt.Outcome || again.Session != flt.Session || again.Client != flt.Client || again.Token != flt.Token || again.Limit != flt.Limit || !again.Since.Equal(flt.Since) || !again.Until.Equal(flt.Until) {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v (%v)", text, flt, flt.String(), again, err)
		}
		cs, err := s.Calls(context.Background(), flt)
		if err != nil {
			t.Fatalf("query %+v: %v", flt, err)
		}
		limit := flt.Limit
		if limit == 0 {
			limit = DefaultLimit
		}
		if len(cs) > limit || len(cs) > 4 {
			t.Fatalf("%d calls for %+v", len(cs), flt)
		}
		for _, c := range cs {
			if flt.Tool != "" && c.Call != flt.Tool || flt.Outcome != "" && c.Outcome != flt.Outcome || flt.Session != "" && c.Session != flt.Session ||
				flt.Client != "" && c.Client != flt.Client || flt.Token != "" && c.TokenName != flt.Token || c.Started.Before(flt.Since.Truncate(time.Microsecond)) ||
				!flt.Until.IsZero() && !c.Started.Before(flt.Until.Truncate(time.Microsecond)) {
				t.Fatalf("call %+v does not match %+v", c, flt)
			}
		}
	})
}

// TestMigrationFromV2 opens a database of schema 2, with a call in it, and
// finds the call kept, its trace empty, and turns stored beside it.
func TestMigrationFromV2(t *testing.T) {
	s := openOld(t, 2, `INSERT INTO calls(id, session, client, call, kind, started_at, dur_us, outcome, run) VALUES('v2-1', 's', 'c', 'sh', 'tool', ?, 2000, 'ok', '{"ExitCode":3,"Isolation":"bwrap","Start":2000000}')`)
	c, err := s.Get(t.Context(), "v2-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Client != "c" || c.DurMS != 2 || c.TraceID != "" || string(c.Run) != `{"exit_code":3,"isolation":"bwrap","stdout_bytes":0,"stderr_bytes":0,"start_ms":2}` {
		t.Errorf("migrated call %+v", c)
	}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	s.Observe(calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: 1, Call: "sh", Kind: calls.KindTool, Outcome: calls.OutcomeOK, TraceParent: tp})
	if err := s.RecordTurn(t.Context(), &Turn{ID: "t1", Started: time.Now(), Question: "q", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	f, _ := ParseFilter("outcome=ok", time.Now())
	cs, err := s.Calls(t.Context(), f)
	if err != nil || len(cs) != 2 || cs[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("calls on the migrated database: %+v %v", cs, err)
	}
	if ts, err := s.Turns(t.Context(), TurnFilter{}); err != nil || len(ts) != 1 || ts[0].ID != "t1" {
		t.Errorf("turns on the migrated database: %+v %v", ts, err)
	}
}

// TestTurns stores two turns of one conversation and one of another, reads
// them back in order with their steps, and finds the secrets of the
// question, the arguments and the answer scrubbed.
func TestTurns(t *testing.T) {
	s, _ := openTemp(t, &Options{Scrubber: scrub.New(&scrub.Options{Secrets: []string{token}})})
	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	turn := &Turn{
		ID: "a-1", Conversation: "a", Started: t0, DurMS: 1234.5, Model: "m",
		Question: "use key " + akia, Answer: "done with " + token, Steps: 2, TokensIn: 30, TokensOut: 7,
		Outcome: "ok", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Parts: []TurnStep{
			{Step: 1, Kind: "model", Name: "m", Started: t0, DurMS: 10, TokensIn: 20, TokensOut: 5, FirstTokenMS: 2.5, Outcome: "ok"},
			{Step: 1, Kind: "tool", Name: "sh", Started: t0.Add(10 * time.Millisecond), DurMS: 3, Outcome: "tool_error", Reason: "exit code 1",
				Args: mustJSON(t, map[string]string{"cmd": "echo " + pemKey}), ResultBytes: 12},
			{Step: 2, Kind: "model", Name: "m", Started: t0.Add(20 * time.Millisecond), DurMS: 5, TokensIn: 10, TokensOut: 2, Outcome: "ok"},
		},
	}
	if err := s.RecordTurn(t.Context(), turn); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a-2", "b-1"} {
		conv := id[:1]
		if err := s.RecordTurn(t.Context(), &Turn{ID: id, Conversation: conv, Started: t0.Add(time.Duration(i+1) * time.Second), Question: id, Outcome: "error", Reason: "model down"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()
	all, err := s.Turns(t.Context(), TurnFilter{})
	if err != nil || len(all) != 3 || all[0].ID != "b-1" || all[2].ID != "a-1" {
		t.Fatalf("all turns, newest first: %+v %v", all, err)
	}
	a, _ := s.Turns(t.Context(), TurnFilter{Conversation: "a"})
	if len(a) != 2 || a[0].ID != "a-2" {
		t.Errorf("conversation a: %+v", a)
	}
	got, err := s.GetTurn(t.Context(), "a-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.DurMS != 1234.5 || got.TokensIn != 30 || got.Steps != 2 || len(got.Parts) != 3 || !got.Started.Equal(t0) {
		t.Errorf("turn %+v", got)
	}
	if p := got.Parts[0]; p.Kind != "model" || p.FirstTokenMS != 2.5 || p.TokensOut != 5 {
		t.Errorf("model step %+v", p)
	}
	if p := got.Parts[1]; p.Name != "sh" || p.Reason != "exit code 1" || p.ResultBytes != 12 || len(p.Args) == 0 {
		t.Errorf("tool step %+v", p)
	}
	raw, _ := json.Marshal(got)
	for _, secret := range []string{akia, token, "BEGIN PRIVATE KEY"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("stored turn shows %q: %s", secret, raw)
		}
	}
	if _, err := s.GetTurn(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown turn: %v", err)
	}
	// Recording a turn again replaces it, steps and all.
	turn.Parts = turn.Parts[:1]
	if err := s.RecordTurn(t.Context(), turn); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	if got, _ := s.GetTurn(t.Context(), "a-1"); got == nil || len(got.Parts) != 1 {
		t.Errorf("re-recorded turn: %+v", got)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openOld makes a database of schema version v holding the row insert
// writes (its one argument is a start time an hour ago), then opens it
// with Open and checks it was migrated to SchemaVersion.
func openOld(t *testing.T, v int, insert string) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:v] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = ` + itoa(v)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(insert, time.Now().Add(-time.Hour).UnixMicro()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var got int
	s.db.QueryRow(`PRAGMA user_version`).Scan(&got)
	if got != SchemaVersion || SchemaVersion <= v {
		t.Errorf("schema %d after Open, want %d", got, SchemaVersion)
	}
	return s
}

// TestRunAndModelInLedgerForm: the store keeps a call's run and model
// records in the audit ledger's form (lower_snake keys, milliseconds), so
// `membrane calls --json`, the Lens and the ledger agree.
func TestRunAndModelInLedgerForm(t *testing.T) {
	s, _ := openTemp(t, nil)
	info := &calls.Info{
		Run:   &calls.RunInfo{ExitCode: 137, Signal: "SIGKILL", Isolation: "bwrap", StdoutBytes: 5, Killed: "timeout", Start: 1500 * time.Microsecond},
		Model: &calls.ModelInfo{Model: "m:1", Host: "h", TokensIn: 4, TokensOut: 9, FirstToken: 20 * time.Millisecond, QueueWait: 3 * time.Millisecond},
	}
	s.Observe(calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: 7, Call: "sh", Kind: calls.KindTool, Outcome: calls.OutcomeToolError, Info: info})
	s.Flush()
	got, err := s.Calls(t.Context(), Filter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("Calls: %v %v", got, err)
	}
	wantRun, _ := json.Marshal(ledger.RunOf(info.Run))
	wantModel, _ := json.Marshal(ledger.ModelOf(info.Model))
	if string(got[0].Run) != string(wantRun) || string(got[0].Model) != string(wantModel) {
		t.Errorf("stored run %s, model %s; want the ledger's %s and %s", got[0].Run, got[0].Model, wantRun, wantModel)
	}
	if !strings.Contains(string(got[0].Run), `"exit_code":137`) || !strings.Contains(string(got[0].Model), `"queue_wait_ms":3`) {
		t.Errorf("records not in lower_snake milliseconds: %s %s", got[0].Run, got[0].Model)
	}
}
