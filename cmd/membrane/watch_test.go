package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama"
)

type fakeTools struct {
	mu   sync.Mutex
	sets [][]ollama.ToolSpec
}

func (f *fakeTools) SetTools(specs []ollama.ToolSpec) error {
	if err := ollama.ValidateTools(specs); err != nil {
		return err
	}
	f.mu.Lock()
	f.sets = append(f.sets, specs)
	f.mu.Unlock()
	return nil
}

func (f *fakeTools) all() [][]ollama.ToolSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sets)
}

// startWatcher loads path as membrane would and returns its watcher.
func startWatcher(t *testing.T, path string, logs *mcptest.SyncBuffer) (*watcher, *fakeTools) {
	t.Helper()
	args := []string{"--config", path}
	cfg, err := loadConfig("membrane", args, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeTools{}
	reload := func(data []byte) (*Config, error) {
		return loadConfig("membrane", args, env(nil), func(string) ([]byte, error) { return data, nil })
	}
	return newWatcher(cfg, reload, fake, slog.New(slog.NewTextHandler(logs, nil))), fake
}

func writeNow(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWatchConfig checks, tick by tick, that a changed file reloads the
// tools once it holds still, and that a bad, an empty or a broken file
// changes nothing.
func TestWatchConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	writeNow(t, path, "ollama:\n  tools: [{tool: a, model: m}]\n")
	var logs mcptest.SyncBuffer
	w, fake := startWatcher(t, path, &logs)

	w.check() // the file as loaded: nothing to do
	writeNow(t, path, "ollama:\n  tools: [{tool: a, model: m}, {tool: b, model: n}]\n")
	w.check()
	if n := len(fake.all()); n != 0 {
		t.Fatalf("reloaded on the first read of a change (%d), before it held still", n)
	}
	w.check()
	if sets := fake.all(); len(sets) != 1 || len(sets[0]) != 2 || sets[0][1].Tool != "b" {
		t.Fatalf("after the change held still: reloads %+v, want one with a and b", sets)
	}
	for _, bad := range []string{
		"ollama:\n  tools: [{tool: 'bad name', model: m}]\n",              // fails the tools check
		"ollama:\n  tools: [{tool: ok, model: m}]\nsandbox: {procs: 0}\n", // fails another check: none applied
		"ollama: [\n", // does not parse
		"",            // empty
		"  \n",        // as good as empty
	} {
		writeNow(t, path, bad)
		w.check()
		w.check()
		w.check()
		if n := len(fake.all()); n != 1 {
			t.Fatalf("file %q: %d reloads, want it refused", bad, n)
		}
	}
	if got := strings.Count(logs.String(), "keeping the settings in use"); got != 5 {
		t.Errorf("%d refusals logged, want 5 (one per bad file, each once):\n%s", got, logs.String())
	}
	// Back to good: it applies.
	writeNow(t, path, "ollama:\n  tools: [{tool: c, model: m}]\n")
	w.check()
	w.check()
	if sets := fake.all(); len(sets) != 2 || sets[1][0].Tool != "c" {
		t.Errorf("a good file after bad ones: reloads %+v", sets)
	}
}

// TestWatchRunTicks drives run through its tick channel: an unbuffered
// send returns only once the previous check is done.
func TestWatchRunTicks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	writeNow(t, path, "ollama:\n  tools: [{tool: a, model: m}]\n")
	var logs mcptest.SyncBuffer
	w, fake := startWatcher(t, path, &logs)
	tick := make(chan time.Time)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { w.run(ctx, tick); close(done) }()
	writeNow(t, path, "ollama:\n  tools: [{tool: b, model: m}]\n")
	for range 3 { // the third send waits for the second check
		tick <- time.Time{}
	}
	cancel()
	<-done
	if sets := fake.all(); len(sets) != 1 || sets[0][0].Tool != "b" {
		t.Errorf("reloads %+v, want one with b", sets)
	}
}

// TestReloadSlowWriter rewrites the file 500 times, each time in random
// pieces with a check between pieces (the writer is slower than the
// ticks), and checks after every check that the tools in use are one of
// the complete files written: never a prefix, never none.
func TestReloadSlowWriter(t *testing.T) {
	rounds := 500
	if testing.Short() {
		rounds = 50
	}
	path := filepath.Join(t.TempDir(), "m.yaml")
	doc := func(n int) string {
		var b strings.Builder
		b.WriteString("# tools\nollama:\n  tools:\n")
		for i := range n {
			fmt.Fprintf(&b, "    - tool: t%d\n      model: m%d\n      system: Answer in %d words.\n", i, i, i+1)
		}
		b.WriteString("log:\n  level: info\n")
		return b.String()
	}
	writeNow(t, path, doc(3))
	var logs mcptest.SyncBuffer
	w, fake := startWatcher(t, path, &logs)
	rng := rand.New(rand.NewPCG(1, 2))
	want := 3
	inUse := func() int {
		sets := fake.all()
		if len(sets) == 0 {
			return 3
		}
		return len(sets[len(sets)-1])
	}
	for round := range rounds {
		n := 1 + rng.IntN(8)
		if n == want {
			n = want%8 + 1
		}
		content := doc(n)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.check() // sees the truncated, empty file
		for rest := content; rest != ""; {
			k := 1 + rng.IntN(min(len(rest), 40))
			if _, err := f.WriteString(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
			w.check()
			if got := inUse(); got != want && got != n {
				t.Fatalf("round %d: %d tools in use while writing a file of %d over one of %d: a partial file was applied", round, got, n, want)
			}
		}
		f.Close()
		w.check()
		w.check()
		if got := inUse(); got != n {
			t.Fatalf("round %d: %d tools in use after the file of %d held still; logs:\n%s", round, got, n, logs.String())
		}
		want = n
	}
	for i, set := range fake.all() {
		if len(set) == 0 {
			t.Fatalf("reload %d applied an empty tool set", i)
		}
	}
}
