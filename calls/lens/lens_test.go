package lens

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/scrub"
	"github.com/membrane-mcp/membrane/calls/store"
)

const testToken = "lens-test-token-4f9a0c1b2d3e"

func verify(tok string) (string, bool) { return "operator", tok == testToken }

func noop(name string) calls.Call {
	return calls.Call{Name: name, Description: "does nothing", InputSchema: json.RawMessage(`{"type":"object","properties":{"x":{"type":"string","description":"ignored"}}}`), Kind: calls.KindTool, Group: "test",
		Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			if strings.Contains(string(req.Arguments), "fail") {
				return calls.Errorf("failed as asked"), nil
			}
			return calls.Text("ok"), nil
		})}
}

type fixture struct {
	r   *calls.Router
	l   *Lens
	st  *store.Store
	srv *httptest.Server
}

func newFixture(t testing.TB, o Options, withStore bool) *fixture {
	t.Helper()
	f := &fixture{r: calls.NewRouter(&calls.RouterOptions{QueueLength: -1})}
	if withStore {
		st, err := store.Open(filepath.Join(t.TempDir(), "lens.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f.st = st
		o.Store = st
		f.r.Observe(st)
	}
	if o.Verify == nil && !o.Open {
		o.Verify = verify
	}
	o.Tools = f.r
	f.l = New(&o)
	stop := f.r.Observe(f.l)
	t.Cleanup(stop)
	f.srv = httptest.NewServer(f.l)
	t.Cleanup(f.srv.Close)
	return f
}

// waitStored waits until the store holds n calls, failing the test when
// the store stops growing short of them (it dropped some).
func (f *fixture) waitStored(t testing.TB, n int) {
	t.Helper()
	last, still := -1, 0
	for {
		f.st.Flush()
		got, err := f.st.Count(context.Background(), store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if got == n {
			return
		}
		if got == last {
			if still++; still > 2000 {
				t.Fatalf("the store holds %d calls, not %d, and has stopped growing (observers: %+v)", got, n, f.r.ObserverStats())
			}
		} else {
			last, still = got, 0
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) do(t testing.TB, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f *fixture) login(t testing.TB) string {
	t.Helper()
	resp, body := f.do(t, "POST", "/lens/api/login", `{"token":"`+testToken+`"}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	c := resp.Cookies()[0]
	return c.Name + "=" + c.Value
}

func TestLoginCookie(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, false)
	resp, _ := f.do(t, "POST", "/lens/api/login", `{"token":"wrong"}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = f.do(t, "POST", "/lens/api/login", "token="+url.QueryEscape(testToken), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("right token (form): %d", resp.StatusCode)
	}
	c := resp.Cookies()[0]
	host := strings.TrimPrefix(f.srv.URL, "http://")
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/lens/" || c.Secure || c.Name != CookieName(host) || len(c.Value) < 40 || strings.Contains(c.Value, testToken) {
		t.Errorf("cookie %+v", c)
	}
	if resp, _ := f.do(t, "GET", "/lens/api/me", "", map[string]string{"Cookie": c.Name + "=" + c.Value}); resp.StatusCode != 200 {
		t.Errorf("with the cookie: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/lens/api/me", "", nil); resp.StatusCode != 401 {
		t.Errorf("without: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/lens/api/login", "", nil); resp.StatusCode != 405 {
		t.Errorf("GET login: %d", resp.StatusCode)
	}
	big := `{"token":"` + strings.Repeat("x", 10<<10) + `"}`
	if resp, _ := f.do(t, "POST", "/lens/api/login", big, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 413 {
		t.Errorf("huge login: %d", resp.StatusCode)
	}
}

// TestZeroOptionsRefuse: with no Verify and not Open, no token logs in;
// Open serves without one.
func TestZeroOptionsRefuse(t *testing.T) {
	t.Parallel()
	l := New(nil)
	srv := httptest.NewServer(l)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/lens/api/login", "application/json", strings.NewReader(`{"token":"anything"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("zero Options login: %d", resp.StatusCode)
	}
	open := httptest.NewServer(New(&Options{Open: true}))
	defer open.Close()
	resp, err = http.Get(open.URL + "/lens/api/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("Open overview: %d", resp.StatusCode)
	}
}

func TestLoginsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{MaxLogins: 3}, false)
	first := f.login(t)
	for range 3 {
		f.login(t)
	}
	if resp, _ := f.do(t, "GET", "/lens/api/me", "", map[string]string{"Cookie": first}); resp.StatusCode != 401 {
		t.Errorf("the oldest of 4 logins with room for 3: %d", resp.StatusCode)
	}
	if n := len(f.l.logins.m); n != 3 {
		t.Errorf("%d logins kept", n)
	}
}

func TestHeadersEverywhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, false)
	cookie := f.login(t)
	for _, p := range []string{"/lens/", "/lens/lens.js", "/lens/lens.css", "/lens/nope", "/lens/api/overview", "/lens/api/nope", "/other"} {
		for _, hdr := range []map[string]string{nil, {"Cookie": cookie}} {
			resp, _ := f.do(t, "GET", p, "", hdr)
			if resp.Header.Get("Content-Security-Policy") != CSP || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s: headers %v", p, resp.Header)
			}
		}
	}
	if !strings.Contains(CSP, "script-src 'self'") || strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP %q", CSP)
	}
	resp, body := f.do(t, "GET", "/lens/", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `src="lens.js"`) {
		t.Errorf("page: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/lens/api/overview", "", map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}); resp.StatusCode != 403 {
		t.Errorf("cross-site Origin: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/lens/api/overview", "", map[string]string{"Cookie": cookie, "Origin": f.srv.URL}); resp.StatusCode != 200 {
		t.Errorf("same Origin: %d", resp.StatusCode)
	}
}

// sse reads a Lens event stream.
type sse struct {
	resp *http.Response
	rd   *bufio.Reader
}

type message struct {
	id, event string
	events    []wireEvent
}

func (f *fixture) stream(t testing.TB, cookie, lastID string) *sse {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+"/lens/api/events", nil)
	req.Header.Set("Cookie", cookie)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	return &sse{resp: resp, rd: bufio.NewReader(resp.Body)}
}

// next returns the next message with data.
func (s *sse) next(t testing.TB) message {
	t.Helper()
	var m message
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if m.event != "" || m.events != nil {
				return m
			}
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			if m.event == "" {
				if err := json.Unmarshal([]byte(line[6:]), &m.events); err != nil {
					t.Fatalf("data %q: %v", line, err)
				}
			}
		}
	}
}

// finished collects call_finished events by call ID until n have come.
func (s *sse) finished(t testing.TB, n int, seen map[uint64]int) string {
	t.Helper()
	var last string
	for count(seen) < n {
		m := s.next(t)
		if m.event == "reset" {
			t.Fatal("unexpected reset")
		}
		last = m.id
		for _, e := range m.events {
			if e.Type == "call_finished" {
				seen[e.ID]++
			}
		}
	}
	return last
}

func count(m map[uint64]int) int { return len(m) }

func call(t testing.TB, r *calls.Router, sess *calls.Session, name, args string) {
	t.Helper()
	if _, err := r.Call(context.Background(), name, &calls.Request{Session: sess, Arguments: json.RawMessage(args)}); err != nil {
		t.Fatal(err)
	}
}

// TestResumeMissesNothing: a stream cut after some calls and resumed with
// its Last-Event-ID gets every call made while it was away, once.
func TestResumeMissesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Coalesce: time.Millisecond}, true)
	f.r.Add(noop("noop"))
	cookie := f.login(t)
	sess := f.r.OpenSession("s-1", "test")
	defer sess.Close()
	s := f.stream(t, cookie, "")
	for range 10 {
		call(t, f.r, sess, "noop", `{}`)
	}
	seen := map[uint64]int{}
	last := s.finished(t, 10, seen)
	s.resp.Body.Close()
	for range 25 { // while no page listens
		call(t, f.r, sess, "noop", `{}`)
	}
	s = f.stream(t, cookie, last)
	s.finished(t, 35, seen)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("call %d delivered %d times", id, n)
		}
	}
	// Each event names its stored call.
	f.waitStored(t, 35)
	cs, err := f.st.Calls(t.Context(), store.Filter{Tool: "noop", Limit: 100})
	if err != nil || len(cs) != 35 {
		t.Fatalf("stored %d calls: %v", len(cs), err)
	}
	if want := f.st.CallID(1); !strings.HasSuffix(want, "-1") {
		t.Errorf("CallID(1) = %q", want)
	}
}

// TestResumeTooOldResets: a resume id whose events left the ring gets a
// reset first, then the events kept; a fresh id from another server (too
// high) starts over.
func TestResumeTooOldResets(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{ReplayEvents: 8, Coalesce: time.Millisecond}, false)
	f.r.Add(noop("noop"))
	cookie := f.login(t)
	for range 20 {
		call(t, f.r, nil, "noop", `{}`)
	}
	for f.l.ring.last() < 41 { // the tool set's change and 40 call events
		time.Sleep(time.Millisecond)
	}
	s := f.stream(t, cookie, f.l.epoch+":1")
	m := s.next(t)
	if m.event != "reset" {
		t.Fatalf("first message %+v, want a reset", m)
	}
	m = s.next(t)
	if len(m.events) != 8 || m.events[0].Seq != f.l.ring.last()-7 {
		t.Errorf("after the reset: %d events from %d", len(m.events), m.events[0].Seq)
	}
	// An id from another run of the server, or past the last event, or
	// not an id: start over, with a reset first.
	for _, id := range []string{"otherrun:5", f.l.epoch + ":99999", "1", f.l.epoch + ":x"} {
		s := f.stream(t, cookie, id)
		if m := s.next(t); m.event != "reset" {
			t.Errorf("resume id %q: %+v, want a reset", id, m)
		}
		if m := s.next(t); len(m.events) != 8 {
			t.Errorf("resume id %q: then %d events", id, len(m.events))
		}
	}
	// The allow control: a current id resumes with no reset.
	s = f.stream(t, cookie, fmt.Sprintf("%s:%d", f.l.epoch, f.l.ring.last()-2))
	if m := s.next(t); m.event != "" || len(m.events) != 2 {
		t.Errorf("a current id: %+v", m)
	}
}

// TestBurstCoalesced: 1,000 calls arrive in a few messages, not 2,000.
func TestBurstCoalesced(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Coalesce: 50 * time.Millisecond}, false)
	f.r.Add(noop("noop"))
	cookie := f.login(t)
	s := f.stream(t, cookie, "")
	s.rd.ReadString('\n') // retry:
	s.rd.ReadString('\n')
	go func() {
		for range 1000 {
			f.r.Call(context.Background(), "noop", &calls.Request{})
		}
	}()
	seen := map[uint64]int{}
	msgs := 0
	for count(seen) < 1000 {
		m := s.next(t)
		msgs++
		for _, e := range m.events {
			if e.Type == "call_finished" {
				seen[e.ID]++
			}
		}
	}
	if msgs >= 1000 {
		t.Errorf("1000 calls took %d messages: not coalesced", msgs)
	}
	t.Logf("1000 calls in %d messages", msgs)
}

func TestStreamsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{MaxStreams: 1}, false)
	cookie := f.login(t)
	s := f.stream(t, cookie, "")
	if resp, _ := f.do(t, "GET", "/lens/api/events", "", map[string]string{"Cookie": cookie}); resp.StatusCode != 503 {
		t.Errorf("a second stream: %d", resp.StatusCode)
	}
	s.resp.Body.Close()
	for f.l.streams.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
	f.stream(t, cookie, "") // the allow control: room again
}

// TestLiveArgsScrubbed: a secret in the arguments never reaches the page.
func TestLiveArgsScrubbed(t *testing.T) {
	t.Parallel()
	const secret = "sk-live-abcdefghijklmnopqrstuvwxyz0123"
	f := newFixture(t, Options{Scrubber: scrub.New(&scrub.Options{Secrets: []string{secret}}), Coalesce: time.Millisecond}, false)
	f.r.Add(noop("noop"))
	cookie := f.login(t)
	s := f.stream(t, cookie, "")
	call(t, f.r, nil, "noop", `{"x":"`+secret+`","y":"`+strings.Repeat("long ", 400)+`"}`)
	for {
		m := s.next(t)
		for _, e := range m.events {
			if e.Type == "call_started" {
				if strings.Contains(string(e.Args), secret) || !strings.Contains(string(e.Args), `"x"`) || len(e.Args) > 2*previewArgsBytes {
					t.Errorf("args preview %s", e.Args)
				}
				return
			}
		}
	}
}

func TestToolsPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, false)
	for i := range 2000 {
		c := noop(fmt.Sprintf("tool_%04d", i))
		if i%10 == 0 {
			c.Description = "a special one"
		}
		f.r.Add(c)
	}
	cookie := f.login(t)
	get := func(q string) (total int, names []string) {
		_, body := f.do(t, "GET", "/lens/api/tools?"+q, "", map[string]string{"Cookie": cookie})
		var out struct {
			Total int
			Tools []toolRow
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Tools {
			names = append(names, r.Name)
		}
		return out.Total, names
	}
	total, names := get("")
	if total != 2000 || len(names) != defaultPage || names[0] != "tool_0000" {
		t.Errorf("first page: %d of %d, from %v", len(names), total, names[:1])
	}
	total, names = get("offset=1950&limit=100")
	if total != 2000 || len(names) != 50 || names[49] != "tool_1999" {
		t.Errorf("last page: %d", len(names))
	}
	if _, names = get("limit=100000"); len(names) != maxPage {
		t.Errorf("limit not capped: %d", len(names))
	}
	if total, _ = get("q=SPECIAL"); total != 200 {
		t.Errorf("filter: %d", total)
	}
	_, body := f.do(t, "GET", "/lens/api/tool?name=tool_0005", "", map[string]string{"Cookie": cookie})
	if !strings.Contains(body, `"ignored"`) {
		t.Errorf("tool detail: %.300s", body)
	}
	if resp, _ := f.do(t, "GET", "/lens/api/tool?name=nope", "", map[string]string{"Cookie": cookie}); resp.StatusCode != 404 {
		t.Errorf("unknown tool: %d", resp.StatusCode)
	}
}

// TestHistoryPages: the until cursor walks 250 calls in pages with no call
// twice and none left out; filters apply server-side.
func TestHistoryPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, true)
	f.r.Add(noop("noop"))
	f.r.Add(noop("other"))
	for i := range 250 {
		args := `{}`
		if i%5 == 0 {
			args = `{"x":"fail"}`
		}
		call(t, f.r, nil, "noop", args)
		time.Sleep(10 * time.Microsecond) // distinct start times for the cursor
	}
	call(t, f.r, nil, "other", `{}`)
	cookie := f.login(t)
	f.waitStored(t, 251)
	seen := map[string]bool{}
	q := url.Values{"tool": {"noop"}, "count": {"1"}}
	for page := 0; ; page++ {
		_, body := f.do(t, "GET", "/lens/api/calls?"+q.Encode(), "", map[string]string{"Cookie": cookie})
		var out struct {
			Calls []store.Call
			Next  string
			Total int
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err, body)
		}
		if page == 0 && out.Total != 250 {
			t.Errorf("total %d", out.Total)
		}
		for _, c := range out.Calls {
			if seen[c.ID] || c.Call != "noop" {
				t.Errorf("call %s %s again or not noop", c.ID, c.Call)
			}
			seen[c.ID] = true
		}
		if out.Next == "" {
			break
		}
		q.Set("until", out.Next)
		if page > 5 {
			t.Fatal("too many pages")
		}
	}
	if len(seen) != 250 {
		t.Errorf("%d calls over the pages, want 250", len(seen))
	}
	_, body := f.do(t, "GET", "/lens/api/calls?tool=noop&outcome=tool_error&count=1", "", map[string]string{"Cookie": cookie})
	if !strings.Contains(body, `"total":50`) {
		t.Errorf("tool_error filter: %.200s", body)
	}
	if resp, _ := f.do(t, "GET", "/lens/api/calls?outcome=bogus", "", map[string]string{"Cookie": cookie}); resp.StatusCode != 400 {
		t.Errorf("bad filter: %d", resp.StatusCode)
	}
	_, body = f.do(t, "GET", "/lens/api/stats?window=1h", "", map[string]string{"Cookie": cookie})
	var st struct {
		Buckets  []store.Bucket
		Outcomes map[string]int
	}
	json.Unmarshal([]byte(body), &st)
	ok, failed := 0, 0
	for _, b := range st.Buckets {
		ok, failed = ok+b.OK, failed+b.Failed
	}
	if ok != 201 || failed != 50 || st.Outcomes["tool_error"] != 50 {
		t.Errorf("stats: %d ok %d failed, %v", ok, failed, st.Outcomes)
	}
}

func TestImagesIn(t *testing.T) {
	t.Parallel()
	png := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	got := imagesIn(json.RawMessage(`{"prompt":"` + png + `","images":["` + png + `","photo.jpg"],"messages":[{"images":["/9j/xyz"]}]}`))
	// Keys in order: "images" before "messages".
	if len(got) != 3 || got[0]["src"] != "data:image/png;base64,"+png || got[1]["name"] != "photo.jpg" || got[2]["src"] != "data:image/jpeg;base64,/9j/xyz" {
		t.Errorf("images %v", got)
	}
}

func TestLatencySeries(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	var samples []store.Sample
	for i := range 100 {
		samples = append(samples, store.Sample{Started: t0.Add(time.Duration(i) * time.Second), Dur: time.Duration(i+1) * time.Millisecond})
	}
	pts := latencySeries(samples, 4)
	n := 0
	for _, p := range pts {
		n += p.N
		if p.P50 > p.P99 {
			t.Errorf("p50 %v > p99 %v", p.P50, p.P99)
		}
	}
	if n != 100 || len(pts) != 4 || pts[3].P99 != 100 {
		t.Errorf("series %+v", pts)
	}
	bins := histogram(samples)
	total := 0
	for _, b := range bins {
		total += b.N
	}
	if total != 100 || bins[len(bins)-1].Hi < 100 {
		t.Errorf("histogram %+v", bins)
	}
}

// FuzzLogin: whatever the body, a cookie comes with the right token and
// only with it (unless failed logins are being held back).
func FuzzLogin(f *testing.F) {
	f.Add("application/json", `{"token":"`+testToken+`"}`)
	f.Add("application/x-www-form-urlencoded", "token="+testToken)
	f.Add("application/json", `{"token":"`+testToken+` "}`)
	f.Add("text/plain", testToken)
	f.Add("application/json", `{"token":null}`)
	l := New(&Options{Verify: verify})
	f.Fuzz(func(t *testing.T, ctype, body string) {
		req := httptest.NewRequest("POST", "/lens/api/login", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		l.ServeHTTP(w, req)
		got := w.Result().Cookies()
		var token string
		if strings.HasPrefix(ctype, "application/json") {
			var v struct{ Token string }
			if json.Unmarshal([]byte(body), &v) == nil {
				token = v.Token
			}
		} else if vals, err := url.ParseQuery(body); err == nil {
			token = strings.TrimSpace(vals.Get("token"))
		}
		// A burst of failures makes even the right token wait (429); a
		// cookie still comes with the right token only.
		if w.Code == http.StatusTooManyRequests && len(got) == 0 {
			return
		}
		if (len(got) == 1) != (token == testToken && len(body) <= maxLoginBody) {
			t.Fatalf("%q %q: %d cookies, status %d", ctype, body, len(got), w.Code)
		}
	})
}

// TestFailedLoginsBounded: past ten failed logins in a second, even the
// right token waits; before them it logs in.
func TestFailedLoginsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, false)
	f.login(t) // the allow control
	for f.l.fails.allow(time.Now()) {
		f.do(t, "POST", "/lens/api/login", `{"token":"guess"}`, map[string]string{"Content-Type": "application/json"})
	}
	resp, _ := f.do(t, "POST", "/lens/api/login", `{"token":"`+testToken+`"}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 429 && !f.l.fails.allow(time.Now()) {
		t.Errorf("after the failures: %d", resp.StatusCode)
	}
	if resp.StatusCode == 429 && (resp.Header.Get("Retry-After") == "" || len(resp.Cookies()) != 0) {
		t.Errorf("429 without Retry-After, or with a cookie")
	}
}

// TestImagesKept: a call's base64 images are kept for its page, bounded in
// number and bytes, the oldest out first.
func TestImagesKept(t *testing.T) {
	t.Parallel()
	png := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	c := newImageCache(3, 1<<20)
	for i := range 5 {
		c.keep(fmt.Sprint(i), json.RawMessage(`{"prompt":"x","images":["`+png+`","not-an-image"]}`))
	}
	c.keep("none", json.RawMessage(`{"prompt":"`+png+`"}`))
	if c.get("0") != nil || c.get("1") != nil || len(c.get("4")) != 1 || c.get("none") != nil || len(c.order) != 3 {
		t.Errorf("kept %v", c.order)
	}
	big := newImageCache(10, 300)
	big.keep("a", json.RawMessage(`{"images":["`+png+`"]}`))
	big.keep("b", json.RawMessage(`{"images":["`+png+`"]}`))
	big.keep("c", json.RawMessage(`{"images":["`+png+strings.Repeat("A", 400)+`"]}`))
	if big.bytes > 300 || big.get("c") != nil || big.get("b") == nil {
		t.Errorf("byte bound: %d bytes, %v", big.bytes, big.order)
	}
}

func TestTurnsPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, true)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	const n = 130
	for i := range n {
		tr := &store.Turn{ID: fmt.Sprintf("turn-%03d", i), Conversation: "conv-" + fmt.Sprint(i%2), Started: base.Add(time.Duration(i) * time.Second),
			DurMS: 1500, Model: "qwen", Question: fmt.Sprintf("question %d", i), Answer: fmt.Sprintf("answer %d", i),
			Steps: 1, TokensIn: 10, TokensOut: 5, Outcome: "ok"}
		if i == n-1 {
			tr.Parts = []store.TurnStep{
				{Step: 1, Kind: "model", Name: "qwen", Started: tr.Started, DurMS: 800, TokensIn: 10, TokensOut: 5, FirstTokenMS: 120, Outcome: "ok"},
				{Step: 1, Kind: "tool", Name: "sh", Started: tr.Started.Add(time.Second), DurMS: 40, Outcome: "tool_error", Reason: "exit 1", Args: json.RawMessage(`{"cmd":"false"}`), ResultBytes: 7},
			}
		}
		if err := f.st.RecordTurn(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	f.st.Flush()
	cookie := f.login(t)
	hdr := map[string]string{"Cookie": cookie}
	seen := map[string]bool{}
	q := url.Values{"limit": {"50"}}
	var prev time.Time
	for page := 0; ; page++ {
		resp, body := f.do(t, "GET", "/lens/api/turns?"+q.Encode(), "", hdr)
		if resp.StatusCode != 200 {
			t.Fatalf("turns: %d %s", resp.StatusCode, body)
		}
		var out struct {
			Turns []store.Turn
			Next  string
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err, body)
		}
		if page == 0 && (len(out.Turns) == 0 || out.Turns[0].ID != "turn-129" || out.Turns[0].Question != "question 129") {
			t.Fatalf("first page does not start with the newest turn: %.300s", body)
		}
		for _, tr := range out.Turns {
			if seen[tr.ID] || len(tr.Parts) != 0 {
				t.Errorf("turn %s again, or with its steps in the list", tr.ID)
			}
			if !prev.IsZero() && !tr.Started.Before(prev) {
				t.Errorf("turn %s not older than the one before it", tr.ID)
			}
			seen[tr.ID], prev = true, tr.Started
		}
		if out.Next == "" {
			break
		}
		q.Set("until", out.Next)
		if page > 3 {
			t.Fatal("too many pages")
		}
	}
	if len(seen) != n {
		t.Errorf("%d turns over the pages, want %d", len(seen), n)
	}
	_, body := f.do(t, "GET", "/lens/api/turns?conversation=conv-1&limit=500", "", hdr)
	if c := strings.Count(body, `"conversation":"conv-1"`); c != n/2 || strings.Contains(body, "conv-0") {
		t.Errorf("conversation filter: %d of conv-1", c)
	}

	resp, body := f.do(t, "GET", "/lens/api/turn?id=turn-129", "", hdr)
	var one struct{ Turn store.Turn }
	if err := json.Unmarshal([]byte(body), &one); err != nil || resp.StatusCode != 200 {
		t.Fatalf("turn: %d %v %s", resp.StatusCode, err, body)
	}
	if p := one.Turn.Parts; len(p) != 2 || p[0].Kind != "model" || p[0].TokensOut != 5 || p[0].FirstTokenMS != 120 ||
		p[1].Kind != "tool" || p[1].Name != "sh" || p[1].Outcome != "tool_error" || !strings.Contains(string(p[1].Args), "false") || one.Turn.Answer != "answer 129" {
		t.Errorf("turn detail: %s", body)
	}
	for path, want := range map[string]int{"/lens/api/turn?id=nope": 404, "/lens/api/turn": 400, "/lens/api/turns?until=yesterday": 400, "/lens/api/turn?id=turn-000": 200} {
		if resp, body := f.do(t, "GET", path, "", hdr); resp.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, body, want)
		}
	}
	// Without a store the API says so rather than answering empty.
	g := newFixture(t, Options{}, false)
	if resp, _ := g.do(t, "GET", "/lens/api/turns", "", map[string]string{"Cookie": g.login(t)}); resp.StatusCode != 404 {
		t.Errorf("turns without a store: %d", resp.StatusCode)
	}
}

func TestOverviewLoadedAndQueued(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{
		Hosts: func() []Host {
			return []Host{{URL: "http://a", Up: true, Models: []string{"m1", "m2"}, Loaded: []string{"m1"}}, {URL: "http://b", Up: true, Models: []string{"m3"}}}
		},
		Queues: func() map[string]int { return map[string]int{"m1": 3, "m2": 0} },
	}, false)
	_, body := f.do(t, "GET", "/lens/api/overview", "", map[string]string{"Cookie": f.login(t)})
	var ov struct {
		Hosts  []Host
		Queued map[string]int `json:"queued_by_model"`
	}
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err, body)
	}
	if len(ov.Hosts) != 2 || len(ov.Hosts[0].Loaded) != 1 || ov.Hosts[0].Loaded[0] != "m1" || ov.Hosts[1].Loaded != nil {
		t.Errorf("hosts: %s", body)
	}
	if len(ov.Queued) != 1 || ov.Queued["m1"] != 3 {
		t.Errorf("queued (idle models left out): %s", body)
	}
	// The zero value reports an empty queue, not null.
	g := newFixture(t, Options{}, false)
	if _, body := g.do(t, "GET", "/lens/api/overview", "", map[string]string{"Cookie": g.login(t)}); !strings.Contains(body, `"queued_by_model":{}`) {
		t.Errorf("zero options overview: %s", body)
	}
}
