package calls_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []calls.Event
}

func (r *recorder) Observe(e calls.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []calls.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]calls.Event(nil), r.events...)
}

func (r *recorder) finished() map[string]calls.Event {
	out := map[string]calls.Event{}
	for _, e := range r.all() {
		if e.Type == calls.EventCallFinished {
			out[e.Call] = e
		}
	}
	return out
}

// TestEventOutcomes runs one call of each outcome and checks the finished
// event, the started event before it, and the log record of each.
func TestEventOutcomes(t *testing.T) {
	t.Parallel()
	var logs mcptest.SyncBuffer
	rec := &recorder{}
	r := calls.NewRouter(&calls.RouterOptions{
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		Observers:      []calls.Observer{rec},
		DefaultTimeout: time.Hour,
		QueueLength:    -1, // past the limit is busy at once
		Redact:         func(s string) string { return strings.ReplaceAll(s, "hunter2", "[redacted]") },
	})
	release := make(chan struct{})
	started := make(chan struct{})
	add := func(c calls.Call) {
		t.Helper()
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	add(newCall("fine", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		req.Progress.Report(ctx, 1, 2, "half way")
		return calls.Text("12345"), nil
	}))
	add(newCall("fails", func(context.Context, *calls.Request) (*calls.Result, error) {
		return calls.Errorf("exit code 3: password hunter2 rejected\nmore detail"), nil
	}))
	add(newCall("broken", func(context.Context, *calls.Request) (*calls.Result, error) {
		return nil, errors.New("backend gone")
	}))
	add(newCall("boom", func(context.Context, *calls.Request) (*calls.Result, error) { panic("kaboom") }))
	short := newCall("slow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	short.Timeout = time.Millisecond
	add(short)
	add(newCall("waits", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		close(started)
		<-ctx.Done()
		return calls.Errorf("cancelled; the whole process tree was killed"), nil
	}))
	one := newCall("single", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		<-release
		return calls.Text("x"), nil
	})
	one.Concurrency = 1
	add(one)

	sess := r.OpenSession("s-test", "test-client")
	call := func(ctx context.Context, name string) {
		_, _ = r.Call(ctx, name, &calls.Request{Session: sess, Arguments: []byte(`{"a":1}`)})
	}
	for _, n := range []string{"fine", "fails", "broken", "boom", "slow"} {
		call(t.Context(), n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { call(ctx, "waits"); close(done) }()
	<-started
	cancel()
	<-done
	var wg sync.WaitGroup
	wg.Go(func() { call(t.Context(), "single") })
	for r.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	call(t.Context(), "single") // busy
	close(release)
	wg.Wait()
	sess.Close()
	r.Close()

	want := map[string]struct {
		outcome calls.Outcome
		reason  string
	}{
		"fine":   {calls.OutcomeOK, ""},
		"fails":  {calls.OutcomeToolError, "exit code 3: password [redacted] rejected"},
		"broken": {calls.OutcomeError, "backend gone"},
		"boom":   {calls.OutcomeError, "internal error: boom failed unexpectedly (kaboom); the server is still running"},
		"slow":   {calls.OutcomeTimeout, "timeout: slow did not finish within 1ms"},
		"waits":  {calls.OutcomeCancelled, "cancelled; the whole process tree was killed"},
	}
	fin := rec.finished()
	for name, w := range want {
		e, ok := fin[name]
		if !ok {
			t.Errorf("%s: no finished event", name)
			continue
		}
		if e.Outcome != w.outcome || e.Reason != w.reason {
			t.Errorf("%s: outcome %v reason %q, want %v %q", name, e.Outcome, e.Reason, w.outcome, w.reason)
		}
		if e.Session != "s-test" || e.Client != "test-client" || e.Kind != calls.KindTool || string(e.Arguments) != `{"a":1}` || e.ID == 0 {
			t.Errorf("%s: event misses the call's identity: %+v", name, e)
		}
	}
	if e := fin["fine"]; e.ResultBytes != 5 || e.ArgsDigest() != "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862" {
		t.Errorf("fine: result bytes %d, digest %s", e.ResultBytes, e.ArgsDigest())
	}
	var busy, singleOK int
	for _, e := range rec.all() {
		if e.Type == calls.EventCallFinished && e.Call == "single" {
			switch e.Outcome {
			case calls.OutcomeBusy:
				busy++
			case calls.OutcomeOK:
				singleOK++
			}
		}
	}
	if busy != 1 || singleOK != 1 {
		t.Errorf("single: %d busy and %d ok, want 1 and 1", busy, singleOK)
	}

	// Order and pairing: each call's started event comes first, with the
	// same ID; progress sits between them; sessions open and close.
	seen := map[uint64]calls.EventType{}
	var types []calls.EventType
	for _, e := range rec.all() {
		types = append(types, e.Type)
		switch e.Type {
		case calls.EventCallStarted:
			seen[e.ID] = e.Type
		case calls.EventCallProgress:
			if seen[e.ID] != calls.EventCallStarted || e.Message != "half way" || e.Total != 2 {
				t.Errorf("progress event out of place: %+v", e)
			}
		case calls.EventCallFinished:
			if seen[e.ID] != calls.EventCallStarted {
				t.Errorf("%s finished without starting", e.Call)
			}
			seen[e.ID] = e.Type
		}
	}
	for types[0] == calls.EventToolsChanged { // the Adds above
		types = types[1:]
	}
	if types[0] != calls.EventSessionOpened || types[len(types)-1] != calls.EventSessionClosed {
		t.Errorf("events start with %v and end with %v, want the session opening and closing", types[0], types[len(types)-1])
	}
	if r.SessionsOpen() != 0 {
		t.Errorf("sessions open after close: %d", r.SessionsOpen())
	}

	// The log: one record per call, the reason of each failure at info.
	out := logs.String()
	for _, line := range []string{
		`level=INFO msg=call call=fails kind=tool session=s-test dur=`,
		`outcome=tool_error reason="exit code 3: password [redacted] rejected"`,
		`outcome=cancelled reason="cancelled; the whole process tree was killed"`,
		`level=WARN msg=call call=broken`,
		`outcome=busy reason="busy: single is already running 1 calls at once`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("log lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "more detail") {
		t.Errorf("log holds the secret or the second line of the error:\n%s", out)
	}
}

func TestToolsChangedEvent(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	r := calls.NewRouter(nil)
	stop := r.Observe(rec)
	r.Add(newCall("a", ok("")))
	r.Sync("g", []calls.Call{newCall("b", ok("")), newCall("c", ok(""))})
	r.Remove("a")
	r.Remove("never") // no change, no event
	stop()
	var got []string
	for _, e := range rec.all() {
		if e.Type != calls.EventToolsChanged {
			t.Errorf("unexpected %v", e.Type)
			continue
		}
		var names []string
		for _, c := range e.Change.Added {
			names = append(names, "+"+c.Name)
		}
		for _, n := range e.Change.Removed {
			names = append(names, "-"+n)
		}
		got = append(got, strings.Join(names, ","))
	}
	if strings.Join(got, " ") != "+a +b,+c -a" {
		t.Errorf("changes %q", got)
	}
	// After stop, nothing more arrives.
	r.Add(newCall("d", ok("")))
	if n := len(rec.all()); n != 3 {
		t.Errorf("%d events after stop, want 3", n)
	}
}

// TestBlockedObserverNeverDelaysACall: an observer stuck forever in
// Observe costs the calls nothing; it loses events, and they are counted.
func TestBlockedObserverNeverDelaysACall(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(&calls.RouterOptions{ObserverBuffer: 4})
	r.Add(newCall("fast", ok("x")))
	unblock := make(chan struct{})
	stop := r.Observe(calls.ObserverFunc(func(calls.Event) { <-unblock }))
	good := &recorder{}
	stopGood := r.Observe(good)
	const n = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			if res, err := r.Call(context.Background(), "fast", nil); err != nil || res.IsError {
				t.Errorf("call: %v %v", res.TextOf(), err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang detector, not a timing assertion
		t.Fatal("calls are stuck behind a blocked observer")
	}
	st := r.ObserverStats()
	if st[0].Dropped < 2*n-5 {
		t.Errorf("blocked observer dropped %d of %d events, want at least %d", st[0].Dropped, 2*n, 2*n-5)
	}
	close(unblock)
	stop()
	stopGood()
	if st := r.ObserverStats(); len(st) != 0 {
		t.Errorf("stats after stop: %+v", st)
	}
	// Every event is accounted for: delivered or counted as dropped.
	if got := uint64(len(good.all())) + st[1].Dropped; got != 2*n {
		t.Errorf("the observer beside it got %d events and dropped %d, want %d in all", len(good.all()), st[1].Dropped, 2*n)
	}
}

// TestPanickingObserver: an observer that panics on every event never
// fails a call, and the observer beside it gets everything.
func TestPanickingObserver(t *testing.T) {
	t.Parallel()
	var logs mcptest.SyncBuffer
	r := calls.NewRouter(&calls.RouterOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	r.Add(newCall("fast", ok("x")))
	r.Observe(calls.ObserverFunc(func(calls.Event) { panic("observer bug") }))
	good := &recorder{}
	r.Observe(good)
	for range 10 {
		if res, err := r.Call(t.Context(), "fast", nil); err != nil || res.IsError || res.TextOf() != "x" {
			t.Fatalf("call beside a panicking observer: %v %v", res.TextOf(), err)
		}
	}
	for r.ObserverStats()[0].Panics+r.ObserverStats()[0].Dropped < 20 {
		time.Sleep(time.Millisecond)
	}
	if st := r.ObserverStats()[0]; st.Panics != 20 || st.Delivered != 0 {
		t.Errorf("panicking observer stats %+v, want 20 panics", st)
	}
	r.Close()
	if got := len(good.all()); got != 20 {
		t.Errorf("healthy observer got %d events, want 20", got)
	}
	if !strings.Contains(logs.String(), "observer panicked") {
		t.Errorf("panic not logged:\n%s", logs.String())
	}
	if r.InFlight() != 0 {
		t.Errorf("in flight after all calls returned: %d", r.InFlight())
	}
}

func TestRoundDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Duration]string{
		53*time.Millisecond + 412*time.Microsecond: "53ms",
		412*time.Microsecond + 7:                   "412µs",
		1234 * time.Millisecond:                    "1.23s",
	} {
		if got := calls.RoundDuration(in).String(); got != want {
			t.Errorf("RoundDuration(%v) = %s, want %s", in, got, want)
		}
	}
}

// finishedOnly is a recorder that wants finished calls only.
type finishedOnly struct{ recorder }

func (*finishedOnly) Wants(t calls.EventType) bool { return t == calls.EventCallFinished }

// TestEventFilter: an observer that says it wants only finished calls gets
// only those, while an observer beside it that says nothing (the control)
// gets every event; progress still reaches the caller when no observer
// wants it.
func TestEventFilter(t *testing.T) {
	t.Parallel()
	filtered, all := &finishedOnly{}, &recorder{}
	r := calls.NewRouter(&calls.RouterOptions{Observers: []calls.Observer{filtered}})
	if err := r.Add(calls.Call{Name: "p", Description: "p", Kind: calls.KindTool, InputSchema: []byte(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			req.Progress.Report(ctx, 1, 2, "half")
			return calls.Text("ok"), nil
		})}); err != nil {
		t.Fatal(err)
	}
	var reported []string
	progress := calls.ProgressFunc(func(_ context.Context, p, total float64, msg string) { reported = append(reported, msg) })
	if _, err := r.Call(t.Context(), "p", &calls.Request{Progress: progress}); err != nil {
		t.Fatal(err)
	}
	stop := r.Observe(all)
	if _, err := r.Call(t.Context(), "p", &calls.Request{Progress: progress}); err != nil {
		t.Fatal(err)
	}
	stop()
	r.Close()
	if len(reported) != 2 {
		t.Errorf("the caller got progress %v, want it from both calls", reported)
	}
	for _, e := range filtered.all() {
		if e.Type != calls.EventCallFinished {
			t.Errorf("the filtered observer got %v", e.Type)
		}
	}
	if n := len(filtered.all()); n != 2 {
		t.Errorf("the filtered observer got %d events, want the 2 finished calls", n)
	}
	var types []string
	for _, e := range all.all() {
		types = append(types, e.Type.String())
	}
	if strings.Join(types, " ") != "call_started call_progress call_finished" {
		t.Errorf("the unfiltered observer got %v", types)
	}
}
