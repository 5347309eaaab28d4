//go:build browser

package lens

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/lens/lenstest"
	"github.com/membrane-mcp/membrane/calls/store"
)

// The browser suite of the Lens in a real chromium (make test-browser):
// the load it takes and how fast it opens. The end-to-end suite with the
// membrane binary and a real Ollama is in cmd/membrane.

// loginBrowser opens the Lens at base in b and logs in through the form.
func loginBrowser(t *testing.T, b *lenstest.Browser, base string) {
	t.Helper()
	b.Do(chromedp.Navigate(base + "/lens/"))
	b.WaitJS("the login form", `document.body.dataset.state === 'login'`)
	b.Do(chromedp.SetValue(chromedp.ID("token"), testToken), chromedp.Click(chromedp.CSS(`#login-form button`)))
	b.WaitJS("the logged-in page", `document.body.dataset.state === 'ready'`)
}

// loadavg is the machine's load, for reading the timings beside it.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

type longTasks struct {
	Count   int     `json:"count"`
	TotalMS float64 `json:"total_ms"`
	MaxMS   float64 `json:"max_ms"`
}

func measureLongTasks(b *lenstest.Browser) longTasks {
	var lt longTasks
	tasks := lenstest.Eval[[]struct {
		Start float64 `json:"start"`
		Dur   float64 `json:"dur"`
	}](b, `window.__lensLongTasks`)
	for _, x := range tasks {
		lt.Count++
		lt.TotalMS += x.Dur
		lt.MaxMS = max(lt.MaxMS, x.Dur)
	}
	return lt
}

// TestBrowserLoad: 1,000 calls a second, each stored, for 10 s, with the
// live view open. The page keeps up (the last call shows) and its
// main-thread long tasks are measured and reported.
func TestBrowserLoad(t *testing.T) {
	f := newFixture(t, Options{}, true)
	f.r.Add(noop("noop"))
	b := lenstest.New(t)
	loginBrowser(t, b, f.srv.URL)
	b.Do(chromedp.Navigate(f.srv.URL + "/lens/#/live"))
	b.WaitJS("the live view", `document.getElementById('lanes') !== null && document.body.dataset.stream === 'open'`)
	const perSecond, seconds, lanes = 1000, 10, 20
	// The baseline: the same page, open and idle for as long, on the same
	// (shared, busy) machine.
	before := measureLongTasks(b)
	time.Sleep(seconds * time.Second)
	idle := measureLongTasks(b)
	idle.Count -= before.Count
	idle.TotalMS -= before.TotalMS
	before = measureLongTasks(b)

	sessions := make([]*calls.Session, lanes)
	for i := range sessions {
		sessions[i] = f.r.OpenSession(fmt.Sprintf("load-%02d", i), "load")
		defer sessions[i].Close()
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	sent := 0
	for sent < perSecond*seconds {
		<-tick.C
		// Catch up to the schedule: 10 calls per tick on average.
		due := min(int(time.Since(start).Seconds()*perSecond), perSecond*seconds)
		var wg sync.WaitGroup
		for ; sent < due; sent++ {
			s := sessions[sent%lanes]
			wg.Go(func() { f.r.Call(context.Background(), "noop", &calls.Request{Session: s}) })
		}
		wg.Wait()
	}
	tick.Stop()
	elapsed := time.Since(start)
	last := f.l.ring.last()
	b.WaitJS("the page to catch up", fmt.Sprintf(`+document.body.dataset.seq >= %d`, last))
	// Responsive: a task queued now runs soon after.
	lag := lenstest.Eval[float64](b, `new Promise((ok) => { const t = performance.now(); setTimeout(() => ok(performance.now() - t), 0); })`)
	lt := measureLongTasks(b)
	lt.Count -= before.Count
	lt.TotalMS -= before.TotalMS
	cost := lenstest.Eval[string](b, `document.body.dataset.cost || ''`)
	cards := lenstest.Eval[int](b, `document.querySelectorAll('.callcard').length`)
	laneCount := lenstest.Eval[int](b, `document.querySelectorAll('.lane').length`)
	if laneCount < lanes || cards == 0 || cards > lanes*24 {
		t.Errorf("%d lanes, %d cards after the load", laneCount, cards)
	}
	// The store writes on its own goroutine; on a loaded machine it may
	// fall behind at this rate and drop events (it counts them). That is
	// reported, not a failure of the page.
	time.Sleep(time.Second)
	f.st.Flush()
	stored, _ := f.st.Count(context.Background(), store.Filter{})
	b.Screenshot("lens-live-under-load")
	lenstest.SaveJSON(t, "lens-load", map[string]any{
		"calls": sent, "seconds": elapsed.Seconds(), "calls_per_s": float64(sent) / elapsed.Seconds(),
		"events": last, "long_tasks": lt, "long_tasks_idle_baseline": idle, "timer_lag_ms_after": lag, "dropped_by_observer": f.r.ObserverStats(),
		"lanes": laneCount, "cards": cards, "stored": stored, "page_js_cost": cost, "loadavg": loadavg(),
	})
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("page problems: %v", p)
	}
}

// TestBrowserOpen100k: the Lens opened on a store of 100,000 calls. First
// paint and time to interactive (the page's own mark, set once its first
// view shows data) are measured and reported for the overview, the
// history and the plots.
func TestBrowserOpen100k(t *testing.T) {
	f := newFixture(t, Options{}, true)
	f.r.Add(noop("noop"))
	now := time.Now()
	const n = 100000
	tools := []string{"sh", "python_run", "ollama_chat", "qwen3", "embed"}
	outcomes := []calls.Outcome{calls.OutcomeOK, calls.OutcomeOK, calls.OutcomeOK, calls.OutcomeToolError, calls.OutcomeTimeout}
	for i := range n {
		f.st.Observe(calls.Event{Type: calls.EventCallFinished, Time: now.Add(-time.Duration(n-i) * 30 * time.Millisecond), ID: uint64(1_000_000 + i),
			Call: tools[i%len(tools)], Kind: calls.KindTool, Session: fmt.Sprintf("s-%d", i%50), Outcome: outcomes[i%len(outcomes)], Duration: time.Duration(i%997) * time.Millisecond})
	}
	f.waitStored(t, n)
	b := lenstest.New(t)
	loginBrowser(t, b, f.srv.URL)
	type timing struct {
		FirstPaintMS  float64 `json:"first_paint_ms"`
		FirstContent  float64 `json:"first_contentful_paint_ms"`
		InteractiveMS float64 `json:"interactive_ms"`
	}
	out := map[string]timing{}
	for _, view := range []string{"overview", "history", "plots", "tools"} {
		b.Do(chromedp.Navigate("about:blank"))
		b.Do(chromedp.Navigate(f.srv.URL + "/lens/#/" + view))
		b.WaitJS(view+" interactive", `performance.getEntriesByName('lens-interactive').length > 0`)
		tm := lenstest.Eval[timing](b, `(() => {
			const p = (n) => { const e = performance.getEntriesByName(n)[0]; return e ? e.startTime : -1; };
			return {first_paint_ms: p('first-paint'), first_contentful_paint_ms: p('first-contentful-paint'), interactive_ms: p('lens-interactive')};
		})()`)
		out[view] = tm
		b.Screenshot("lens-100k-" + view)
		if view == "history" {
			rows := lenstest.Eval[int](b, `document.querySelectorAll('#calls tbody tr').length`)
			count := lenstest.Eval[string](b, `document.getElementById('history-count').textContent`)
			if rows != 100 || count == "" {
				t.Errorf("history of 100k: %d rows, %q", rows, count)
			}
		}
	}
	lenstest.SaveJSON(t, "lens-open-100k", map[string]any{"views": out, "loadavg": loadavg()})
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("page problems: %v", p)
	}
}

// TestBrowserTurnsAndHosts: the turns view lists a recorded turn and its
// detail shows the question, each step and the answer; the overview shows
// the models a host has loaded and the calls waiting per model.
func TestBrowserTurnsAndHosts(t *testing.T) {
	f := newFixture(t, Options{
		Hosts: func() []Host {
			return []Host{{URL: "http://ollama.test", Up: true, Models: []string{"qwen", "llava"}, Loaded: []string{"qwen"}}}
		},
		Queues: func() map[string]int { return map[string]int{"qwen": 2} },
	}, true)
	now := time.Now().UTC()
	err := f.st.RecordTurn(context.Background(), &store.Turn{ID: "turn-b1", Started: now, DurMS: 900, Model: "qwen", Question: "what is in /tmp?",
		Answer: "nothing much", Steps: 1, TokensIn: 30, TokensOut: 12, Outcome: "ok", Parts: []store.TurnStep{
			{Step: 1, Kind: "model", Name: "qwen", Started: now, DurMS: 500, TokensIn: 30, TokensOut: 12, FirstTokenMS: 80, Outcome: "ok"},
			{Step: 1, Kind: "tool", Name: "sh", Started: now, DurMS: 30, Outcome: "ok", Args: []byte(`{"cmd":"ls /tmp"}`), ResultBytes: 3},
		}})
	if err != nil {
		t.Fatal(err)
	}
	b := lenstest.New(t)
	loginBrowser(t, b, f.srv.URL)
	b.WaitJS("the loaded models and the queue", `(() => { const c = document.querySelector('tr[data-host="http://ollama.test"] td.loaded');
		const q = document.querySelector('#queued tr[data-model="qwen"]');
		return c && c.textContent === 'qwen' && q && q.textContent.includes('2'); })()`)
	b.Do(chromedp.Navigate(f.srv.URL + "/lens/#/turns"))
	b.WaitJS("the turn listed", `document.querySelector('#turns tr[data-turn="turn-b1"]') !== null`)
	b.Do(chromedp.Click(chromedp.CSS(`#turns tr[data-turn="turn-b1"] a`)))
	b.WaitJS("the turn's detail", `(() => { const d = document.getElementById('turn-detail');
		return d && document.getElementById('turn-question').textContent === 'what is in /tmp?' &&
			document.getElementById('turn-answer').textContent === 'nothing much' &&
			document.querySelector('#turn-steps tr[data-kind="model"]').textContent.includes('12 out') &&
			document.querySelector('#turn-steps tr[data-kind="tool"][data-name="sh"]').textContent.includes('ls /tmp'); })()`)
	b.Screenshot("lens-turn")
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("page problems: %v", p)
	}
}
