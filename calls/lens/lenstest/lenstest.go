// Package lenstest drives the Lens in a real browser for tests: Debian's
// chromium, headless, through the DevTools protocol (chromedp). It is only
// imported by the browser suite (build tag "browser", make test-browser).
//
// The browser is $MEMBRANE_TEST_CHROMIUM, else chromium on PATH; without
// one the test skips, or fails when $MEMBRANE_REQUIRE_E2E is 1. PNG
// screenshots go to $MEMBRANE_TEST_ARTIFACTS (default: a membrane-lens
// directory under the system's temporary directory).
package lenstest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// Chromium returns the browser binary, or skips (fails under
// MEMBRANE_REQUIRE_E2E=1) when there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MEMBRANE_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	mcptest.Require(t, "no chromium on PATH (apt-get install chromium, or make test-browser)")
	return ""
}

// Browser is one headless browser tab.
type Browser struct {
	Ctx context.Context
	t   testing.TB
}

// watch runs in every page before its own script (the DevTools protocol
// injects it; the page's CSP does not apply to it). It records uncaught
// errors and CSP violations in window.__lensProblems, and main-thread long
// tasks in window.__lensLongTasks.
const watch = `(() => {
  window.__lensProblems = [];
  window.__lensLongTasks = [];
  window.addEventListener('error', (e) => window.__lensProblems.push('error: ' + e.message));
  window.addEventListener('unhandledrejection', (e) => window.__lensProblems.push('rejection: ' + String(e.reason)));
  document.addEventListener('securitypolicyviolation', (e) => window.__lensProblems.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI));
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__lensLongTasks.push({start: e.startTime, dur: e.duration}); }).observe({type: 'longtask', buffered: true});
  } catch (e) {}
})();`

// New starts a headless chromium with a tab of its own, stopped when the
// test ends, with the watch script in every page.
func New(t testing.TB) *Browser {
	t.Helper()
	bin := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("no-sandbox", os.Geteuid() == 0), // chromium refuses its sandbox as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx, t: t}
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watch})
		return err
	}))
	if err != nil {
		cancel()
		cancelA()
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	t.Cleanup(func() { cancel(); cancelA() })
	return b
}

// Problems returns the page's uncaught errors and CSP violations so far.
func (b *Browser) Problems() []string {
	b.t.Helper()
	return Eval[[]string](b, "window.__lensProblems || []")
}

// Do runs actions in the tab, failing the test on an error.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Run runs one action in the tab and returns its value, failing the test
// on an error.
func Run[T any](b *Browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// Eval evaluates a JavaScript expression in the page (through the
// DevTools protocol, not the page's own script), awaiting a promise.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	return Run(b, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// WaitJS polls a JavaScript condition until it is true, failing the test
// after 50 seconds.
func (b *Browser) WaitJS(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(50*time.Second))); err != nil {
		b.t.Fatalf("waiting for %s (%s): %v", what, cond, err)
	}
}

// Cookies returns the cookies the browser holds for the page's URL,
// HttpOnly ones included.
func (b *Browser) Cookies() []*network.Cookie {
	b.t.Helper()
	return Run(b, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		return res.Cookies, err
	})
}

// ColorScheme makes the page see prefers-color-scheme as scheme ("dark",
// "light").
func (b *Browser) ColorScheme(scheme string) {
	b.t.Helper()
	b.Do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	}))
}

// Screenshot saves the page as NAME.png among the artifacts and returns
// its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	png := Run(b, chromedp.FullScreenshot(100))
	p := filepath.Join(ArtifactsDir(b.t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
	return p
}

// ArtifactsDir is where screenshots and measurements go.
func ArtifactsDir(t testing.TB) string {
	dir := os.Getenv("MEMBRANE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "membrane-lens")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// SaveJSON writes v as NAME.json among the artifacts.
func SaveJSON(t testing.TB, name string, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	p := filepath.Join(ArtifactsDir(t), name+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", p, b)
}
