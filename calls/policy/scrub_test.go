package policy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/scrub"
)

const (
	testServerToken = "srv-token-5f1c2a9e7b3d4c6a8e0f"
	testAWSKey      = "AKIAIOSFODNN7EXAMPLE"
	testPEM         = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----"
)

var testGitHubToken = "ghp_" + strings.Repeat("a1B2", 9)

// printCall answers with out as text, as structured content and, when
// fail is set, as a returned error too.
func printCall(name string, out func() string, fail bool) calls.Call {
	return calls.Call{
		Name: name, Kind: calls.KindTool, InputSchema: json.RawMessage(`{"type":"object"}`), Concurrency: -1,
		Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			if fail {
				return nil, errors.New("run failed: " + out())
			}
			res := calls.Text(out())
			res.Structured = map[string]any{"stdout": out(), "exit_code": 0, "lines": []any{out()}}
			return res, nil
		}),
	}
}

func scrubRouter(t *testing.T, sc *Scrubbing, out func() string) *calls.Router {
	t.Helper()
	var mw []calls.Middleware
	if sc != nil {
		mw = append(mw, sc.Middleware())
	}
	r := calls.NewRouter(&calls.RouterOptions{Middleware: mw})
	for _, c := range []calls.Call{printCall("sh", out, false), printCall("broken", out, true)} {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func structuredText(t *testing.T, res *calls.Result) string {
	t.Helper()
	b, err := json.Marshal(res.Structured)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScrubbingHidesSecretsInResults(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{
		testAWSKey:      "aws-access-key",
		testGitHubToken: "github-token",
		testPEM:         "private-key",
		testServerToken: "secret",
	}
	out := "id: " + testAWSKey + "\ngh: " + testGitHubToken + "\n" + testPEM + "\nserver: " + testServerToken + "\n"
	sc := NewScrubbing(scrub.New(&scrub.Options{Secrets: []string{testServerToken}}), nil)
	r := scrubRouter(t, sc, func() string { return out })

	res, err := r.Call(t.Context(), "sh", nil)
	if err != nil {
		t.Fatal(err)
	}
	text, st := res.TextOf(), structuredText(t, res)
	for secret, kind := range secrets {
		for where, got := range map[string]string{"text": text, "structured": st} {
			first := strings.SplitN(secret, "\n", 2)[0]
			if strings.Contains(got, first) {
				t.Errorf("%s still holds %q:\n%s", where, first, got)
			}
			if !strings.Contains(got, scrub.Marker(kind)) {
				t.Errorf("%s lacks the %s marker:\n%s", where, kind, got)
			}
		}
	}
	// What is not a secret is kept, numbers included.
	if !strings.Contains(text, "id: [membrane: redacted") || !strings.Contains(st, `"exit_code":0`) {
		t.Errorf("scrubbing lost the rest: %s / %s", text, st)
	}
	// 4 in the text, 4 in stdout, 4 in lines.
	if got := sc.Hits(); got != 12 {
		t.Errorf("hits = %d, want 12", got)
	}

	// An error a handler returns is scrubbed as well.
	_, err = r.Call(t.Context(), "broken", nil)
	if err == nil {
		t.Fatal("broken call did not fail")
	}
	if msg := err.Error(); strings.Contains(msg, testServerToken) || strings.Contains(msg, testAWSKey) || !strings.Contains(msg, "run failed: ") {
		t.Errorf("error text: %s", msg)
	}
}

func TestScrubbingLeavesLookAlikes(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("x"))
	img := make([]byte, 16<<10)
	rand.Read(img)
	out := strings.Join([]string{
		hex.EncodeToString(sum[:]),
		"123e4567-e89b-12d3-a456-426614174000",
		"data:image/png;base64," + base64.StdEncoding.EncodeToString(img),
		"AKIA is a prefix; AKIASHORT is not a key",
	}, "\n")
	sc := NewScrubbing(scrub.New(&scrub.Options{Secrets: []string{testServerToken}}), nil)
	r := scrubRouter(t, sc, func() string { return out })
	res, err := r.Call(t.Context(), "sh", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.TextOf() != out {
		t.Errorf("look-alikes changed:\n%.300s", res.TextOf())
	}
	if m := res.Structured.(map[string]any); m["stdout"] != out || m["exit_code"] != 0 {
		t.Errorf("structured content replaced although clean: %.300v", m)
	}
	if got := sc.Hits(); got != 0 {
		t.Errorf("hits = %d, want 0", got)
	}
}

// TestScrubbingOffChangesNothing is the control: without the middleware
// the same output reaches the caller as it was.
func TestScrubbingOffChangesNothing(t *testing.T) {
	t.Parallel()
	out := "id: " + testAWSKey + " server: " + testServerToken
	r := scrubRouter(t, nil, func() string { return out })
	res, err := r.Call(t.Context(), "sh", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.TextOf() != out || res.Structured.(map[string]any)["stdout"] != out {
		t.Errorf("output changed without scrubbing: %s", res.TextOf())
	}
}

// TestScrubbingSetAndPlainTokens: a reload's new tokens are hidden from
// then on, and a tokens file's plain tokens are what it feeds the scrubber
// (a sha256: digest has no plain text to hide).
func TestScrubbingSetAndPlainTokens(t *testing.T) {
	t.Parallel()
	const plain = "client-token-0a1b2c3d4e5f60718293"
	ts, err := ParseTokens([]byte(`{"tokens":[{"name":"a","token":"` + plain + `"},{"name":"b","token":"sha256:` + strings.Repeat("ab", 32) + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.PlainTokens(); len(got) != 1 || got[0] != plain {
		t.Fatalf("PlainTokens = %q", got)
	}
	out := "tok " + plain
	sc := NewScrubbing(scrub.New(nil), nil)
	r := scrubRouter(t, sc, func() string { return out })
	if res, _ := r.Call(t.Context(), "sh", nil); res.TextOf() != out {
		t.Fatalf("before Set: %s", res.TextOf())
	}
	sc.Set(scrub.New(&scrub.Options{Secrets: ts.PlainTokens()}))
	if res, _ := r.Call(t.Context(), "sh", nil); res.TextOf() != "tok "+scrub.Marker("secret") {
		t.Fatalf("after Set: %s", res.TextOf())
	}
}

// BenchmarkScrubbingOverhead times a call answering 16 KiB of ordinary
// shell output (text and structured) through the Scrubbing middleware
// against the same call without it, in the same run, and reports the
// ratio.
func BenchmarkScrubbingOverhead(b *testing.B) {
	var lines []string
	for i := range 256 {
		lines = append(lines, "drwxr-xr-x 2 user user 4096 Dec  1 23:00 dir-"+strings.Repeat("x", i%20)+" ok")
	}
	out := strings.Join(lines, "\n")
	sc := NewScrubbing(scrub.New(&scrub.Options{Secrets: []string{testServerToken}}), nil)
	mk := func(mw ...calls.Middleware) *calls.Router {
		r := calls.NewRouter(&calls.RouterOptions{Middleware: mw})
		if err := r.Add(printCall("sh", func() string { return out }, false)); err != nil {
			b.Fatal(err)
		}
		return r
	}
	plain, scrubbed := mk(), mk(sc.Middleware())
	var tPlain, tScrub float64
	for b.Loop() {
		start := nowNano()
		if _, err := plain.Call(b.Context(), "sh", nil); err != nil {
			b.Fatal(err)
		}
		mid := nowNano()
		if _, err := scrubbed.Call(b.Context(), "sh", nil); err != nil {
			b.Fatal(err)
		}
		tPlain += float64(mid - start)
		tScrub += float64(nowNano() - mid)
	}
	b.ReportMetric(tScrub/tPlain, "scrubbed/plain")
}

func nowNano() int64 { return time.Now().UnixNano() }
