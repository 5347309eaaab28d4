package lens

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
)

// Bounds of the argument preview a live event carries; the call's detail
// page reads the stored arguments.
const (
	previewValueBytes = 160
	previewArgsBytes  = 600
	maxMessageBytes   = 600
)

// wireEvent is one event as the page receives it.
type wireEvent struct {
	Seq      uint64          `json:"seq"`
	Type     string          `json:"type"`
	Time     time.Time       `json:"time"`
	ID       uint64          `json:"id,omitempty"`
	StoreID  string          `json:"store_id,omitempty"`
	Call     string          `json:"call,omitempty"`
	Kind     string          `json:"kind,omitempty"`
	Group    string          `json:"group,omitempty"`
	Session  string          `json:"session,omitempty"`
	Client   string          `json:"client,omitempty"`
	Args     json.RawMessage `json:"args,omitempty"`
	Progress float64         `json:"progress,omitempty"`
	Total    float64         `json:"total,omitempty"`
	Message  string          `json:"message,omitempty"`
	Outcome  string          `json:"outcome,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	DurMS    float64         `json:"dur_ms,omitempty"`
	ExitCode *int            `json:"exit_code,omitempty"`
	Killed   string          `json:"killed,omitempty"`
	Isolate  string          `json:"isolation,omitempty"`
	Model    string          `json:"model,omitempty"`
	Tokens   int             `json:"tokens,omitempty"`
	TokPerS  float64         `json:"tokens_per_s,omitempty"`
	Added    []string        `json:"added,omitempty"`
	Removed  []string        `json:"removed,omitempty"`
}

// encode turns e into the JSON the page reads, scrubbed and bounded. Seq
// is filled in by the ring.
func (l *Lens) encode(e *calls.Event) wireEvent {
	w := wireEvent{Type: e.Type.String(), Time: e.Time, ID: e.ID, Call: e.Call, Group: e.Group, Session: e.Session, Client: e.Client}
	if e.Kind != 0 {
		w.Kind = e.Kind.String()
	}
	if e.ID != 0 && l.o.Store != nil {
		w.StoreID = l.o.Store.CallID(e.ID)
	}
	switch e.Type {
	case calls.EventCallStarted:
		if len(e.Arguments) > 0 {
			w.Args = ledger.Args(l.scr, e.Arguments, previewValueBytes, previewArgsBytes)
		}
	case calls.EventCallProgress:
		w.Progress, w.Total = e.Progress, e.Total
		w.Message = clip(l.scr.String(e.Message), maxMessageBytes)
	case calls.EventCallFinished:
		w.Outcome, w.Reason = e.Outcome.String(), l.scr.String(e.Reason)
		w.DurMS = float64(e.Duration.Microseconds()) / 1000
		if e.Info != nil && e.Info.Run != nil {
			code := e.Info.Run.ExitCode
			w.ExitCode, w.Killed, w.Isolate = &code, e.Info.Run.Killed, e.Info.Run.Isolation
		}
		if e.Info != nil && e.Info.Model != nil {
			m := e.Info.Model
			w.Model, w.Tokens = m.Model, m.TokensOut
			if m.Generation > 0 {
				w.TokPerS = float64(m.TokensOut) / m.Generation.Seconds()
			}
		}
	case calls.EventToolsChanged:
		if e.Change != nil {
			added := make([]string, 0, min(len(e.Change.Added), maxNames))
			for _, c := range e.Change.Added[:min(len(e.Change.Added), maxNames)] {
				added = append(added, c.Name)
			}
			w.Added, w.Removed = added, e.Change.Removed[:min(len(e.Change.Removed), maxNames)]
		}
	}
	return w
}

// maxNames bounds the tool names a tools_changed event carries; the page
// reloads the list anyway.
const maxNames = 50

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return calls.ValidUTF8(s[len(s)-n:])
}

// ring is the bounded buffer of recent events, each encoded once, that
// streams read from. Seq numbers start at 1 and never repeat in one Lens.
type ring struct {
	mu   sync.Mutex
	buf  [][]byte // encoded events; buf[(seq-1)%len]
	next uint64   // the seq the next event gets
	wake chan struct{}
}

func newRing(n int) *ring {
	return &ring{buf: make([][]byte, n), next: 1, wake: make(chan struct{})}
}

func (r *ring) add(w wireEvent) {
	// Nothing before the lock: the ring's order is the router's order only
	// because one observer goroutine calls add.
	r.mu.Lock()
	w.Seq = r.next
	b, err := json.Marshal(w)
	if err != nil {
		r.mu.Unlock()
		return
	}
	r.buf[(r.next-1)%uint64(len(r.buf))] = b
	r.next++
	wake := r.wake
	r.wake = make(chan struct{})
	r.mu.Unlock()
	close(wake)
}

// last returns the seq of the latest event, 0 when none.
func (r *ring) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next - 1
}

// since returns the events after seq (at most max), the seq of the last
// one returned, whether events after seq were already lost, and a channel
// closed when a newer event arrives.
func (r *ring) since(seq uint64, max int) (evs [][]byte, upto uint64, lost bool, wake <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := uint64(len(r.buf))
	oldest := uint64(1)
	if r.next > n {
		oldest = r.next - n
	}
	if seq+1 < oldest {
		lost, seq = true, oldest-1
	}
	if seq >= r.next {
		seq = r.next - 1
	}
	upto = seq
	for s := seq + 1; s < r.next && len(evs) < max; s++ {
		evs = append(evs, r.buf[(s-1)%n])
		upto = s
	}
	return evs, upto, lost, r.wake
}

// rate counts the calls that finished in the last minute, by second.
type rate struct {
	mu     sync.Mutex
	sec    [60]int64 // the unix second each slot counts
	calls  [60]int
	failed [60]int
}

func (r *rate) add(t time.Time, failed bool) {
	s := t.Unix()
	i := s % 60
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sec[i] != s {
		r.sec[i], r.calls[i], r.failed[i] = s, 0, 0
	}
	r.calls[i]++
	if failed {
		r.failed[i]++
	}
}

// lastMinute returns the calls and failures of the 60 seconds before now.
func (r *rate) lastMinute(now time.Time) (n, failed int) {
	cut := now.Unix() - 60
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.sec {
		if r.sec[i] > cut {
			n += r.calls[i]
			failed += r.failed[i]
		}
	}
	return n, failed
}
