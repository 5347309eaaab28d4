package calls

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrSessionEnded is wrapped by the error of a call whose session ended
// while it waited for a slot.
var ErrSessionEnded = errors.New("the session ended")

// DefaultQueueTimeout is how long a call waits for a slot when
// RouterOptions.QueueTimeout is zero.
const DefaultQueueTimeout = 30 * time.Second

// limiter is one call's concurrency limit with its wait queue.
//
// At most limit invocations run at once. Past that, calls wait in a queue
// that is fair across sessions: each session has its own first-in,
// first-out line, and a freed slot goes to the sessions in turn (round
// robin), so that one session with many queued calls cannot keep another
// session's call waiting behind all of them. Two shares keep one session
// from holding every slot:
//
//   - a session never holds more than share slots at once, even when no
//     other session is waiting, so that a session that starts limit long
//     calls and keeps them leaves room for others (share is below limit
//     whenever limit is at least 2);
//   - while several sessions are waiting, a freed slot goes first to a
//     session that holds fewer than its fair part (limit divided by the
//     sessions that are running or waiting, at least 1).
//
// The queue is bounded (queueMax in all, half of that per session, at
// least 1): a call that finds it full is answered busy at once. A call that
// waits longer than timeout is answered busy too. A call whose context ends
// while it waits (the client cancelled, or the session went away) leaves
// the queue at once.
type limiter struct {
	name     string
	limit    int // slots; > 0
	share    int // slots one session may hold; 1..limit
	queueMax int // waiting calls in all; 0 means none may wait
	perQueue int // waiting calls of one session
	timeout  time.Duration

	mu      sync.Mutex
	running int
	held    map[*Session]int
	lines   map[*Session][]*waiter
	ring    []*Session // sessions with waiters, in turn order
	waiting int
}

// waiter is one queued call.
type waiter struct {
	s       *Session
	turn    chan struct{} // closed when the waiter is handed a slot
	moved   chan struct{} // poked when the queue changes (capacity 1)
	granted bool
}

// queueConfig is what the router's options say about queues, with
// defaults applied.
type queueConfig struct {
	length  int // <0: no queue; 0: 4 per slot
	share   int // <0: no per-session cap; 0: the default share
	timeout time.Duration
}

func newLimiter(name string, limit int, q queueConfig) *limiter {
	l := &limiter{
		name:    name,
		limit:   limit,
		timeout: q.timeout,
		held:    map[*Session]int{},
		lines:   map[*Session][]*waiter{},
	}
	switch {
	case q.share < 0:
		l.share = limit
	case q.share > 0:
		l.share = min(q.share, limit)
	default:
		l.share = DefaultShare(limit)
	}
	switch {
	case q.length < 0:
		l.queueMax = 0
	case q.length > 0:
		l.queueMax = q.length
	default:
		l.queueMax = max(4*limit, MinDefaultQueue)
	}
	l.perQueue = max(1, l.queueMax/2)
	if l.timeout <= 0 {
		l.timeout = DefaultQueueTimeout
	}
	return l
}

// MinDefaultQueue is the least queue a call gets by default, however few
// its slots: 20 sessions calling one tool at once all wait their turn even
// at the smallest limit a machine is given (2). A waiting call holds only
// a goroutine.
const MinDefaultQueue = 32

// DefaultShare is how many of limit slots one session may hold at once by
// default: all but a quarter of them (at least one is kept for other
// sessions), and 1 when limit is 1.
func DefaultShare(limit int) int {
	if limit <= 1 {
		return 1
	}
	return limit - max(1, limit/4)
}

// acquire takes a slot for req's session, waiting in the queue when none
// is free. It returns a busy result when the queue is full or the wait
// timed out, and an error when ctx ended first.
func (l *limiter) acquire(ctx context.Context, req *Request) (release func(), busy *Result, err error) {
	s := req.Session
	release = func() { l.release(s) }
	select {
	case <-s.Done():
		return nil, nil, fmt.Errorf("calls: %s: %w", l.name, ErrSessionEnded)
	default:
	}
	l.mu.Lock()
	if l.running < l.limit && l.held[s] < l.share {
		l.running++
		l.held[s]++
		l.mu.Unlock()
		return release, nil, nil
	}
	if l.waiting >= l.queueMax {
		running, held := l.running, l.held[s]
		l.mu.Unlock()
		if running < l.limit {
			// Slots are free, but not for this session: it holds its share.
			what := "calls"
			if held == 1 {
				what = "call"
			}
			return nil, l.busy(fmt.Sprintf("busy: this session already runs %d %s of %s at once, the most one session may hold of its %d slots (the rest are kept for other sessions), and %d more are waiting; try again when one finishes",
				held, what, l.name, l.limit, l.queueMax)), nil
		}
		return nil, l.busy(fmt.Sprintf("busy: %s is already running %d calls at once and %d more are waiting; try again later", l.name, running, l.queueMax)), nil
	}
	if len(l.lines[s]) >= l.perQueue {
		l.mu.Unlock()
		return nil, l.busy(fmt.Sprintf("busy: this session already has %d calls of %s waiting, the most one session may queue; wait for them to finish", l.perQueue, l.name)), nil
	}
	w := &waiter{s: s, turn: make(chan struct{}), moved: make(chan struct{}, 1)}
	if len(l.lines[s]) == 0 {
		l.ring = append(l.ring, s)
	}
	l.lines[s] = append(l.lines[s], w)
	l.waiting++
	l.poke()
	l.mu.Unlock()

	timer := time.NewTimer(l.timeout)
	defer timer.Stop()
	n := 0
	lastPos := -1
	for {
		select {
		case <-w.turn:
			return release, nil, nil
		case <-w.moved:
			l.mu.Lock()
			pos, running, waiting := l.position(w), l.running, l.waiting
			l.mu.Unlock()
			if pos > 0 && pos != lastPos {
				lastPos = pos
				n++
				req.Progress.Report(ctx, 0, 0, fmt.Sprintf("queued: %s is running %d calls at once; this call is number %d in line (%d waiting)", l.name, running, pos, waiting))
			}
		case <-timer.C:
			if l.leave(w) {
				return release, nil, nil // handed a slot just now
			}
			return nil, l.busy(fmt.Sprintf("busy: %s waited %s in line for one of %d slots; try again later", l.name, l.timeout, l.limit)), nil
		case <-ctx.Done():
			if l.leave(w) {
				release()
			}
			return nil, nil, fmt.Errorf("calls: %s: while waiting for a slot: %w", l.name, context.Cause(ctx))
		case <-s.Done():
			if l.leave(w) {
				release()
			}
			return nil, nil, fmt.Errorf("calls: %s: while waiting for a slot: %w", l.name, ErrSessionEnded)
		}
	}
}

func (l *limiter) busy(msg string) *Result {
	r := Errorf("%s", msg)
	r.Reason = ReasonBusy
	return r
}

// leave takes w out of the queue. It reports true when w had already been
// handed a slot, which the caller then owns.
func (l *limiter) leave(w *waiter) (granted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		return true
	}
	line := l.lines[w.s]
	if i := slices.Index(line, w); i >= 0 {
		line = slices.Delete(line, i, i+1)
		l.waiting--
	}
	if len(line) == 0 {
		delete(l.lines, w.s)
		if i := slices.Index(l.ring, w.s); i >= 0 {
			l.ring = slices.Delete(l.ring, i, i+1)
		}
	} else {
		l.lines[w.s] = line
	}
	l.poke()
	return false
}

// release returns a slot of s and hands free slots to waiters.
func (l *limiter) release(s *Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
	if l.held[s]--; l.held[s] <= 0 {
		delete(l.held, s)
	}
	l.dispatch()
}

// dispatch hands free slots to waiters in turn, skipping (and dropping)
// those of sessions that ended. It runs with mu held.
func (l *limiter) dispatch() {
	moved := false
	for i := 0; i < len(l.ring); {
		s := l.ring[i]
		select {
		case <-s.Done():
			// Their goroutines see Done too and return; leave finds
			// them gone.
			l.waiting -= len(l.lines[s])
			delete(l.lines, s)
			l.ring = slices.Delete(l.ring, i, i+1)
			moved = true
			continue
		default:
		}
		i++
	}
	for l.running < l.limit && len(l.ring) > 0 {
		i := l.next()
		if i < 0 {
			break // every waiting session holds its share
		}
		s := l.ring[i]
		line := l.lines[s]
		w := line[0]
		line = line[1:]
		l.ring = slices.Delete(l.ring, i, i+1)
		if len(line) > 0 {
			l.lines[s] = line
			l.ring = append(l.ring, s) // its next call waits for the others' turn
		} else {
			delete(l.lines, s)
		}
		l.waiting--
		l.running++
		l.held[s]++
		w.granted = true
		close(w.turn)
		moved = true
	}
	if moved {
		l.poke()
	}
}

// next picks the ring index of the session whose turn it is: the first in
// turn order that holds less than its fair part, else the first that holds
// less than its share, else -1. It runs with mu held.
func (l *limiter) next() int {
	active := len(l.held)
	for _, s := range l.ring {
		if l.held[s] == 0 {
			active++
		}
	}
	fair := min(l.share, max(1, l.limit/max(1, active)))
	for i, s := range l.ring {
		if l.held[s] < fair {
			return i
		}
	}
	for i, s := range l.ring {
		if l.held[s] < l.share {
			return i
		}
	}
	return -1
}

// position estimates w's place in line, from 1, as turn order would serve
// the queue if every session could take a slot. It runs with mu held.
func (l *limiter) position(w *waiter) int {
	k := slices.Index(l.lines[w.s], w)
	r := slices.Index(l.ring, w.s)
	if k < 0 || r < 0 {
		return 0
	}
	ahead := k
	for j, s := range l.ring {
		n := len(l.lines[s])
		switch {
		case j < r:
			ahead += min(n, k+1)
		case j > r:
			ahead += min(n, k)
		}
	}
	return ahead + 1
}

// poke tells every waiter that the queue changed. It runs with mu held.
func (l *limiter) poke() {
	for _, line := range l.lines {
		for _, w := range line {
			select {
			case w.moved <- struct{}{}:
			default:
			}
		}
	}
}
