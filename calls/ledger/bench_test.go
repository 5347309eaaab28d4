package ledger_test

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/ledger"
	"github.com/membrane-mcp/membrane/calls/scrub"
)

// benchEvents are the finished calls the ledger benchmarks record: the
// no-op call of BenchmarkObservedCall, a sandbox run and a model call
// that failed, each without a secret (the common case).
func benchEvents() map[string]calls.Event {
	at := time.Date(2026, 12, 2, 6, 0, 0, 123456789, time.UTC)
	return map[string]calls.Event{
		"noop": {Type: calls.EventCallFinished, Time: at, ID: 42, Call: "noop", Kind: calls.KindTool,
			Session: "9f86d081884c7d65", Arguments: json.RawMessage(`{"x":1}`),
			Outcome: calls.OutcomeOK, Duration: 5 * time.Microsecond},
		"sh": {Type: calls.EventCallFinished, Time: at, ID: 43, Call: "sh", Kind: calls.KindTool, Group: "sandbox",
			Session: "9f86d081884c7d65", Client: "claude-code",
			Arguments: json.RawMessage(`{"command":"ls -la /workspace && cat notes.txt | head -n 20","timeout":30}`),
			Outcome:   calls.OutcomeToolError, Reason: "exit code 2: ls: cannot access 'x': No such file or directory",
			Duration: 23 * time.Millisecond, ResultBytes: 812,
			Info: &calls.Info{Run: &calls.RunInfo{ExitCode: 2, Isolation: "bwrap", StdoutBytes: 700, StderrBytes: 112,
				Start: 3 * time.Millisecond, Wall: 21 * time.Millisecond}}},
		"model": {Type: calls.EventCallFinished, Time: at, ID: 44, Call: "chat_qwen3", Kind: calls.KindModel,
			Session: "9f86d081884c7d65", Client: "orchestrator",
			Arguments: json.RawMessage(`{"prompt":"Summarise the file in three lines, please.","think":false}`),
			Outcome:   calls.OutcomeOK, Duration: 1800 * time.Millisecond, ResultBytes: 240,
			Info: &calls.Info{Model: &calls.ModelInfo{Model: "qwen3:0.6b", Host: "http://127.0.0.1:11434",
				TokensIn: 120, TokensOut: 48, FirstToken: 300 * time.Millisecond, Generation: time.Second}}},
	}
}

// BenchmarkLine is the ledger's cost per finished call: the line made and
// queued, with a batch written every 16 calls (to io.Discard).
func BenchmarkLine(b *testing.B) {
	scr := scrub.New(&scrub.Options{Secrets: []string{"mbr-test-token-5f0c1d2e3a4b"}})
	for name, e := range benchEvents() {
		b.Run(name, func(b *testing.B) {
			l := ledger.New(io.Discard, &ledger.Options{Scrubber: scr})
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				l.Observe(e)
				if i%16 == 15 {
					l.EndBatch()
				}
			}
		})
	}
}

// BenchmarkArgs is ledger.Args alone on arguments without a secret.
func BenchmarkArgs(b *testing.B) {
	scr := scrub.New(&scrub.Options{Secrets: []string{"mbr-test-token-5f0c1d2e3a4b"}})
	for name, e := range benchEvents() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				ledger.Args(scr, e.Arguments, ledger.DefaultMaxValueBytes, ledger.DefaultMaxArgsBytes)
			}
		})
	}
}
