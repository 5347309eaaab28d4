package lens

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds of one stream message.
const (
	// maxBatch is the most events one message carries; more wait for the
	// next message.
	maxBatch = 2000
	// tailEvents is how many recent events a new stream (with no resume
	// id) starts with, so that the lanes are not empty.
	tailEvents = 400
	// heartbeat is how often an idle stream sends a comment, so that a
	// proxy or the browser sees it alive and a dead peer is found.
	heartbeat = 15 * time.Second
)

// serveEvents streams events as Server-Sent Events. Each message is a JSON
// array of events (coalesced over Options.Coalesce) whose id is the seq of
// its last event; a reconnect sends it back as Last-Event-ID and the
// stream resumes after it. When the events after it have left the ring,
// the first message is a "reset" event: the page reloads what it shows.
// With no resume id the stream starts with the last few hundred events, or
// after ?after=SEQ when given.
func (l *Lens) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if n := l.streams.Add(1); n > int64(l.o.MaxStreams) {
		l.streams.Add(-1)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too many Lens pages are open; close one")
		return
	}
	defer l.streams.Add(-1)

	last := l.ring.last()
	seq, resumed, restarted := l.resumeID(r, last)
	if !resumed {
		seq = last - min(last, tailEvents, uint64(len(l.ring.buf)))
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	buf.WriteString("retry: 500\n\n")
	if restarted {
		// The page's lanes are from before the server restarted.
		buf.WriteString("event: reset\ndata: {}\n\n")
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return
	}
	_ = rc.Flush()

	ctx := r.Context()
	tick := time.NewTimer(heartbeat)
	defer tick.Stop()
	for {
		evs, upto, lost, wake := l.ring.since(seq, maxBatch)
		buf.Reset()
		if lost {
			buf.WriteString("event: reset\ndata: {}\n\n")
		}
		if len(evs) > 0 {
			buf.WriteString("id: ")
			buf.WriteString(l.epoch)
			buf.WriteByte(':')
			buf.WriteString(strconv.FormatUint(upto, 10))
			buf.WriteString("\ndata: [")
			for i, e := range evs {
				if i > 0 {
					buf.WriteByte(',')
				}
				buf.Write(e)
			}
			buf.WriteString("]\n\n")
		}
		seq = upto
		if buf.Len() > 0 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			tick.Reset(heartbeat)
			if len(evs) == maxBatch {
				continue // more are waiting
			}
			// Coalesce: what arrives in the next moment travels in
			// one message.
			select {
			case <-ctx.Done():
				return
			case <-time.After(l.o.Coalesce):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			tick.Reset(heartbeat)
		}
	}
}

// resumeID reads where a stream resumes: Last-Event-ID (which the browser
// sends on a reconnect), else ?after=. An id is EPOCH:SEQ; one from another
// epoch (the server restarted, its seqs began again) or past the last
// event does not resume, and restarted says the page should start over.
func (l *Lens) resumeID(r *http.Request, last uint64) (seq uint64, resumed, restarted bool) {
	id := r.Header.Get("Last-Event-ID")
	if id == "" {
		id = r.URL.Query().Get("after")
	}
	id = strings.TrimSpace(id)
	if id == "" || len(id) > 64 {
		return 0, false, false
	}
	epoch, num, ok := strings.Cut(id, ":")
	if !ok || epoch != l.epoch {
		return 0, false, true
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || v > last {
		return 0, false, true
	}
	return v, true, false
}
