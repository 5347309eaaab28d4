//go:build browser

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls/lens"
	"github.com/membrane-mcp/membrane/calls/lens/lenstest"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

// The Lens as an operator opens it (make test-browser): the real binary,
// the real test Ollama, real MCP clients calling tools, and a real
// chromium reading the page through a TCP proxy the test can cut.

// cutProxy forwards TCP connections to target. Cut closes every open
// connection and refuses new ones until Mend.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	cut    bool
	cuts   int
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.cuts++
	for c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) Mend() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func sandboxMode() string {
	if _, err := exec.LookPath("bwrap"); err == nil {
		return "bwrap"
	}
	return "rlimit"
}

func TestLensBrowserE2E(t *testing.T) {
	bin := binary(t)
	b := lenstest.New(t)
	ol := ollamatest.Start(t)
	ol.Create(t, "lenschat:latest", ollamatest.ChatModel())
	const token = "lens-browser-token-8d7c6b5a4f3e2d1c"
	_, base, _, _ := startHTTP(t, bin, "--token", token, "--ollama-host", ol.Host, "--ollama-refresh", "500ms",
		"--store", filepath.Join(t.TempDir(), "lens.db"), "--sandbox", sandboxMode())
	px := newCutProxy(t, strings.TrimPrefix(base, "http://"))
	page := "http://" + px.ln.Addr().String()
	port := strings.Split(px.ln.Addr().String(), ":")[1]
	cs := mcptest.ConnectHTTP(t, base+"/mcp", token, nil)
	measured := map[string]any{}
	shot := func(name string) { b.Screenshot("lens-" + name) }
	text := func(js string) string { return lenstest.Eval[string](b, js) }

	// The page and its script come with the CSP.
	for _, p := range []string{"/lens/", "/lens/lens.js", "/lens/lens.css"} {
		resp, err := http.Get(page + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != lens.CSP {
			t.Errorf("%s: %d, CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}

	t.Run("login", func(t *testing.T) {
		b.Do(chromedp.Navigate(page + "/lens/"))
		b.WaitJS("the login form", `document.body.dataset.state === 'login'`)
		shot("login")
		b.Do(chromedp.SetValue(chromedp.ID("token"), "not-the-token"), chromedp.Click(chromedp.CSS(`#login-form button`)))
		b.WaitJS("the refusal", `document.body.dataset.state === 'login-refused'`)
		if msg := text(`document.getElementById('login-error').textContent`); !strings.Contains(msg, "Refused") {
			t.Errorf("refusal text %q", msg)
		}
		for _, c := range b.Cookies() {
			if strings.HasPrefix(c.Name, "membrane_lens") {
				t.Errorf("a cookie after a wrong token: %+v", c)
			}
		}
		if n := lenstest.Eval[int](b, `document.querySelectorAll('#view *').length`); n != 0 {
			t.Errorf("%d elements of data shown before login", n)
		}
		b.Do(chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS(`#login-form button`)))
		b.WaitJS("the logged-in page", `document.body.dataset.state === 'ready'`)
		found := false
		for _, c := range b.Cookies() {
			if c.Name == "membrane_lens_"+port {
				found = true
				if !c.HTTPOnly || string(c.SameSite) != "Strict" || c.Path != "/lens/" || strings.Contains(c.Value, token) {
					t.Errorf("cookie flags %+v", c)
				}
			}
		}
		if !found {
			t.Errorf("no login cookie among %v", b.Cookies())
		}
		if strings.Contains(text(`document.cookie`), "membrane_lens") {
			t.Error("the page's script can read the login cookie")
		}
		if strings.Contains(text(`location.href`), token) {
			t.Error("the token is in the URL")
		}
	})

	t.Run("overview", func(t *testing.T) {
		b.Do(chromedp.Navigate(page + "/lens/#/overview"))
		b.WaitJS("the hosts", `!!document.querySelector('#hosts tr[data-host] .pill.ok')`)
		if v := text(`document.querySelector('#hosts tr[data-host] td:nth-child(3)').textContent`); !strings.Contains(v, "lenschat") {
			t.Errorf("host models %q", v)
		}
		if v := text(`document.getElementById('sandbox').textContent`); !strings.Contains(v, sandboxMode()) {
			t.Errorf("sandbox %q", v)
		}
		shot("overview")
		b.ColorScheme("dark")
		bg := text(`getComputedStyle(document.body).backgroundColor`)
		shot("overview-dark")
		b.ColorScheme("light")
		if light := text(`getComputedStyle(document.body).backgroundColor`); light == bg {
			t.Errorf("the dark theme has the light background %s", bg)
		}
	})

	t.Run("live", func(t *testing.T) {
		b.Do(chromedp.Navigate(page + "/lens/#/live"))
		b.WaitJS("the stream", `document.body.dataset.stream === 'open' && !!document.getElementById('lanes')`)
		// A call that runs one second shows while it runs: within a
		// second of its start.
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "sh", Arguments: map[string]any{"cmd": "sleep 1; echo lens-live"}})
		}()
		b.WaitJS("the running sh card", `!!document.querySelector('.callcard[data-call="sh"][data-outcome="running"]')`)
		measured["live_card_after_start_ms"] = time.Since(start).Milliseconds()
		select {
		case <-done:
			t.Error("the call's card showed only after the call ended")
		default:
		}
		<-done
		b.WaitJS("the finished sh card", `!!document.querySelector('.callcard[data-call="sh"][data-outcome="ok"]')`)
		if msg := text(`document.querySelector('.callcard[data-call="sh"][data-outcome="ok"] .msg').textContent`); !strings.Contains(msg, "exit 0") {
			t.Errorf("finished card %q", msg)
		}

		// A model call streams: its card's token count grows.
		tool := "chat_lenschat"
		ctx, cancel := context.WithCancel(context.Background())
		chatDone := make(chan struct{})
		go func() {
			defer close(chatDone)
			p := &sdk.CallToolParams{Name: tool, Arguments: map[string]any{"prompt": "a", "options": map[string]any{"num_predict": 1000000, "temperature": 0, "seed": 1}}}
			p.SetProgressToken("lens")
			cs.CallTool(ctx, p)
		}()
		sel := fmt.Sprintf(`document.querySelector('.callcard[data-call=%q][data-outcome="running"]')`, tool)
		var seen []float64
		for len(seen) < 3 {
			b.WaitJS("tokens of the model call", fmt.Sprintf(`(() => { const c = %s; return !!c && +c.dataset.progress > %v; })()`, sel, append([]float64{0}, seen...)[len(seen)]))
			v := lenstest.Eval[float64](b, fmt.Sprintf(`+%s.dataset.progress`, sel))
			seen = append(seen, v)
		}
		measured["streamed_token_counts"] = seen
		if msg := text(sel + `.querySelector('.msg').textContent`); !strings.Contains(msg, "tokens:") {
			t.Errorf("model card %q", msg)
		}
		shot("live")
		cancel()
		<-chatDone
		b.WaitJS("the cancelled model call", fmt.Sprintf(`!!document.querySelector('.callcard[data-call=%q][data-outcome="cancelled"]')`, tool))
	})

	t.Run("tools", func(t *testing.T) {
		b.Do(chromedp.Navigate(page + "/lens/#/tools?q=lens"))
		b.WaitJS("the model's tool", `!!document.querySelector('tr[data-tool="chat_lenschat"]')`)
		lenstest.Eval[int](b, `window.__noReload = 1`)
		ol.Create(t, "lensnew:latest", ollamatest.ChatModel())
		b.WaitJS("the new model's tool", `!!document.querySelector('tr[data-tool="chat_lensnew"]')`)
		if row := text(`document.querySelector('tr[data-tool="chat_lensnew"]').textContent`); !strings.Contains(row, "completion") || !strings.Contains(row, "lensnew") {
			t.Errorf("new tool row %q", row)
		}
		shot("tools")
		ol.Delete(t, "lensnew:latest")
		b.WaitJS("the deleted model's tool gone", `!document.querySelector('tr[data-tool="chat_lensnew"]')`)
		if lenstest.Eval[int](b, `window.__noReload || 0`) != 1 {
			t.Error("the page reloaded")
		}
		b.Do(chromedp.Navigate(page + "/lens/#/tool/chat_lenschat"))
		b.WaitJS("the tool page", `!!document.getElementById('tool-name') && !!document.querySelector('table.schema')`)
		if s := text(`document.querySelector('table.schema').textContent`); !strings.Contains(s, "prompt") {
			t.Errorf("schema %q", s)
		}
		if s := text(`document.getElementById('view').textContent`); !strings.Contains(s, "lenschat:latest") || !strings.Contains(s, "completion") {
			t.Errorf("tool page lacks the model: %.300s", s)
		}
		shot("tool")
	})

	t.Run("resume", func(t *testing.T) {
		b.Do(chromedp.Navigate(page + "/lens/#/live"))
		b.WaitJS("the stream", `document.body.dataset.stream === 'open' && document.querySelectorAll('.callcard').length > 0`)
		before := lenstest.Eval[int](b, `document.querySelectorAll('.callcard[data-call="sh"][data-outcome="ok"]').length`)
		px.Cut()
		b.WaitJS("the page to see the cut", `document.body.dataset.stream === 'reconnecting'`)
		for i := range 5 {
			mcptest.CallText(t, cs, "sh", map[string]any{"cmd": fmt.Sprintf("echo resume-%d", i)})
		}
		px.Mend()
		b.WaitJS("the five calls made while cut", fmt.Sprintf(`document.querySelectorAll('.callcard[data-call="sh"][data-outcome="ok"]').length >= %d`, before+5))
		if r := text(`document.body.dataset.resets || '0'`); r != "0" {
			t.Errorf("the page reset (%s) instead of resuming", r)
		}
	})

	t.Run("history", func(t *testing.T) {
		mcptest.CallText(t, cs, "sh", map[string]any{"cmd": "echo failing; exit 3"})
		b.Do(chromedp.Navigate(page + "/lens/#/history"))
		b.WaitJS("the history form", `!!document.getElementById('history-form')`)
		// The store commits in batches: search until the failure is in.
		var hash string
		for i := 0; ; i++ {
			b.Do(chromedp.SetValue(chromedp.ID("f-tool"), "sh"), chromedp.SetValue(chromedp.ID("f-outcome"), "tool_error"),
				chromedp.Click(chromedp.CSS(`#history-form button`)))
			b.WaitJS("the search", `location.hash.includes('outcome=tool_error') && document.getElementById('view').dataset.route === location.hash`)
			if lenstest.Eval[int](b, `document.querySelectorAll('#calls tbody tr').length`) > 0 {
				hash = text(`location.hash`)
				break
			}
			if i > 50 {
				t.Fatal("the failed call never showed in the history")
			}
			b.Do(chromedp.Navigate(page + "/lens/#/history"))
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(hash, "tool=sh") {
			t.Errorf("shareable hash %q", hash)
		}
		bad := lenstest.Eval[int](b, `[...document.querySelectorAll('#calls tbody tr')].filter((r) => r.dataset.call !== 'sh' || r.dataset.outcome !== 'tool_error').length`)
		if bad != 0 {
			t.Errorf("%d rows not sh/tool_error", bad)
		}
		shot("history")
		// The control: outcome ok finds the other sh calls, and only those.
		b.Do(chromedp.Navigate(page + "/lens/#/history?tool=sh&outcome=ok"))
		b.WaitJS("ok calls", `document.querySelectorAll('#calls tbody tr[data-outcome="ok"]').length >= 6 && !document.querySelector('#calls tbody tr[data-outcome="tool_error"]')`)
		b.Do(chromedp.Navigate(page + "/lens/" + hash))
		b.WaitJS("the shared URL's rows", `!!document.querySelector('#calls tbody tr[data-outcome="tool_error"] a')`)
		b.Do(chromedp.Click(chromedp.CSS(`#calls tbody tr[data-outcome="tool_error"] a`)))
		b.WaitJS("the call's page", `!!document.getElementById('call-detail')`)
		if a := text(`document.getElementById('call-args').textContent`); !strings.Contains(a, "exit 3") {
			t.Errorf("call args %q", a)
		}
		if d := text(`document.getElementById('call-detail').textContent`); !strings.Contains(d, "exit code3") || !strings.Contains(d, "isolation"+sandboxMode()) {
			t.Errorf("call detail %.400s", d)
		}
		shot("call")
	})

	t.Run("plots and turns", func(t *testing.T) {
		b.Do(chromedp.Navigate(page + "/lens/#/plots"))
		b.WaitJS("the plots", `document.querySelectorAll('svg.plot').length >= 2`)
		shot("plots")
		b.Do(chromedp.KeyEvent("6"))
		b.WaitJS("turns by key 6", `location.hash === '#/turns'`)
		shot("turns")
		b.Do(chromedp.KeyEvent("2"))
		b.WaitJS("tools by key 2", `location.hash === '#/tools' && !!document.querySelector('tr[data-tool]')`)
	})

	if p := b.Problems(); len(p) > 0 {
		t.Errorf("page errors or CSP violations: %v", p)
	}
	out, _ := json.Marshal(measured)
	t.Logf("measured: %s", out)
	lenstest.SaveJSON(t, "lens-e2e", measured)
}
