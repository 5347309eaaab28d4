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
	var seq uint64
	resume := r.Header.Get("Last-Event-ID")
	if resume == "" {
		resume = r.URL.Query().Get("after")
	}
	if resume != "" {
		v, err := strconv.ParseUint(strings.TrimSpace(resume), 10, 64)
		if err != nil || v > last {
			// An id from before this server restarted: start over.
			v = 0
			resume = ""
		}
		seq = v
	}
	if resume == "" {
		seq = last - min(last, tailEvents, uint64(len(l.ring.buf)))
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	buf.WriteString("retry: 500\n\n")
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
