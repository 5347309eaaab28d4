package ollama

import (
	"testing"
	"time"
)

// schedClock drives a hostSched by hand: an injected clock and loaded set.
type schedClock struct {
	t0       time.Time
	now      time.Time
	capacity int
	per      int
	wait     time.Duration
	loaded   map[string]bool
}

func newSchedClock(capacity, per int) *schedClock {
	t0 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	return &schedClock{t0: t0, now: t0, capacity: capacity, per: per, wait: 10 * time.Second, loaded: map[string]bool{}}
}

func (c *schedClock) rules() schedRules {
	return schedRules{now: c.now, capacity: c.capacity, per: c.per, switchWait: c.wait, loaded: func(k string) bool { return c.loaded[k] }}
}

func (c *schedClock) advance(d time.Duration) { c.now = c.now.Add(d) }

func granted(w *hostWaiter) bool {
	if w == nil {
		return true
	}
	select {
	case <-w.turn:
		return true
	default:
		return false
	}
}

// simulate runs calls of the given models (in arrival order, all arriving
// at once) through s, each taking one tick, and returns the order they
// ran in and how many times the running model changed with capacity 1
// (each change is a load).
func simulate(t *testing.T, s *hostSched, c *schedClock, keys []string, tick time.Duration) (order []string, loads int, maxWait time.Duration) {
	t.Helper()
	type call struct {
		key   string
		w     *hostWaiter
		since time.Time
		ran   bool
	}
	var cs []*call
	for _, k := range keys {
		cs = append(cs, &call{key: k, w: s.admit(k, c.rules()), since: c.now})
	}
	last := ""
	for step := 0; len(order) < len(keys); step++ {
		if step > 10*len(keys) {
			t.Fatalf("stuck after %v", order)
		}
		var now []*call
		for _, x := range cs {
			if !x.ran && granted(x.w) {
				now = append(now, x)
			}
		}
		if len(now) == 0 {
			t.Fatalf("nothing runs after %v (running %v)", order, s.running)
		}
		for _, x := range now {
			x.ran = true
			order = append(order, x.key)
			if x.key != last {
				loads++
				last = x.key
			}
			maxWait = max(maxWait, c.now.Sub(x.since))
		}
		c.advance(tick)
		for _, x := range now {
			s.done(x.key, c.rules())
		}
	}
	return order, loads, maxWait
}

func TestHostSchedBatchesSameModel(t *testing.T) {
	interleaved := []string{"a", "b", "a", "b", "a", "b", "a", "b"}

	// Capacity 1, two calls of a model at once: a, b, a, b, ... runs as
	// all a's, then all b's: two loads.
	c := newSchedClock(1, 2)
	order, loads, _ := simulate(t, &hostSched{}, c, interleaved, time.Second)
	if loads != 2 {
		t.Errorf("ordered: %d loads (%v), want 2", loads, order)
	}

	// Control: no capacity known (no limit), every call runs at once, as
	// without ordering; with per 1 the host sees them alternate.
	c = newSchedClock(0, 0)
	s := &hostSched{}
	for _, k := range interleaved {
		if w := s.admit(k, c.rules()); w != nil {
			t.Fatalf("no limit: a call of %s waited", k)
		}
	}
	if s.running["a"] != 4 || s.running["b"] != 4 {
		t.Errorf("no limit: running %v, want 4 and 4", s.running)
	}
}

func TestHostSchedPrefersLoadedModel(t *testing.T) {
	c := newSchedClock(1, 1)
	s := &hostSched{}
	if w := s.admit("a", c.rules()); w != nil {
		t.Fatal("first call waited")
	}
	wb := s.admit("b", c.rules()) // waits longest, not loaded
	wc := s.admit("c", c.rules()) // loaded
	c.loaded["c"] = true
	c.advance(time.Second)
	s.done("a", c.rules())
	if !granted(wc) || granted(wb) {
		t.Fatalf("after a: c let in %v, b %v; want the loaded c first", granted(wc), granted(wb))
	}
	// Control: with nothing loaded the longest waiting goes first.
	c2 := newSchedClock(1, 1)
	s2 := &hostSched{}
	s2.admit("a", c2.rules())
	wb2 := s2.admit("b", c2.rules())
	wc2 := s2.admit("c", c2.rules())
	s2.done("a", c2.rules())
	if !granted(wb2) || granted(wc2) {
		t.Fatalf("nothing loaded: b let in %v, c %v; want b (first in line)", granted(wb2), granted(wc2))
	}
}

func TestHostSchedNoStarvation(t *testing.T) {
	// A stream of calls of a keeps a running; a call of b waits. Before
	// switchWait a's calls still join; past it they queue behind b, and
	// b runs once the running a's end.
	c := newSchedClock(1, 2)
	s := &hostSched{}
	s.admit("a", c.rules())
	s.admit("a", c.rules())
	wb := s.admit("b", c.rules())
	var aWaiters []*hostWaiter
	for i := 0; i < 30; i++ {
		c.advance(time.Second)
		w := s.admit("a", c.rules()) // another a arrives, one ends
		s.done("a", c.rules())
		if c.now.Sub(c.t0) < c.wait {
			if !granted(w) || granted(wb) {
				t.Fatalf("at %s: a's call let in %v, b %v; want a's batch to go on while b has waited less than %s", c.now.Sub(c.t0), granted(w), granted(wb), c.wait)
			}
			continue
		}
		if granted(w) && !granted(wb) {
			t.Fatalf("at %s a call of a joined while b has waited past %s", c.now.Sub(c.t0), c.wait)
		}
		if !granted(w) {
			aWaiters = append(aWaiters, w)
		}
		if granted(wb) {
			break
		}
	}
	if !granted(wb) {
		t.Fatalf("b never ran (running %v)", s.running)
	}
	if got := c.now.Sub(c.t0); got > c.wait+2*time.Second {
		t.Errorf("b waited %s, want at most switchWait %s plus one call", got, c.wait)
	}
	// The a's that queued behind b go when b's turn ends, not starve.
	s.done("b", c.rules())
	for _, w := range aWaiters {
		if !granted(w) {
			t.Errorf("a call of a queued behind b was not let in after b")
		}
	}
	// Simulated: no call of an interleaved burst waits past switchWait
	// plus a batch.
	c = newSchedClock(1, 1)
	c.wait = 3 * time.Second
	keys := []string{}
	for range 20 {
		keys = append(keys, "a", "b")
	}
	_, loads, maxWait := simulate(t, &hostSched{}, c, keys, time.Second)
	if maxWait > 40*time.Second || loads >= len(keys) {
		t.Errorf("20 a's and 20 b's: %d loads, longest wait %s", loads, maxWait)
	}
	if loads < 4 {
		t.Errorf("20 a's and 20 b's with switchWait 3s took %d loads: a batch ran past the bound", loads)
	}
}

func TestHostSchedPositionAndLeave(t *testing.T) {
	c := newSchedClock(1, 1)
	s := &hostSched{}
	s.admit("a", c.rules())
	wb := s.admit("b", c.rules())
	wa := s.admit("a", c.rules()) // waits for a's own slot
	wb2 := s.admit("b", c.rules())
	pos := func(w *hostWaiter) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.position(w, c.rules())
	}
	// a is loaded when its call ends, so its next call goes first, then
	// b's two (a batch).
	if pa, pb, pb2 := pos(wa), pos(wb), pos(wb2); pa != 1 || pb != 2 || pb2 != 3 {
		t.Errorf("positions a=%d b=%d b2=%d; want 1, 2, 3", pa, pb, pb2)
	}
	s.done("a", c.rules())
	if !granted(wa) || granted(wb) {
		t.Fatalf("after a: a's next call let in %v, b %v; want the batch of a to go on", granted(wa), granted(wb))
	}
	// A waiter that leaves is gone from the line; the next moves up.
	if s.leave(wb, c.rules()) {
		t.Fatal("a waiting call reported as let in")
	}
	if p := pos(wb2); p != 1 {
		t.Errorf("after b left, b2 is number %d, want 1", p)
	}
	s.done("a", c.rules())
	if !granted(wb2) {
		t.Errorf("after a's calls: b2 not let in")
	}
	if !s.leave(wb2, c.rules()) {
		t.Error("leave of a let-in call says it was not let in")
	}
	if p := pos(wb2); p != 0 {
		t.Errorf("a let-in call has position %d, want 0", p)
	}
}

func TestHostSchedLearnsCapacity(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	later := now.Add(time.Minute)
	s := &hostSched{}
	if s.capacityFor(0) != 0 {
		t.Fatal("capacity known before any /api/ps")
	}
	// Both loaded, nothing evicted: nothing learned.
	s.observeLoaded(map[string]loadedModel{"a": {Expires: later}}, map[string]loadedModel{"a": {}, "b": {}}, now)
	if got := s.capacityFor(0); got != 0 {
		t.Errorf("no eviction: capacity %d, want 0 (no limit)", got)
	}
	// b's load pushed a out: the host keeps one.
	s.observeLoaded(map[string]loadedModel{"a": {Expires: later}, "b": {Expires: later}}, map[string]loadedModel{"b": {}}, now)
	if got := s.capacityFor(0); got != 1 {
		t.Errorf("a evicted by b: capacity %d, want 1", got)
	}
	// The eviction shows first as an empty listing (the next model is
	// loading); the next listing says how many stay.
	s3 := &hostSched{}
	s3.observeLoaded(map[string]loadedModel{"a": {Expires: later}}, map[string]loadedModel{}, now)
	if got := s3.capacityFor(0); got != 0 {
		t.Errorf("evicted, nothing listed yet: capacity %d, want 0", got)
	}
	s3.observeLoaded(map[string]loadedModel{"b": {Expires: later}}, map[string]loadedModel{"b": {}}, now)
	if got := s3.capacityFor(0); got != 1 {
		t.Errorf("evicted, then one listed: capacity %d, want 1", got)
	}
	// A model that expired is no eviction.
	s2 := &hostSched{}
	s2.observeLoaded(map[string]loadedModel{"a": {Expires: now.Add(-time.Second)}, "b": {Expires: later}}, map[string]loadedModel{"b": {}}, now)
	if got := s2.capacityFor(0); got != 0 {
		t.Errorf("a expired: capacity %d, want 0", got)
	}
	// More listed than learned: it grows.
	s.observeLoaded(map[string]loadedModel{"b": {Expires: later}}, map[string]loadedModel{"a": {}, "b": {}, "c": {}}, now)
	if got := s.capacityFor(0); got != 3 {
		t.Errorf("three listed: capacity %d, want 3", got)
	}
	// The configured max wins.
	if got := s.capacityFor(2); got != 2 {
		t.Errorf("configured 2: capacity %d", got)
	}
}
