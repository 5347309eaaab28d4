package observers_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/observers"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// tinyDisk mounts a tmpfs of size bytes for the test (root only).
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		mcptest.Require(t, "mounting a tiny tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		mcptest.Require(t, "cannot mount a tmpfs: "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// bigCalls makes n calls of "sh" whose arguments are about 4 KiB each,
// failing t if any call fails.
func bigCalls(t *testing.T, r *calls.Router, n int) {
	t.Helper()
	args, _ := json.Marshal(map[string]string{"cmd": strings.Repeat("echo filler; ", 300)})
	for i := range n {
		res, err := r.Call(context.Background(), "sh", &calls.Request{Arguments: args})
		if err != nil || res.IsError || res.TextOf() != "ran" {
			t.Fatalf("call %d with the disk in trouble: %v %v", i, res.TextOf(), err)
		}
	}
}

func shRouter(t *testing.T, set *observers.Set) *calls.Router {
	r := mcptest.NoopRouter(t, &calls.RouterOptions{Observers: set.RouterObservers()})
	if err := r.Add(calls.Call{Name: "sh", Description: "sh", Kind: calls.KindTool, InputSchema: json.RawMessage(`{"type":"object"}`),
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("ran"), nil })}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFullDisk: the ledger and the store on a 256 KiB tmpfs that the calls
// fill. Every call still works; each writer says, once, clearly, that it
// cannot write and why, and counts what it lost. The control is the
// first calls, recorded while there was room.
func TestFullDisk(t *testing.T) {
	dir := tinyDisk(t, "256k")
	var logs mcptest.SyncBuffer
	set, err := observers.Open(&observers.Options{
		AuditLog: filepath.Join(dir, "audit.jsonl"),
		Store:    filepath.Join(dir, "membrane.db"),
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := shRouter(t, set)
	bigCalls(t, r, 5)
	r.Close() // the control: written while there was room
	set.Store.Flush()
	if set.Ledger.Lost() != 0 || set.Store.Lost() != 0 {
		t.Fatalf("lost %d lines and %d rows before the disk was full", set.Ledger.Lost(), set.Store.Lost())
	}
	r = shRouter(t, set)
	bigCalls(t, r, 400) // 1.6 MiB of arguments, on 256 KiB
	set.Close(r, nil)
	if set.Ledger.Lost() == 0 || set.Store.Lost() == 0 {
		t.Errorf("lost %d ledger lines and %d store rows on a full disk; want both counted", set.Ledger.Lost(), set.Store.Lost())
	}
	l := logs.String()
	if !strings.Contains(l, "audit ledger: cannot write") || !strings.Contains(l, "no space left on device") {
		t.Errorf("no clear ledger line about the full disk:\n%s", l)
	}
	if !strings.Contains(l, "trace store: cannot write") || !strings.Contains(l, "full") {
		t.Errorf("no clear store line about the full disk:\n%s", l)
	}
	if n := strings.Count(l, "audit ledger: cannot write"); n > 3 {
		t.Errorf("the ledger said it %d times; once (then every thousandth line) is enough", n)
	}
}

// TestReadOnlyStore: a store on a read-only filesystem, new or holding
// calls already. Calls go on without it, and the set says why: a store
// that cannot open gives StoreErr, one that opens but cannot write logs
// it and counts what it lost. The control is the same database written
// while its filesystem was writable.
func TestReadOnlyStore(t *testing.T) {
	rw := tinyDisk(t, "4m")
	set, err := observers.Open(&observers.Options{Store: filepath.Join(rw, "membrane.db")})
	if err != nil || set.Store == nil {
		t.Fatalf("open: %v %v", err, set.StoreErr)
	}
	r := shRouter(t, set)
	bigCalls(t, r, 3)
	set.Close(r, nil)
	if set.Store.Lost() != 0 {
		t.Fatalf("lost %d rows while writable", set.Store.Lost())
	}
	ro := t.TempDir()
	if out, err := exec.Command("mount", "--bind", "-o", "ro", rw, ro).CombinedOutput(); err != nil {
		mcptest.Require(t, "cannot bind-mount read-only: "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", ro).Run() })
	if err := os.WriteFile(filepath.Join(ro, "probe"), nil, 0o600); err == nil {
		t.Fatal("the read-only mount is writable")
	}
	for _, path := range []string{filepath.Join(ro, "membrane.db"), filepath.Join(ro, "new", "membrane.db")} {
		var logs mcptest.SyncBuffer
		s, err := observers.Open(&observers.Options{Store: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		r := shRouter(t, s)
		bigCalls(t, r, 20)
		s.Close(r, nil)
		switch {
		case s.Store == nil:
			if s.StoreErr == nil || !strings.Contains(s.StoreErr.Error(), "read-only") {
				t.Errorf("%s: no store, and StoreErr %v does not say the filesystem is read-only", path, s.StoreErr)
			}
		default:
			if s.Store.Lost() == 0 || !strings.Contains(logs.String(), "trace store: cannot write") {
				t.Errorf("%s: opened on a read-only filesystem, lost %d rows, log:\n%s", path, s.Store.Lost(), logs.String())
			}
		}
	}
}
