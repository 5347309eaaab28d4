package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

func finished(id uint64, call string, at time.Time) calls.Event {
	return calls.Event{Type: calls.EventCallFinished, Time: at, ID: id, Call: call, Kind: calls.KindTool, Session: "s", Outcome: calls.OutcomeOK, Duration: time.Millisecond}
}

// TestBatchWritesEveryRow stores more calls and progress events than one
// batch holds, in numbers that are no multiple of an INSERT's rows, and
// finds every call exactly once, with its own events.
func TestBatchWritesEveryRow(t *testing.T) {
	s, _ := openTemp(t, nil)
	now := time.Now()
	const n = 2*batchRows + 1<<maxChunkLog + 37
	for i := range uint64(n) {
		id := i + 1
		if id%3 == 0 {
			s.Observe(calls.Event{Type: calls.EventCallProgress, Time: now, ID: id, Progress: float64(id), Message: "step"})
		}
		s.Observe(finished(id, "sh", now.Add(time.Duration(id)*time.Microsecond)))
	}
	s.Flush()
	if got, err := s.Count(t.Context(), Filter{}); err != nil || got != n {
		t.Fatalf("%d calls stored of %d (%v)", got, n, err)
	}
	cs, err := s.Calls(t.Context(), Filter{Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.ID] {
			t.Fatalf("call %s twice", c.ID)
		}
		seen[c.ID] = true
	}
	for _, id := range []uint64{1, 3, 64, 65, 255, 256, 257, n} {
		c, err := s.Get(t.Context(), s.CallID(id))
		if err != nil {
			t.Fatalf("call %d: %v", id, err)
		}
		wantEvents := 0
		if id%3 == 0 {
			wantEvents = 1
		}
		if len(c.Events) != wantEvents || wantEvents == 1 && c.Events[0].Progress != float64(id) {
			t.Errorf("call %d: events %+v, want %d of its own", id, c.Events, wantEvents)
		}
	}
	if s.Lost() != 0 {
		t.Errorf("%d events lost", s.Lost())
	}
}

// TestRunRotation: a process past 1<<runBits calls moves on to a new run
// prefix, so its calls keep distinct IDs and can each be found.
func TestRunRotation(t *testing.T) {
	s, _ := openTemp(t, nil)
	now := time.Now()
	ids := []uint64{5, 1<<runBits + 5, 2<<runBits + 5, 1<<runBits - 1, 1 << runBits}
	for i, id := range ids {
		s.Observe(finished(id, "call"+strconv.Itoa(i), now))
	}
	s.Flush()
	want := []string{s.run + "-5", s.run + ".1-5", s.run + ".2-5", s.run + "-4294967295", s.run + ".1-0"}
	for i, id := range ids {
		if got := s.CallID(id); got != want[i] {
			t.Errorf("CallID(%d) = %q, want %q", id, got, want[i])
		}
		c, err := s.Get(t.Context(), want[i])
		if err != nil || c.Call != "call"+strconv.Itoa(i) {
			t.Errorf("Get(%s) = %+v, %v", want[i], c, err)
		}
	}
}

// TestTwoStoresOneDatabase: two processes on one database (two stdio
// servers, say) number their calls from 1 each, and keep them apart.
func TestTwoStoresOneDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "membrane.db")
	var stores []*Store
	for range 2 {
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	if stores[0].run == stores[1].run {
		t.Fatalf("both stores have the prefix %s", stores[0].run)
	}
	now := time.Now()
	for i, s := range stores {
		for id := uint64(1); id <= 3; id++ {
			s.Observe(finished(id, fmt.Sprintf("p%d", i), now))
		}
		s.Flush()
	}
	if n, err := stores[0].Count(t.Context(), Filter{}); err != nil || n != 6 {
		t.Fatalf("%d calls (%v), want 6", n, err)
	}
	for i, s := range stores {
		for id := uint64(1); id <= 3; id++ {
			c, err := stores[1-i].Get(t.Context(), s.CallID(id))
			if err != nil || c.Call != fmt.Sprintf("p%d", i) {
				t.Errorf("call %s: %+v %v", s.CallID(id), c, err)
			}
		}
	}
}

// TestMigrationToV5KeepsIDs opens a database of schema 4 holding calls
// whose IDs have the store's form and calls whose IDs have not, and finds
// each by its ID after the migration to integer keys; an ID that was
// never stored is not found, and new calls go beside the old ones.
func TestMigrationToV5KeepsIDs(t *testing.T) {
	ids := []string{"ABCDEFGH-1", "ABCDEFGH-12", "QRSTUVWX-4294967295", "QRSTUVWX-4294967296", "x-007", "weird", "a-b-3", "-5", "y-", "z-0"}
	var values []string
	for i, id := range ids {
		values = append(values, fmt.Sprintf("('%s', 's', 'c%d', 'tool', ?1 + %d, 1000, 'ok')", id, i, i))
	}
	s := openOld(t, 4, `INSERT INTO calls(id, session, call, kind, started_at, dur_us, outcome) VALUES`+strings.Join(values, ", "))
	for i, id := range ids {
		c, err := s.Get(t.Context(), id)
		if err != nil || c.Call != fmt.Sprintf("c%d", i) || c.ID != id {
			t.Errorf("Get(%q) after the migration: %+v, %v", id, c, err)
		}
	}
	var seq int64
	if err := s.db.QueryRow(`SELECT seq - (SELECT n FROM runs WHERE prefix = 'ABCDEFGH') * ? FROM calls WHERE id = 'ABCDEFGH-12'`, int64(1)<<runBits).Scan(&seq); err != nil || seq != 12 {
		t.Errorf("the key of ABCDEFGH-12 is its run's and 12 (got %d, %v)", seq, err)
	}
	for _, id := range []string{"ABCDEFGH-2", "ZZZZZZZZ-1", "x-7", "weird2", ""} {
		if _, err := s.Get(t.Context(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
	s.Observe(finished(1, "new", time.Now()))
	s.Flush()
	if c, err := s.Get(t.Context(), s.CallID(1)); err != nil || c.Call != "new" {
		t.Errorf("a new call beside the old: %+v %v", c, err)
	}
	if n, _ := s.Count(t.Context(), Filter{}); n != len(ids)+1 {
		t.Errorf("%d calls, want %d", n, len(ids)+1)
	}
}

// TestRetentionTakesEventsAndRuns: retention by age removes old calls'
// progress events and runs left without calls, and keeps the rest; a
// store whose run was removed puts it back with its next calls.
func TestRetentionTakesEventsAndRuns(t *testing.T) {
	s, _ := openTemp(t, &Options{MaxAge: time.Hour})
	old, now := time.Now().Add(-2*time.Hour), time.Now()
	s.Observe(calls.Event{Type: calls.EventCallProgress, Time: old, ID: 1, Progress: 1})
	s.Observe(finished(1, "old", old))
	s.Observe(calls.Event{Type: calls.EventCallProgress, Time: now, ID: 2, Progress: 1})
	s.Observe(finished(2, "new", now))
	s.Flush()
	if _, err := s.db.Exec(`INSERT INTO runs(prefix, opened_at) VALUES('OLDEMPTY', ?), ('OLDFULL', ?)`, old.UnixMicro(), old.UnixMicro()); err != nil {
		t.Fatal(err)
	}
	var full int64
	s.db.QueryRow(`SELECT n FROM runs WHERE prefix = 'OLDFULL'`).Scan(&full)
	if _, err := s.db.Exec(`INSERT INTO calls(seq, id, session, call, kind, started_at, dur_us, outcome) VALUES(?, 'OLDFULL-1', 's', 'kept', 'tool', ?, 0, 'ok')`, full<<runBits|1, now.UnixMicro()); err != nil {
		t.Fatal(err)
	}
	s.retain(t.Context())
	var events int
	s.db.QueryRow(`SELECT count(*) FROM call_events`).Scan(&events)
	if events != 1 {
		t.Errorf("%d progress events after retention, want the new call's 1", events)
	}
	var runs []string
	rows, _ := s.db.Query(`SELECT prefix FROM runs ORDER BY n`)
	for rows.Next() {
		var p string
		rows.Scan(&p)
		runs = append(runs, p)
	}
	rows.Close()
	if strings.Join(runs, " ") != s.run+" OLDFULL" {
		t.Errorf("runs after retention: %v, want ours and OLDFULL (which still has a call)", runs)
	}
	if c, err := s.Get(t.Context(), "OLDFULL-1"); err != nil || c.Call != "kept" {
		t.Errorf("OLDFULL-1: %+v %v", c, err)
	}

	if _, err := s.db.Exec(`DELETE FROM runs WHERE prefix = ?`, s.run); err != nil {
		t.Fatal(err)
	}
	s.Observe(finished(3, "after", now))
	s.Flush()
	for _, id := range []uint64{2, 3} {
		if c, err := s.Get(t.Context(), s.CallID(id)); err != nil {
			t.Errorf("call %d after its run was put back: %+v %v", id, c, err)
		}
	}
}

// TestModelRatesAndKills reads the Lens's model and kill summaries from
// records in the ledger's form and from rows written before it, in the Go
// structs' form.
func TestModelRatesAndKills(t *testing.T) {
	s, _ := openTemp(t, nil)
	now := time.Now()
	for i, m := range []*calls.ModelInfo{{Model: "m:1", TokensOut: 10, Generation: time.Second}, {Model: "m:1", TokensOut: 20, Generation: 2 * time.Second}, {Model: "m:2", TokensOut: 1}} {
		e := finished(uint64(i+1), "chat", now)
		e.Kind, e.Info = calls.KindModel, &calls.Info{Model: m}
		s.Observe(e)
	}
	for i, killed := range []string{"timeout", ""} {
		e := finished(uint64(10+i), "sh", now)
		e.Info = &calls.Info{Run: &calls.RunInfo{ExitCode: 137, Killed: killed}}
		s.Observe(e)
	}
	s.Flush()
	if _, err := s.db.Exec(`INSERT INTO calls(seq, id, session, call, kind, started_at, dur_us, outcome, model, run) VALUES
		(1, 'legacy-1', 's', 'chat', 'model', ?1, 0, 'ok', '{"Model":"m:1","TokensOut":5,"Generation":500000000}', NULL),
		(2, 'legacy-2', 's', 'sh', 'tool', ?1, 0, 'tool_error', NULL, '{"ExitCode":137,"Killed":"memory"}')`, now.UnixMicro()); err != nil {
		t.Fatal(err)
	}
	rates, err := s.ModelRates(t.Context(), Filter{})
	if err != nil || len(rates) != 2 {
		t.Fatalf("ModelRates: %+v %v", rates, err)
	}
	if r := rates[0]; r.Model != "m:1" || r.Calls != 3 || r.TokensOut != 35 || r.Generation != 3500*time.Millisecond {
		t.Errorf("m:1: %+v, want 3 calls, 35 tokens in 3.5s", r)
	}
	if r := rates[1]; r.Model != "m:2" || r.Calls != 1 || r.TokensOut != 1 || r.Generation != 0 {
		t.Errorf("m:2: %+v", r)
	}
	kills, err := s.Kills(t.Context(), Filter{})
	if err != nil || len(kills) != 2 || kills["timeout"] != 1 || kills["memory"] != 1 {
		t.Errorf("Kills: %v %v, want timeout 1 and memory 1 (the run not killed counts nowhere)", kills, err)
	}
}

// FuzzSplitID: an ID splitID accepts is its prefix, "-" and its number
// written back, the number in range; every ID the store gives is accepted
// with its number.
func FuzzSplitID(f *testing.F) {
	for _, seed := range []string{"ABCDEFGH-1", "ABCDEFGH.1-5", "x-007", "-5", "a-", "a-b-3", "a-+5", "a-4294967296", "a-4294967295", "a--1", "é-9"} {
		f.Add(seed, uint64(len(seed)))
	}
	s := &Store{run: "ABCDEFGH"}
	f.Fuzz(func(t *testing.T, id string, n uint64) {
		if prefix, num, ok := splitID(id); ok {
			if num < 0 || num >= 1<<runBits || prefix == "" || prefix+"-"+strconv.FormatInt(num, 10) != id {
				t.Fatalf("splitID(%q) = %q, %d", id, prefix, num)
			}
		}
		own := s.CallID(n)
		prefix, num, ok := splitID(own)
		if !ok || prefix != s.prefix(n>>runBits) || uint64(num) != n&(1<<runBits-1) {
			t.Fatalf("the store's own ID %q (of %d) split into %q, %d, %v", own, n, prefix, num, ok)
		}
	})
}
