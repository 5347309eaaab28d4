package lens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/store"
)

// Page bounds of the lists the API returns.
const (
	defaultPage = 100
	maxPage     = 500
	// maxSchemaBytes caps the input schema the tools view shows.
	maxSchemaBytes = 32 << 10
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (l *Lens) serveAPI(w http.ResponseWriter, r *http.Request, path string) {
	switch path {
	case "login":
		l.serveLogin(w, r)
		return
	case "logout":
		l.serveLogout(w, r)
		return
	}
	user, ok := l.user(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "log in with the server's token")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "the Lens is read-only")
		return
	}
	switch path {
	case "me":
		writeJSON(w, http.StatusOK, map[string]any{"user": user, "history": l.o.Store != nil, "open": l.o.Open})
	case "overview":
		l.serveOverview(w, r)
	case "tools":
		l.serveTools(w, r)
	case "tool":
		l.serveTool(w, r)
	case "calls":
		l.serveCalls(w, r)
	case "call":
		l.serveCall(w, r)
	case "stats":
		l.serveStats(w, r)
	case "events":
		l.serveEvents(w, r)
	case "turns":
		l.serveTurns(w, r)
	case "turn":
		l.serveTurn(w, r)
	default:
		writeError(w, http.StatusNotFound, "no such API: "+path)
	}
}

func (l *Lens) serveOverview(w http.ResponseWriter, r *http.Request) {
	type overview struct {
		Hosts        []Host         `json:"hosts"`
		Sandbox      Sandbox        `json:"sandbox"`
		Tools        int            `json:"tools"`
		SessionsOpen int64          `json:"sessions_open"`
		InFlight     int64          `json:"in_flight"`
		InFlightBy   map[string]int `json:"in_flight_by_tool"`
		QueuedBy     map[string]int `json:"queued_by_model"`
		CallsPerMin  int            `json:"calls_per_min"`
		ErrorRate    float64        `json:"error_rate"`
		History      bool           `json:"history"`
		Stored       int            `json:"stored_calls"`
		Seq          uint64         `json:"seq"`
	}
	ov := overview{Hosts: []Host{}, Sandbox: l.o.Sandbox, InFlightBy: l.inFlight(), History: l.o.Store != nil, Seq: l.ring.last()}
	if l.o.Hosts != nil {
		ov.Hosts = append(ov.Hosts, l.o.Hosts()...)
	}
	ov.QueuedBy = map[string]int{}
	if l.o.Queues != nil {
		for m, n := range l.o.Queues() {
			if n > 0 {
				ov.QueuedBy[m] = n
			}
		}
	}
	if t := l.o.Tools; t != nil {
		ov.Tools, ov.SessionsOpen, ov.InFlight = t.Len(), t.SessionsOpen(), t.InFlight()
	}
	n, failed := l.rate.lastMinute(time.Now())
	ov.CallsPerMin = n
	if n > 0 {
		ov.ErrorRate = float64(failed) / float64(n)
	}
	if l.o.Store != nil {
		ov.Stored, _ = l.o.Store.Count(r.Context(), store.Filter{})
	}
	writeJSON(w, http.StatusOK, ov)
}

// toolRow is one tool in the tools list.
type toolRow struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Kind        string `json:"kind"`
	Group       string `json:"group"`
	Description string `json:"description"`
	Model       *Model `json:"model,omitempty"`
	InFlight    int    `json:"in_flight,omitempty"`
}

func (l *Lens) row(c calls.Call, live map[string]int) toolRow {
	t := toolRow{Name: c.Name, Title: c.Title, Kind: c.Kind.String(), Group: c.Group, Description: c.Description, InFlight: live[c.Name]}
	if l.o.ModelOf != nil {
		if m, ok := l.o.ModelOf(c.Name); ok {
			t.Model = &m
		}
	}
	return t
}

// pageArgs reads offset and limit.
func pageArgs(r *http.Request) (offset, limit int) {
	offset, _ = strconv.Atoi(r.URL.Query().Get("offset"))
	limit, _ = strconv.Atoi(r.URL.Query().Get("limit"))
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 {
		limit = defaultPage
	}
	return offset, min(limit, maxPage)
}

// serveTools lists the tools that match q (a substring of the name, group,
// kind or description), grouped by kind and group, a page at a time.
func (l *Lens) serveTools(w http.ResponseWriter, r *http.Request) {
	var all []calls.Call
	if l.o.Tools != nil {
		all = l.o.Tools.List()
	}
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	if len(q) > 200 {
		q = q[:200]
	}
	matched := all[:0:0]
	for _, c := range all {
		if q == "" || strings.Contains(strings.ToLower(c.Name), q) || strings.Contains(strings.ToLower(c.Group), q) ||
			strings.Contains(c.Kind.String(), q) || strings.Contains(strings.ToLower(c.Description), q) {
			matched = append(matched, c)
		}
	}
	slices.SortFunc(matched, func(a, b calls.Call) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		if a.Group != b.Group {
			return strings.Compare(a.Group, b.Group)
		}
		return strings.Compare(a.Name, b.Name)
	})
	offset, limit := pageArgs(r)
	live := l.inFlight()
	rows := []toolRow{}
	for i := offset; i < len(matched) && len(rows) < limit; i++ {
		rows = append(rows, l.row(matched[i], live))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": len(matched), "all": len(all), "offset": offset, "tools": rows})
}

// latencyPoint is p50 and p99 of one interval.
type latencyPoint struct {
	Start time.Time `json:"start"`
	P50   float64   `json:"p50_ms"`
	P99   float64   `json:"p99_ms"`
	N     int       `json:"n"`
}

// histBin counts the durations in [Lo, Hi) milliseconds.
type histBin struct {
	Lo float64 `json:"lo_ms"`
	Hi float64 `json:"hi_ms"`
	N  int     `json:"n"`
}

func (l *Lens) serveTool(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if l.o.Tools == nil || !calls.NamePattern.MatchString(name) {
		writeError(w, http.StatusNotFound, "no such tool")
		return
	}
	call, ok := l.o.Tools.Lookup(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no tool %s (it may have gone: its model removed, or its host down)", name))
		return
	}
	out := map[string]any{"tool": l.row(call, l.inFlight())}
	schema := call.InputSchema
	if len(schema) > maxSchemaBytes {
		schema = json.RawMessage(`{"note":"schema too large to show"}`)
	}
	out["schema"] = schema
	if st := l.o.Store; st != nil {
		recent, err1 := st.Calls(r.Context(), store.Filter{Tool: name, Limit: 20})
		samples, err2 := st.Samples(r.Context(), store.Filter{Tool: name, Since: time.Now().Add(-24 * time.Hour)})
		if failed(w, errors.Join(err1, err2)) {
			return
		}
		out["recent"] = nonNil(recent)
		out["latency"], out["histogram"] = latencySeries(samples, 24), histogram(samples)
	}
	writeJSON(w, http.StatusOK, out)
}

// failed answers 500 with err, and reports whether there was an error.
func failed(w http.ResponseWriter, err error) bool {
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
	}
	return err != nil
}

// history reports whether there is a trace store to answer from; when there
// is none it answers 404 itself, saying there is no history of what.
func (l *Lens) history(w http.ResponseWriter, what string) bool {
	if l.o.Store == nil {
		writeError(w, http.StatusNotFound, "no "+what+": the trace store is off")
	}
	return l.o.Store != nil
}

// page is one page of rows, newest first, under key, with next: the cursor
// (until=) of the page after it, when the page is full.
func page[T any](key string, rows []T, limit int, started func(T) time.Time) map[string]any {
	out := map[string]any{key: nonNil(rows)}
	if len(rows) > 0 && len(rows) == limit {
		out["next"] = started(rows[len(rows)-1]).Format(time.RFC3339Nano)
	}
	return out
}

// stored answers one stored call or turn, what, by its id=, read with get;
// gone says why one may be missing. It answers the errors itself.
func stored[T any](l *Lens, w http.ResponseWriter, r *http.Request, what, gone string, get func(context.Context, string) (T, error)) (T, bool) {
	var zero T
	if !l.history(w, "history") {
		return zero, false
	}
	id := r.URL.Query().Get("id")
	if id == "" || len(id) > 128 {
		writeError(w, http.StatusBadRequest, "give the "+what+"'s id")
		return zero, false
	}
	v, err := get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such "+what+" ("+gone+")")
		return zero, false
	}
	return v, !failed(w, err)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// latencySeries cuts samples (oldest first) into at most n intervals of
// equal time and gives each one's p50 and p99.
func latencySeries(samples []store.Sample, n int) []latencyPoint {
	out := []latencyPoint{}
	if len(samples) == 0 {
		return out
	}
	first, last := samples[0].Started, samples[len(samples)-1].Started
	width := last.Sub(first)/time.Duration(n) + time.Millisecond
	var cur []float64
	start := first
	flush := func() {
		if len(cur) == 0 {
			return
		}
		sort.Float64s(cur)
		out = append(out, latencyPoint{Start: start, P50: quantile(cur, 0.5), P99: quantile(cur, 0.99), N: len(cur)})
		cur = cur[:0]
	}
	for _, s := range samples {
		for s.Started.Sub(start) >= width {
			flush()
			start = start.Add(width)
		}
		cur = append(cur, float64(s.Dur.Microseconds())/1000)
	}
	flush()
	return out
}

func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// histogram counts durations in bins a power of two apart, from 1 ms.
func histogram(samples []store.Sample) []histBin {
	bins := []histBin{}
	if len(samples) == 0 {
		return bins
	}
	counts := map[int]int{}
	lo, hi := math.MaxInt, math.MinInt
	for _, s := range samples {
		ms := float64(s.Dur.Microseconds()) / 1000
		b := 0
		if ms >= 1 {
			b = int(math.Floor(math.Log2(ms))) + 1
		}
		counts[b]++
		lo, hi = min(lo, b), max(hi, b)
	}
	for b := lo; b <= hi; b++ {
		l, h := 0.0, 1.0
		if b > 0 {
			l, h = math.Pow(2, float64(b-1)), math.Pow(2, float64(b))
		}
		bins = append(bins, histBin{Lo: l, Hi: h, N: counts[b]})
	}
	return bins
}

// filterOf reads the history filter from the query: tool, outcome,
// session, since and until (RFC 3339 times or durations before now), limit.
func filterOf(r *http.Request) (store.Filter, error) {
	var f store.Filter
	now := time.Now()
	q := r.URL.Query()
	for _, k := range []string{"tool", "outcome", "session", "since", "until", "limit"} {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			if err := f.Set(k, v, now); err != nil {
				return f, err
			}
		}
	}
	if f.Limit == 0 || f.Limit > maxPage {
		f.Limit = defaultPage
	}
	return f, nil
}

// serveCalls answers one page of the history, newest first; next is the
// cursor (until=) of the page after it.
func (l *Lens) serveCalls(w http.ResponseWriter, r *http.Request) {
	if !l.history(w, "history") {
		return
	}
	f, err := filterOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cs, err := l.o.Store.Calls(r.Context(), f)
	if failed(w, err) {
		return
	}
	out := page("calls", cs, f.Limit, func(c store.Call) time.Time { return c.Started })
	if r.URL.Query().Get("count") == "1" {
		count := f
		count.Limit = 0
		n, err := l.o.Store.Count(r.Context(), count)
		if err == nil {
			out["total"] = n
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (l *Lens) serveCall(w http.ResponseWriter, r *http.Request) {
	c, ok := stored(l, w, r, "call", "it may not be stored yet, or retention removed it", l.o.Store.Get)
	if !ok {
		return
	}
	id := r.URL.Query().Get("id")
	images := []map[string]string{}
	for _, img := range l.images.get(id) {
		images = append(images, map[string]string{"src": "data:" + imageType(img) + ";base64," + img})
	}
	if len(images) == 0 {
		images = imagesIn(c.Args)
	}
	writeJSON(w, http.StatusOK, map[string]any{"call": c, "images": images})
}

// imagesIn lists the images among a call's stored arguments ("images"
// lists, at any depth), for the detail page. Arguments are stored capped,
// so only small images survive whole; the rest are named.
func imagesIn(args json.RawMessage) []map[string]string {
	out := []map[string]string{}
	for _, x := range imageArgs(args, 16) {
		if mime := imageType(x); mime != "" {
			out = append(out, map[string]string{"src": "data:" + mime + ";base64," + x})
		} else {
			out = append(out, map[string]string{"name": clip(x, 200)})
		}
	}
	return out
}

// imageType names the type of a base64 image by its first bytes.
func imageType(b64 string) string {
	switch {
	case strings.HasPrefix(b64, "iVBORw0KGgo"):
		return "image/png"
	case strings.HasPrefix(b64, "/9j/"):
		return "image/jpeg"
	case strings.HasPrefix(b64, "R0lGOD"):
		return "image/gif"
	case strings.HasPrefix(b64, "UklGR"):
		return "image/webp"
	}
	return ""
}

// serveStats answers the plots' data over a window (since=, default 1h):
// calls over time, tokens per second per model, sandbox kills by reason,
// and the latency histogram of the busiest tools.
func (l *Lens) serveStats(w http.ResponseWriter, r *http.Request) {
	if !l.history(w, "history") {
		return
	}
	window := time.Hour
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 90*24*time.Hour {
			writeError(w, http.StatusBadRequest, "window is a duration from 1m to 2160h")
			return
		}
		window = d
	}
	ctx := r.Context()
	since := time.Now().Add(-window)
	f := store.Filter{Since: since}
	width := window / 60
	buckets, err1 := l.o.Store.Buckets(ctx, f, width)
	rates, err2 := l.o.Store.ModelRates(ctx, f)
	kills, err3 := l.o.Store.Kills(ctx, f)
	outcomes, err4 := l.o.Store.Outcomes(ctx, f)
	if failed(w, errors.Join(err1, err2, err3, err4)) {
		return
	}
	type modelRate struct {
		store.ModelRate
		TokPerS float64 `json:"tokens_per_s"`
	}
	mr := []modelRate{}
	for _, m := range rates {
		x := modelRate{ModelRate: m}
		if m.Generation > 0 {
			x.TokPerS = float64(m.TokensOut) / m.Generation.Seconds()
		}
		mr = append(mr, x)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"since": since, "width_ms": width.Milliseconds(), "buckets": nonNil(buckets),
		"models": mr, "kills": kills, "outcomes": outcomes,
	})
}

// serveTurns answers one page of the orchestrator turns, newest first,
// without their steps; next is the cursor (until=) of the page after it.
func (l *Lens) serveTurns(w http.ResponseWriter, r *http.Request) {
	if !l.history(w, "turns") {
		return
	}
	q := r.URL.Query()
	f := store.TurnFilter{Conversation: q.Get("conversation")}
	if len(f.Conversation) > 128 {
		writeError(w, http.StatusBadRequest, "conversation is an id of at most 128 bytes")
		return
	}
	if v := q.Get("until"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "until is an RFC 3339 time, as the last page's next gave it")
			return
		}
		f.Until = t
	}
	_, f.Limit = pageArgs(r)
	ts, err := l.o.Store.Turns(r.Context(), f)
	if failed(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, page("turns", ts, f.Limit, func(t store.Turn) time.Time { return t.Started }))
}

// serveTurn answers one turn with its steps.
func (l *Lens) serveTurn(w http.ResponseWriter, r *http.Request) {
	t, ok := stored(l, w, r, "turn", "retention may have removed it", l.o.Store.GetTurn)
	if !ok {
		return
	}
	if t.Parts == nil {
		t.Parts = []store.TurnStep{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"turn": t})
}
