package ledger_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/calls/scrub"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

const (
	token  = "mbr-test-token-5f0c1d2e3a4b"
	akia   = "AKIAIOSFODNN7EXAMPLE"
	pemKey = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----"
)

func call(name string, h calls.HandlerFunc) calls.Call {
	return calls.Call{Name: name, Description: name, InputSchema: json.RawMessage(`{"type":"object"}`), Kind: calls.KindTool, Handler: h}
}

func readLines(t *testing.T, path string) []ledger.Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ledger.Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e ledger.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, e)
	}
	return out
}

// TestMixedWorkload: ok calls, a tool error, a timeout, a cancel, a busy
// and a model call each appear exactly once, with the right outcome and
// reason, and the secrets in their arguments appear nowhere: not in the
// ledger, not in the router's log.
func TestMixedWorkload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var logs mcptest.SyncBuffer
	scr := scrub.New(&scrub.Options{Secrets: []string{token}})
	l, err := ledger.Open(path, &ledger.Options{Scrubber: scr, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := calls.NewRouter(&calls.RouterOptions{
		Logger:      slog.New(slog.NewJSONHandler(&logs, nil)),
		Observers:   []calls.Observer{l},
		Redact:      scr.String,
		QueueLength: -1, // past the limit is busy at once
	})
	release := make(chan struct{})
	running := make(chan struct{}, 1)
	mustAdd := func(c calls.Call) {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd(call("sh", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		var a struct{ Cmd string }
		_ = json.Unmarshal(req.Arguments, &a)
		res := calls.Text("ran")
		if strings.Contains(a.Cmd, "fail") {
			// A failing command whose error echoes the secret.
			res = calls.Errorf("exit code 1: rejected %s", a.Cmd)
		}
		res.Info = &calls.Info{Run: &calls.RunInfo{ExitCode: map[bool]int{true: 1}[res.IsError], Isolation: "bwrap", StdoutBytes: 3}}
		return res, nil
	}))
	slow := call("slow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	slow.Timeout = time.Millisecond
	mustAdd(slow)
	waits := call("waits", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		running <- struct{}{}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-release:
			return calls.Text("released"), nil
		}
	})
	waits.Concurrency = 1
	mustAdd(waits)
	model := call("qwen", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		res := calls.Text("hello")
		res.Info = &calls.Info{Model: &calls.ModelInfo{Model: "qwen3:0.6b", Host: "http://127.0.0.1:11434", TokensIn: 12, TokensOut: 40, FirstToken: 30 * time.Millisecond}}
		return res, nil
	})
	model.Kind = calls.KindModel
	mustAdd(model)

	sess := r.OpenSession("s-1", "claude-desktop")
	do := func(ctx context.Context, name, args string) {
		t.Helper()
		if _, err := r.Call(ctx, name, &calls.Request{Session: sess, Arguments: json.RawMessage(args)}); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v", name, err)
		}
	}
	secretArgs, _ := json.Marshal(map[string]string{"cmd": "fail --token " + token + " --key " + akia + " <<EOF\n" + pemKey + "\nEOF"})
	do(t.Context(), "sh", `{"cmd":"echo 1"}`)
	do(t.Context(), "sh", `{"cmd":"echo 2"}`)
	do(t.Context(), "sh", string(secretArgs))
	do(t.Context(), "slow", `{}`)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { do(ctx, "waits", `{"n":1}`); close(done) }()
	<-running
	do(t.Context(), "waits", `{"n":2}`) // busy: the first holds the only slot
	cancel()
	<-done
	do(t.Context(), "qwen", `{"prompt":"hi"}`)
	sess.Close()
	r.Close()

	lines := readLines(t, path)
	type key struct{ call, outcome string }
	got := map[key]int{}
	for _, e := range lines {
		got[key{e.Call, e.Outcome}]++
		if e.Session != "s-1" || e.Client != "claude-desktop" || e.ID == 0 || e.Time.IsZero() {
			t.Errorf("line lacks who and when: %+v", e)
		}
	}
	want := map[key]int{
		{"sh", "ok"}: 2, {"sh", "tool_error"}: 1, {"slow", "timeout"}: 1,
		{"waits", "cancelled"}: 1, {"waits", "busy"}: 1, {"qwen", "ok"}: 1,
	}
	if len(lines) != 7 {
		t.Errorf("%d lines, want 7", len(lines))
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v: %d lines, want %d (all: %v)", k, got[k], n, got)
		}
	}
	for _, e := range lines {
		switch {
		case e.Call == "sh" && e.Outcome == "tool_error":
			if !strings.HasPrefix(e.Reason, "exit code 1: rejected fail --token [membrane: redacted secret] --key [membrane: redacted aws-access-key]") {
				t.Errorf("reason %q", e.Reason)
			}
			if e.Run == nil || e.Run.ExitCode != 1 || e.Run.Isolation != "bwrap" || e.Run.StdoutBytes != 3 {
				t.Errorf("run %+v", e.Run)
			}
		case e.Call == "slow":
			if e.Reason != "timeout: slow did not finish within 1ms" {
				t.Errorf("timeout reason %q", e.Reason)
			}
		case e.Call == "waits" && e.Outcome == "busy":
			if !strings.HasPrefix(e.Reason, "busy: waits is already running 1 calls") {
				t.Errorf("busy reason %q", e.Reason)
			}
		case e.Call == "qwen":
			if e.Kind != "model" || e.Model == nil || e.Model.Model != "qwen3:0.6b" || e.Model.TokensIn != 12 || e.Model.TokensOut != 40 || e.Model.FirstTokenMS != 30 {
				t.Errorf("model line %+v %+v", e, e.Model)
			}
		case e.Call == "sh" && e.Outcome == "ok":
			if string(e.Args) != `{"cmd":"echo 1"}` && string(e.Args) != `{"cmd":"echo 2"}` {
				t.Errorf("args %s", e.Args)
			}
		}
	}
	raw, _ := os.ReadFile(path)
	for where, text := range map[string]string{"ledger": string(raw), "log": logs.String()} {
		for _, secret := range []string{token, akia, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "BEGIN PRIVATE KEY"} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s holds the secret %q:\n%s", where, secret, text)
			}
		}
	}
	if !strings.Contains(string(raw), "[membrane: redacted private-key]") {
		t.Errorf("the PEM block was not marked as redacted:\n%s", raw)
	}
	if !strings.Contains(logs.String(), `"reason":"exit code 1: rejected fail --token [membrane: redacted secret]`) {
		t.Errorf("the log lacks the scrubbed reason:\n%s", logs.String())
	}
}

func TestLongValuesAreCut(t *testing.T) {
	big := strings.Repeat("x", 5000)
	args, _ := json.Marshal(map[string]any{"code": big, "n": 3})
	got := ledger.Args(scrub.New(nil), args, 1024, 64<<10)
	var v struct {
		Code ledger.Cut
		N    int
	}
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if v.Code.Bytes != 5000 || len(v.Code.SHA256) != 64 || len(v.Code.Head) != 256 || v.N != 3 {
		t.Errorf("cut %+v n=%d", v.Code, v.N)
	}
	// Arguments too big as a whole become one cut.
	many := make([]string, 200)
	for i := range many {
		many[i] = strings.Repeat("y", 1000)
	}
	args, _ = json.Marshal(map[string]any{"list": many})
	got = ledger.Args(scrub.New(nil), args, 1024, 64<<10)
	if len(got) > 1024 || !strings.Contains(string(got), `"cut"`) {
		t.Errorf("whole cut: %.200s (%d bytes)", got, len(got))
	}
	// Not JSON at all: recorded as a scrubbed string.
	if got := ledger.Args(scrub.New(nil), json.RawMessage(`{"a":`), 1024, 64<<10); string(got) != `"{\"a\":"` {
		t.Errorf("bad JSON: %s", got)
	}
}

func finished(name string, args string) calls.Event {
	return calls.Event{Type: calls.EventCallFinished, Time: time.Now(), ID: 1, Call: name, Kind: calls.KindTool,
		Session: "s", Arguments: json.RawMessage(args), Outcome: calls.OutcomeOK, Duration: time.Millisecond}
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := ledger.Open(path, &ledger.Options{MaxFileBytes: 2000, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		l.Observe(finished("sh", `{"cmd":"echo hello"}`))
		l.EndBatch() // a batch per line, so that rotation is checked at each
	}
	l.Close()
	n := 0
	for _, p := range []string{path, path + ".1", path + ".2"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if fi.Size() > 2000 {
			t.Errorf("%s is %d bytes, past the limit", p, fi.Size())
		}
		n += len(readLines(t, p))
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("kept more rotated files than Keep")
	}
	if n == 0 || n >= 40 {
		t.Errorf("%d lines across the kept files; want some, and fewer than all 40 (the oldest rotated away)", n)
	}
}

// TestFullDisk: /dev/full fails every write with ENOSPC. The ledger says so
// in the log, counts the lost lines, and the calls go on.
func TestFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	var logs mcptest.SyncBuffer
	l, err := ledger.Open("/dev/full", &ledger.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := calls.NewRouter(&calls.RouterOptions{Observers: []calls.Observer{l}})
	r.Add(call("ok", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("fine"), nil }))
	for range 5 {
		if res, err := r.Call(t.Context(), "ok", nil); err != nil || res.TextOf() != "fine" {
			t.Fatalf("call with a full ledger disk: %v %v", res.TextOf(), err)
		}
	}
	r.Close()
	if l.Lost() != 5 {
		t.Errorf("lost %d lines, want 5", l.Lost())
	}
	if !strings.Contains(logs.String(), "audit ledger: cannot write") || !strings.Contains(logs.String(), "no space left on device") {
		t.Errorf("no clear log line:\n%s", logs.String())
	}
}

// TestDeletedFile: a ledger file deleted under membrane is noticed and
// started again; the allow control beside it is the same ledger writing to
// a file that stays.
func TestDeletedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var logs mcptest.SyncBuffer
	l, err := ledger.Open(path, &ledger.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Observe(finished("a", `{}`))
	l.EndBatch()
	if n := len(readLines(t, path)); n != 1 {
		t.Fatalf("%d lines before the delete", n)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// The check runs at most once a second; keep writing until it has.
	for i := 0; ; i++ {
		l.Observe(finished("b", `{}`))
		l.EndBatch()
		if _, err := os.Stat(path); err == nil {
			break
		}
		if i > 3000 {
			t.Fatal("the ledger never started a new file")
		}
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(logs.String(), "deleted or replaced") {
		t.Errorf("no log line about the deleted file:\n%s", logs.String())
	}
	if n := len(readLines(t, path)); n != 1 {
		t.Errorf("%d lines in the new file, want 1", n)
	}
}

func TestOpenFails(t *testing.T) {
	if _, err := ledger.Open(filepath.Join(t.TempDir(), "no", "such", "dir", "audit.jsonl"), nil); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

// TestSecretKeysHiddenInShortArgs: short arguments, recorded as they came
// when they hold nothing to hide, have the value of a key named like a
// secret hidden, however the key is spelt (a long s, a Kelvin sign), and
// the same arguments with an ordinary key (the control) are kept whole.
func TestSecretKeysHiddenInShortArgs(t *testing.T) {
	s := scrub.New(nil)
	for _, key := range []string{"password", "PassWord", "\u017fecret", "api_\u212aey", "Cookie"} {
		got := string(ledger.Args(s, json.RawMessage(`{"`+key+`":"hunter2"}`), 1024, 64<<10))
		if strings.Contains(got, "hunter2") {
			t.Errorf("key %q: the secret was recorded: %s", key, got)
		}
	}
	if got := string(ledger.Args(s, json.RawMessage(`{"user":"hunter2"}`), 1024, 64<<10)); got != `{"user":"hunter2"}` {
		t.Errorf("an ordinary key was changed: %s", got)
	}
}
