package calls_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

func newCall(name string, h calls.HandlerFunc) calls.Call {
	return calls.Call{
		Name:        name,
		Description: "test " + name,
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Kind:        calls.KindTool,
		Handler:     h,
	}
}

func ok(text string) calls.HandlerFunc {
	return func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text(text), nil }
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := newCall("good_name-1", ok(""))
	for name, mut := range map[string]func(c *calls.Call){
		"empty name":      func(c *calls.Call) { c.Name = "" },
		"dot in name":     func(c *calls.Call) { c.Name = "a.b" },
		"space in name":   func(c *calls.Call) { c.Name = "a b" },
		"long name":       func(c *calls.Call) { c.Name = strings.Repeat("a", 65) },
		"unicode name":    func(c *calls.Call) { c.Name = "é" },
		"no handler":      func(c *calls.Call) { c.Handler = nil },
		"no kind":         func(c *calls.Call) { c.Kind = 0 },
		"array schema":    func(c *calls.Call) { c.InputSchema = json.RawMessage(`{"type":"array"}`) },
		"no schema":       func(c *calls.Call) { c.InputSchema = nil },
		"bad JSON schema": func(c *calls.Call) { c.InputSchema = json.RawMessage(`{"type":`) },
		"array output":    func(c *calls.Call) { c.OutputSchema = json.RawMessage(`{"type":"array"}`) },
		"bad output JSON": func(c *calls.Call) { c.OutputSchema = json.RawMessage(`{`) },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); !errors.Is(err, calls.ErrInvalidCall) {
			t.Errorf("%s: Validate = %v, want ErrInvalidCall", name, err)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("good call: %v", err)
	}
	withOut := good
	withOut.OutputSchema = json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)
	if err := withOut.Validate(); err != nil {
		t.Errorf("an object output schema: %v", err)
	}
	long := good
	long.Name = strings.Repeat("a", 64)
	if err := long.Validate(); err != nil {
		t.Errorf("64-character name: %v", err)
	}
}

func TestRouterAddReplaceRemove(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	if err := r.Add(newCall("a", ok("1"))); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(newCall("a", ok("2"))); err == nil {
		t.Error("Add of a taken name succeeded")
	}
	if err := r.Replace(newCall("a", ok("2"))); err != nil {
		t.Fatal(err)
	}
	res, err := r.Call(t.Context(), "a", nil)
	if err != nil || res.TextOf() != "2" {
		t.Errorf("after Replace: %v %v", res.TextOf(), err)
	}
	r.Remove("a", "never-there")
	if _, err := r.Call(t.Context(), "a", nil); !errors.Is(err, calls.ErrUnknownCall) {
		t.Errorf("removed call: err = %v, want ErrUnknownCall", err)
	}
	if r.Len() != 0 {
		t.Errorf("Len = %d", r.Len())
	}
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	if err := r.Add(newCall("pre", ok(""))); err != nil {
		t.Fatal(err)
	}
	var got []string
	cancel := r.Subscribe(func(ch calls.Change) {
		for _, c := range ch.Added {
			got = append(got, "+"+c.Name)
		}
		for _, n := range ch.Removed {
			got = append(got, "-"+n)
		}
	})
	r.Add(newCall("b", ok("")))
	r.Remove("pre", "nope")
	r.Remove("nope") // no change, no notification
	r.Sync("g", []calls.Call{newCall("g1", ok("")), newCall("g2", ok(""))})
	r.Sync("g", []calls.Call{newCall("g2", ok("other handler, same definition"))})
	cancel()
	r.Add(newCall("after", ok("")))
	if want := "+pre,+b,-pre,+g1,+g2,-g1"; strings.Join(got, ",") != want {
		t.Errorf("changes = %s, want %s", strings.Join(got, ","), want)
	}
}

func TestSyncGroups(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	r.Add(newCall("mine", ok("")))
	ch, err := r.Sync("g", []calls.Call{newCall("mine", ok("")), newCall("x", ok("")), newCall("x", ok("")), newCall("bad name", ok(""))})
	if err == nil || !strings.Contains(err.Error(), "owned by group") || !strings.Contains(err.Error(), "listed twice") || !strings.Contains(err.Error(), "bad name") {
		t.Errorf("Sync err = %v", err)
	}
	if len(ch.Added) != 1 || ch.Added[0].Name != "x" || ch.Added[0].Group != "g" {
		t.Errorf("Sync change = %+v", ch)
	}
	if c, _ := r.Lookup("mine"); c.Group != "" {
		t.Errorf("another group's call was taken over: %+v", c)
	}
}

// TestMiddlewareOrder checks the documented order: logging, recovery, the
// concurrency limit, the deadline, then the router's own middleware (first
// outermost), then the handler.
func TestMiddlewareOrder(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		trace []string
	)
	note := func(s string) {
		mu.Lock()
		trace = append(trace, s)
		mu.Unlock()
	}
	mw := func(name string) calls.Middleware {
		return func(next calls.Handler) calls.Handler {
			return calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
				_, hasDeadline := ctx.Deadline()
				note(fmt.Sprintf("%s deadline=%v", name, hasDeadline))
				res, err := next.Handle(ctx, req)
				note(name + " out")
				return res, err
			})
		}
	}
	r := calls.NewRouter(&calls.RouterOptions{Middleware: []calls.Middleware{mw("first"), mw("second")}})
	r.Add(newCall("c", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		note("handler")
		return calls.Text("ok"), nil
	}))
	if _, err := r.Call(t.Context(), "c", nil); err != nil {
		t.Fatal(err)
	}
	want := "first deadline=true,second deadline=true,handler,second out,first out"
	if got := strings.Join(trace, ","); got != want {
		t.Errorf("order = %s, want %s", got, want)
	}

	// A panic in user middleware is still recovered: recovery is outside.
	r2 := calls.NewRouter(&calls.RouterOptions{Middleware: []calls.Middleware{func(calls.Handler) calls.Handler {
		return calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { panic("in middleware") })
	}}})
	r2.Add(newCall("c", ok("")))
	res, err := r2.Call(t.Context(), "c", nil)
	if err != nil || !res.IsError || !strings.Contains(res.TextOf(), "in middleware") {
		t.Errorf("panicking middleware: %v %v", res, err)
	}
}

func TestBusy(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(&calls.RouterOptions{QueueLength: -1})
	release := make(chan struct{})
	var running atomic.Int32
	c := newCall("slow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		running.Add(1)
		<-release
		return calls.Text("done"), nil
	})
	c.Concurrency = 2
	r.Add(c)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { r.Call(context.Background(), "slow", nil) })
	}
	for running.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	res, err := r.Call(t.Context(), "slow", nil)
	if err != nil || !res.IsError || !strings.Contains(res.TextOf(), "busy") {
		t.Errorf("third call: %v %v, want a busy tool error", res.TextOf(), err)
	}
	if res.Reason != calls.ReasonBusy {
		t.Errorf("busy result has reason %q, want %q", res.Reason, calls.ReasonBusy)
	}
	close(release)
	wg.Wait()
	if res, _ := r.Call(t.Context(), "slow", nil); res.IsError {
		t.Errorf("after the others finished: %v", res.TextOf())
	}

	// Negative concurrency means no limit.
	unlimited := newCall("free", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		<-ctx.Done()
		return calls.Text("x"), nil
	})
	unlimited.Concurrency = -1
	r.Add(unlimited)
	ctx, cancel := context.WithCancel(t.Context())
	var busy atomic.Int32
	var wg2 sync.WaitGroup
	for range 3 * calls.DefaultConcurrency {
		wg2.Go(func() {
			if res, _ := r.Call(ctx, "free", nil); res.IsError {
				busy.Add(1)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg2.Wait()
	if busy.Load() != 0 {
		t.Errorf("%d calls were busy with no limit", busy.Load())
	}
}

func TestPanicBecomesToolError(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	r := calls.NewRouter(&calls.RouterOptions{Logger: log})
	r.Add(newCall("boom", func(context.Context, *calls.Request) (*calls.Result, error) {
		var list []string
		return nil, errors.New(list[len(list)]) // index out of range
	}))
	res, err := r.Call(t.Context(), "boom", nil)
	if err != nil || !res.IsError || !strings.Contains(res.TextOf(), "still running") || res.Reason != calls.ReasonPanic {
		t.Errorf("panic: %v %v (reason %q)", res.TextOf(), err, res.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "call panicked") || !strings.Contains(logs.String(), "router_test.go") {
		t.Errorf("panic not logged with a stack: %s", logs.String())
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(&calls.RouterOptions{DefaultTimeout: 20 * time.Millisecond})
	r.Add(newCall("hang", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	res, err := r.Call(t.Context(), "hang", nil)
	if err != nil || !res.IsError || !strings.Contains(res.TextOf(), "timeout") || res.Reason != calls.ReasonTimeout {
		t.Errorf("deadline: %v %v (reason %q), want a timeout tool error", res.TextOf(), err, res.Reason)
	}
	// A cancelled caller is not a timeout: the error stays an error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Call(ctx, "hang", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	// A caller whose own deadline passes first is not told that the call
	// timed out after the call's (longer) deadline.
	slow := newCall("slow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	slow.Timeout = time.Hour
	r.Add(slow)
	ctx, cancel = context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	if res, err := r.Call(ctx, "slow", nil); !errors.Is(err, context.DeadlineExceeded) || (res != nil && strings.Contains(res.TextOf(), "1h0m0s")) {
		t.Errorf("caller's deadline: %v %v, want the caller's DeadlineExceeded", res, err)
	}
	// A per-call timeout overrides the default.
	c := newCall("short", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		dl, _ := ctx.Deadline()
		return calls.Text(time.Until(dl).Round(time.Hour).String()), nil
	})
	c.Timeout = 3 * time.Hour
	r.Add(c)
	if res, _ := r.Call(t.Context(), "short", nil); res.TextOf() != "3h0m0s" {
		t.Errorf("per-call timeout: %s", res.TextOf())
	}
}

func TestNilResultIsError(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	r.Add(newCall("nil", func(context.Context, *calls.Request) (*calls.Result, error) { return nil, nil }))
	if _, err := r.Call(t.Context(), "nil", nil); err == nil {
		t.Error("a handler returning neither result nor error gave no error")
	}
}

func TestRequestDefaults(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	r.Add(newCall("inspect", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		if req.Session == nil || req.Progress == nil || req.Logger == nil || req.Call == nil || req.Call.Name != "inspect" {
			return calls.Errorf("missing defaults: %+v", req), nil
		}
		req.Progress.Report(ctx, 1, 2, "half")
		req.Logger.Info("discarded")
		return calls.Text("ok"), nil
	}))
	if res, err := r.Call(t.Context(), "inspect", nil); err != nil || res.IsError {
		t.Errorf("%v %v", res.TextOf(), err)
	}
}

// TestRouterConcurrency adds, replaces, removes, syncs, lists and calls
// from many goroutines at once; run with -race.
func TestRouterConcurrency(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(nil)
	var notes atomic.Int64
	cancel := r.Subscribe(func(ch calls.Change) { notes.Add(int64(len(ch.Added) + len(ch.Removed))) })
	defer cancel()
	// The writers do a fixed amount of work and the readers run until they
	// are done: a time window would let a loaded machine schedule the
	// readers alone (once: 171 calls, no write at all).
	ctx, stop := context.WithCancel(t.Context())
	var writers, readers sync.WaitGroup
	var callsMade, okCalls atomic.Int64
	for w := range 4 {
		writers.Go(func() {
			for i := range 2000 {
				name := fmt.Sprintf("c%d", i%5)
				switch i % 4 {
				case 0:
					r.Add(newCall(name, ok(name)))
				case 1:
					r.Replace(newCall(name, ok(name)))
				case 2:
					r.Remove(name)
				case 3:
					r.Sync(fmt.Sprintf("g%d", w), []calls.Call{newCall(fmt.Sprintf("g%d_%d", w, i%3), ok(""))})
				}
			}
		})
	}
	for range 4 {
		readers.Go(func() {
			for i := 0; i < 100 || ctx.Err() == nil; i++ {
				r.List()
				name := fmt.Sprintf("c%d", i%5)
				callsMade.Add(1)
				res, err := r.Call(ctx, name, nil)
				switch {
				case errors.Is(err, calls.ErrUnknownCall), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
				case err != nil:
					t.Errorf("call %s: %v", name, err)
				case !res.IsError && res.TextOf() != name:
					t.Errorf("call %s answered %q", name, res.TextOf())
				default:
					okCalls.Add(1)
				}
			}
		})
	}
	writers.Wait()
	stop()
	readers.Wait()
	if callsMade.Load() == 0 || notes.Load() == 0 {
		t.Errorf("nothing happened: %d calls, %d notifications", callsMade.Load(), notes.Load())
	}
	// The final state agrees with a fresh subscriber's view.
	var seen []string
	r.Subscribe(func(ch calls.Change) {
		for _, c := range ch.Added {
			seen = append(seen, c.Name)
		}
	})()
	var listed []string
	for _, c := range r.List() {
		listed = append(listed, c.Name)
	}
	if strings.Join(seen, ",") != strings.Join(listed, ",") {
		t.Errorf("subscriber saw %v, List has %v", seen, listed)
	}
}

func TestSession(t *testing.T) {
	t.Parallel()
	s := calls.NewSession("")
	if !strings.HasPrefix(s.ID(), "s-") {
		t.Errorf("ID = %q", s.ID())
	}
	var order []int
	s.OnClose(func() { order = append(order, 1) })
	s.OnClose(func() { order = append(order, 2) })
	s.SetWorkspace("/tmp/x")
	if s.Workspace() != "/tmp/x" {
		t.Error("workspace not kept")
	}
	s.Close()
	s.Close()
	if fmt.Sprint(order) != "[2 1]" || !s.Closed() {
		t.Errorf("close order %v, closed %v", order, s.Closed())
	}
	late := false
	s.OnClose(func() { late = true })
	if !late {
		t.Error("OnClose on a closed session did not run at once")
	}
}

func TestTextAndErrorf(t *testing.T) {
	t.Parallel()
	if r := calls.Text("a\xffb"); r.TextOf() != "a\uFFFDb" || r.IsError {
		t.Errorf("Text = %+v", r)
	}
	if r := calls.Errorf("bad %d", 7); r.TextOf() != "bad 7" || !r.IsError {
		t.Errorf("Errorf = %+v", r)
	}
	var nilRes *calls.Result
	if nilRes.TextOf() != "" {
		t.Error("nil TextOf")
	}
}

func TestDecodeArgs(t *testing.T) {
	t.Parallel()
	type args struct {
		Cmd string `json:"cmd"`
	}
	for _, tc := range []struct {
		raw  string
		want string
		err  string
	}{
		{``, "", ""},
		{`null`, "", ""},
		{`{}`, "", ""},
		{`{"cmd":"ls"}`, "ls", ""},
		{`{"cmd":"ls","x":1}`, "", "unknown field"},
		{`{"cmd":1}`, "", "invalid arguments"},
		{`{"cmd":"a"} {"cmd":"b"}`, "", "trailing data"},
		{`[1]`, "", "invalid arguments"},
	} {
		var a args
		err := calls.DecodeArgs(json.RawMessage(tc.raw), &a)
		if tc.err == "" && (err != nil || a.Cmd != tc.want) {
			t.Errorf("%s: %+v %v", tc.raw, a, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: err = %v, want %q", tc.raw, err, tc.err)
		}
	}
}

func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"cmd":"ls","timeout_s":3}`, `{"cmd":`, `[]`, `null`, `{"a":{"b":[1,2,{"c":null}]}}`, "{\"cmd\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var strict struct {
			Cmd     string  `json:"cmd"`
			Timeout float64 `json:"timeout_s"`
		}
		err := calls.DecodeArgs(data, &strict)
		if err != nil && !strings.HasPrefix(err.Error(), "invalid arguments") {
			t.Errorf("error without the invalid-arguments prefix: %v", err)
		}
		var loose map[string]any
		_ = calls.DecodeArgs(data, &loose)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestBusyBySessionShare: a session that holds its share of a call's slots
// (all but a quarter) is told so when it is turned away, not that the call
// is running at its limit: slots are free, for other sessions, and another
// session's call beside it runs (the control).
func TestBusyBySessionShare(t *testing.T) {
	t.Parallel()
	r := calls.NewRouter(&calls.RouterOptions{QueueLength: -1})
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	c := newCall("slow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		started <- struct{}{}
		<-release
		return calls.Text("done"), nil
	})
	c.Concurrency = 2 // a session may hold 1
	r.Add(c)
	mine := r.OpenSession("s-mine", "test")
	var wg sync.WaitGroup
	wg.Go(func() { r.Call(context.Background(), "slow", &calls.Request{Session: mine}) })
	<-started
	res, err := r.Call(t.Context(), "slow", &calls.Request{Session: mine})
	if err != nil || !res.IsError || res.Reason != calls.ReasonBusy {
		t.Fatalf("second call of the session: %v %v, want busy", res.TextOf(), err)
	}
	if text := res.TextOf(); !strings.Contains(text, "this session already runs 1 call of slow") || !strings.Contains(text, "of its 2 slots") {
		t.Errorf("busy text %q does not say the session holds its share", text)
	}
	other := r.OpenSession("s-other", "test")
	wg.Go(func() {
		if res, err := r.Call(context.Background(), "slow", &calls.Request{Session: other}); err != nil || res.IsError {
			t.Errorf("another session's call: %v %v", res.TextOf(), err)
		}
	})
	<-started
	close(release)
	wg.Wait()
}
