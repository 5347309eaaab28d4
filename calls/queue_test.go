package calls_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
)

// gated is a call whose invocations each wait for their own release. Its
// arguments are {"id": "..."}; started receives the id when one begins.
type gated struct {
	started chan string
	mu      sync.Mutex
	release map[string]chan struct{}
	ran     map[string]bool
}

func newGated() *gated {
	return &gated{started: make(chan string, 100), release: map[string]chan struct{}{}, ran: map[string]bool{}}
}

func (g *gated) ch(id string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.release[id]
	if !ok {
		c = make(chan struct{})
		g.release[id] = c
	}
	return c
}

func (g *gated) handle(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	var in struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(req.Arguments, &in); err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.ran[in.ID] = true
	g.mu.Unlock()
	g.started <- in.ID
	select {
	case <-g.ch(in.ID):
		return calls.Text(in.ID), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gated) didRun(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ran[id]
}

type outcome struct {
	id  string
	res *calls.Result
	err error
}

// queueRig is a router with one gated call, "slow", and helpers to start
// invocations from given sessions.
type queueRig struct {
	t    *testing.T
	r    *calls.Router
	g    *gated
	done chan outcome
}

func newQueueRig(t *testing.T, concurrency int, opts calls.RouterOptions) *queueRig {
	rig := &queueRig{t: t, r: calls.NewRouter(&opts), g: newGated(), done: make(chan outcome, 100)}
	c := newCall("slow", rig.g.handle)
	c.Concurrency = concurrency
	if err := rig.r.Add(c); err != nil {
		t.Fatal(err)
	}
	return rig
}

// start invokes slow as id from s, and returns a channel that receives
// each progress message the invocation reports.
func (rig *queueRig) start(ctx context.Context, s *calls.Session, id string) <-chan string {
	progress := make(chan string, 100)
	go func() {
		res, err := rig.r.Call(ctx, "slow", &calls.Request{
			Session:   s,
			Arguments: json.RawMessage(fmt.Sprintf(`{"id":%q}`, id)),
			Progress: calls.ProgressFunc(func(_ context.Context, _, _ float64, msg string) {
				select {
				case progress <- msg:
				default:
				}
			}),
		})
		rig.done <- outcome{id, res, err}
	}()
	return progress
}

// startRunning starts id and waits until its handler runs.
func (rig *queueRig) startRunning(s *calls.Session, id string) {
	rig.t.Helper()
	rig.start(context.Background(), s, id)
	select {
	case got := <-rig.g.started:
		if got != id {
			rig.t.Fatalf("started %s, want %s", got, id)
		}
	case o := <-rig.done:
		rig.t.Fatalf("%s ended (%v %v) while %s should start", o.id, o.res.TextOf(), o.err, id)
	}
}

// startQueued starts id and waits until it reports its place in line.
func (rig *queueRig) startQueued(ctx context.Context, s *calls.Session, id string) {
	rig.t.Helper()
	select {
	case msg := <-rig.start(ctx, s, id):
		if !strings.HasPrefix(msg, "queued:") {
			rig.t.Fatalf("%s reported %q, want a queue position", id, msg)
		}
	case o := <-rig.done:
		rig.t.Fatalf("%s ended (%v %v) while %s should be queued", o.id, o.res.TextOf(), o.err, id)
	}
}

// finish releases id and waits for its result.
func (rig *queueRig) finish(id string) {
	rig.t.Helper()
	close(rig.g.ch(id))
	o := <-rig.done
	if o.id != id || o.err != nil || o.res.IsError {
		rig.t.Fatalf("finished %s: %v %v, want %s to succeed", o.id, o.res.TextOf(), o.err, id)
	}
}

// TestQueueOrderAndFairness: a freed slot goes to the waiting sessions in
// turn, each session's calls in the order they came.
func TestQueueOrderAndFairness(t *testing.T) {
	t.Parallel()
	rig := newQueueRig(t, 1, calls.RouterOptions{QueueLength: 8})
	a, b, c := calls.NewSession("a"), calls.NewSession("b"), calls.NewSession("c")
	rig.startRunning(a, "a1")
	for _, q := range []struct {
		s  *calls.Session
		id string
	}{{a, "a2"}, {a, "a3"}, {a, "a4"}, {b, "b1"}, {b, "b2"}, {c, "c1"}} {
		rig.startQueued(context.Background(), q.s, q.id)
	}
	running := "a1"
	for _, want := range []string{"a2", "b1", "c1", "a3", "b2", "a4"} {
		rig.finish(running)
		if got := <-rig.g.started; got != want {
			t.Fatalf("after %s, %s ran; want %s", running, got, want)
		}
		running = want
	}
	rig.finish(running)
}

// TestQueueSessionShare is the starvation case: one session starts as many
// long calls as there are slots and keeps them; another session's call
// still runs at once, and the first session's extra call waits for its own.
func TestQueueSessionShare(t *testing.T) {
	t.Parallel()
	const limit = 8
	rig := newQueueRig(t, limit, calls.RouterOptions{})
	a, b := calls.NewSession("a"), calls.NewSession("b")
	share := calls.DefaultShare(limit)
	if share >= limit || share < 1 {
		t.Fatalf("DefaultShare(%d) = %d, want 1..%d", limit, share, limit-1)
	}
	for i := range share {
		rig.startRunning(a, fmt.Sprint("a", i))
	}
	for i := share; i < limit; i++ {
		rig.startQueued(context.Background(), a, fmt.Sprint("a", i))
	}
	rig.startRunning(b, "b0") // runs while a holds its share and waits for more
	rig.finish("b0")
	rig.finish("a0")
	if got := <-rig.g.started; got != fmt.Sprint("a", share) {
		t.Fatalf("after a0, %s ran; want a%d", got, share)
	}
	// Allow control: with no per-session cap, one session takes every slot.
	free := newQueueRig(t, limit, calls.RouterOptions{SessionShare: -1})
	for i := range limit {
		free.startRunning(a, fmt.Sprint("a", i))
	}
	free.startQueued(context.Background(), b, "b0")
	free.finish("a0")
	if got := <-free.g.started; got != "b0" {
		t.Fatalf("after a0, %s ran; want b0", got)
	}
	for i := 1; i < limit; i++ {
		free.finish(fmt.Sprint("a", i))
	}
	free.finish("b0")
	for i := 1; i <= share; i++ {
		rig.finish(fmt.Sprint("a", i))
	}
	for i := share + 1; i < limit; i++ {
		if got := <-rig.g.started; got != fmt.Sprint("a", i) {
			t.Fatalf("%s ran; want a%d", got, i)
		}
		rig.finish(fmt.Sprint("a", i))
	}
}

// TestQueueFairPart: while several sessions wait, a slot goes first to a
// session holding less than its fair part, even when another session is
// first in turn.
func TestQueueFairPart(t *testing.T) {
	t.Parallel()
	rig := newQueueRig(t, 4, calls.RouterOptions{SessionShare: -1})
	a, b := calls.NewSession("a"), calls.NewSession("b")
	for i := range 4 {
		rig.startRunning(a, fmt.Sprint("a", i))
	}
	rig.startQueued(context.Background(), a, "a4")
	rig.startQueued(context.Background(), b, "b0")
	rig.startQueued(context.Background(), b, "b1")
	// a is first in turn but holds 3 of 4 slots once a0 ends; b holds none.
	rig.finish("a0")
	if got := <-rig.g.started; got != "b0" {
		t.Fatalf("after a0, %s ran; want b0", got)
	}
	rig.finish("a1") // now a holds 2 and b 1: fair part is 2 each
	if got := <-rig.g.started; got != "b1" {
		t.Fatalf("after a1, %s ran; want b1", got)
	}
	rig.finish("a2")
	if got := <-rig.g.started; got != "a4" {
		t.Fatalf("after a2, %s ran; want a4", got)
	}
	for _, id := range []string{"a3", "a4", "b0", "b1"} {
		rig.finish(id)
	}
}

// TestQueueTimeout: a call that waits past the queue timeout is answered
// busy, and the slot holder is unaffected.
func TestQueueTimeout(t *testing.T) {
	t.Parallel()
	rig := newQueueRig(t, 1, calls.RouterOptions{QueueTimeout: 1})
	rig.startRunning(calls.NewSession("a"), "a0")
	rig.start(context.Background(), calls.NewSession("b"), "b0")
	o := <-rig.done
	if o.id != "b0" || o.err != nil || !o.res.IsError || o.res.Reason != calls.ReasonBusy || !strings.Contains(o.res.TextOf(), "waited") {
		t.Fatalf("%s: %v %v, want a busy result for waiting too long", o.id, o.res.TextOf(), o.err)
	}
	if rig.g.didRun("b0") {
		t.Error("the timed-out call ran")
	}
	rig.finish("a0")
	// Allow control: with a slot free, the same call runs.
	rig.startRunning(calls.NewSession("b"), "b1")
	rig.finish("b1")
}

// TestQueueCancel: a call cancelled while queued leaves the queue at once:
// it never runs, and its place is free for another call.
func TestQueueCancel(t *testing.T) {
	t.Parallel()
	rig := newQueueRig(t, 1, calls.RouterOptions{QueueLength: 1})
	rig.startRunning(calls.NewSession("a"), "a0")
	ctx, cancel := context.WithCancel(context.Background())
	rig.startQueued(ctx, calls.NewSession("b"), "b0")
	// The queue (length 1) is full now.
	rig.start(context.Background(), calls.NewSession("c"), "c0")
	if o := <-rig.done; o.id != "c0" || o.res.Reason != calls.ReasonBusy {
		t.Fatalf("%s with a full queue: %v %v, want busy", o.id, o.res.TextOf(), o.err)
	}
	cancel()
	o := <-rig.done
	if o.id != "b0" || o.res != nil || !errors.Is(o.err, context.Canceled) {
		t.Fatalf("cancelled %s: %v %v, want context.Canceled", o.id, o.res.TextOf(), o.err)
	}
	// Its place is free at once: c can queue, and runs next.
	rig.startQueued(context.Background(), calls.NewSession("c"), "c1")
	rig.finish("a0")
	if got := <-rig.g.started; got != "c1" {
		t.Fatalf("after a0, %s ran; want c1", got)
	}
	rig.finish("c1")
	if rig.g.didRun("b0") {
		t.Error("the cancelled call ran")
	}
}

// TestQueueFull: busy comes only once the queue is full, in all or for
// one session (half of the queue), and not before.
func TestQueueFull(t *testing.T) {
	t.Parallel()
	rig := newQueueRig(t, 1, calls.RouterOptions{QueueLength: 4})
	a, b, c := calls.NewSession("a"), calls.NewSession("b"), calls.NewSession("c")
	rig.startRunning(a, "a0")
	rig.startQueued(context.Background(), a, "a1")
	rig.startQueued(context.Background(), a, "a2")
	rig.start(context.Background(), a, "a3") // a's half of the queue is full
	if o := <-rig.done; o.id != "a3" || o.res.Reason != calls.ReasonBusy || !strings.Contains(o.res.TextOf(), "this session") {
		t.Fatalf("%s past its session's queue: %v %v, want busy", o.id, o.res.TextOf(), o.err)
	}
	rig.startQueued(context.Background(), b, "b0") // others still queue
	rig.startQueued(context.Background(), c, "c0")
	rig.start(context.Background(), c, "c1") // 4 waiting: full
	if o := <-rig.done; o.id != "c1" || o.res.Reason != calls.ReasonBusy || !strings.Contains(o.res.TextOf(), "waiting") {
		t.Fatalf("%s past the queue: %v %v, want busy", o.id, o.res.TextOf(), o.err)
	}
	for _, id := range []string{"a0", "a1", "b0", "c0"} {
		rig.finish(id)
		<-rig.g.started
	}
	rig.finish("a2")

	// No queue at all: the old fail-fast behaviour.
	none := newQueueRig(t, 1, calls.RouterOptions{QueueLength: -1})
	none.startRunning(a, "a0")
	none.start(context.Background(), b, "b0")
	if o := <-none.done; o.res.Reason != calls.ReasonBusy {
		t.Fatalf("no queue: %v %v, want busy", o.res.TextOf(), o.err)
	}
	none.finish("a0")
}

// TestQueueStress runs many sessions' calls, some cancelled, against a
// small limit: never more than the limit run, never more than the share
// from one session, and every call ends.
func TestQueueStress(t *testing.T) {
	t.Parallel()
	const limit, share = 3, 2
	var running, worst atomic.Int32
	var mu sync.Mutex
	per := map[string]int{}
	r := calls.NewRouter(&calls.RouterOptions{QueueLength: 1000})
	c := newCall("work", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			w := worst.Load()
			if n <= w || worst.CompareAndSwap(w, n) {
				break
			}
		}
		mu.Lock()
		per[req.Session.ID()]++
		if per[req.Session.ID()] > share {
			t.Errorf("session %s holds %d slots, more than its share %d", req.Session.ID(), per[req.Session.ID()], share)
		}
		mu.Unlock()
		for range 50 {
			if ctx.Err() != nil {
				break
			}
			_ = fmt.Sprint(rand.Int())
		}
		mu.Lock()
		per[req.Session.ID()]--
		mu.Unlock()
		return calls.Text("ok"), nil
	})
	c.Concurrency = limit
	if err := r.Add(c); err != nil {
		t.Fatal(err)
	}
	sessions := []*calls.Session{calls.NewSession("a"), calls.NewSession("b"), calls.NewSession("c"), calls.NewSession("d")}
	var wg sync.WaitGroup
	var okN atomic.Int32
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%7 == 0 {
				cancel()
			}
			res, err := r.Call(ctx, "work", &calls.Request{Session: sessions[i%len(sessions)]})
			if err == nil && !res.IsError {
				okN.Add(1)
			}
		})
	}
	wg.Wait()
	if w := worst.Load(); w > limit {
		t.Errorf("%d ran at once, limit %d", w, limit)
	}
	if okN.Load() == 0 {
		t.Error("no call succeeded")
	}
}

func TestMachineConcurrency(t *testing.T) {
	t.Parallel()
	for _, mem := range []int64{0, 1, 1 << 30, 1 << 50} {
		n := calls.MachineConcurrency(mem)
		if n < 2 || n > 64 {
			t.Errorf("MachineConcurrency(%d) = %d, want 2..64", mem, n)
		}
	}
	if huge, none := calls.MachineConcurrency(1<<50), calls.MachineConcurrency(0); huge > none {
		t.Errorf("a larger memory cap allows more calls: %d > %d", huge, none)
	}
}
