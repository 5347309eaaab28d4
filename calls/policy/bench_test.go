package policy_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/policy"
	"github.com/membrane-mcp/membrane/mcp"
)

func benchRouter(b *testing.B, mw ...calls.Middleware) *calls.Router {
	r := calls.NewRouter(&calls.RouterOptions{Middleware: mw})
	for _, name := range []string{"noop", "sh", "python_run", "ollama_chat", "ollama_embed"} {
		if err := r.Add(calls.Call{
			Name: name, Kind: calls.KindTool, InputSchema: json.RawMessage(`{"type":"object"}`),
			Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) {
				return calls.Text("ok"), nil
			}),
		}); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

func connect(b *testing.B, r mcp.Router, o *mcp.ServerOptions) *sdk.ClientSession {
	srv := mcp.NewServer(r, o)
	st, ct := sdk.NewInMemoryTransports()
	go srv.Run(context.Background(), st)
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close(); srv.Close() })
	return cs
}

func timeCalls(b *testing.B, cs *sdk.ClientSession, n int) time.Duration {
	p := &sdk.CallToolParams{Name: "noop", Arguments: map[string]any{}}
	start := time.Now()
	for range n {
		res, err := cs.CallTool(context.Background(), p)
		if err != nil || res.IsError {
			b.Fatalf("call: %v %v", res, err)
		}
	}
	return time.Since(start)
}

// BenchmarkPolicyOverhead measures a no-op tools/call over MCP (in-memory
// transport) through the whole policy layer against the same call without
// it, in the same run. The policy side has everything on: a View with
// globs, a scoped principal with tool globs, a shared and a per-client rate
// limit (high enough never to refuse) and a concurrency cap. The two are
// timed in alternating rounds of 50 calls (one op is a round of each, in
// turns first) so that a noisy neighbour and the collector hit both; x_without is the ratio of their median
// rounds (1.0: no overhead), x_without_fastest that of their fastest.
func BenchmarkPolicyOverhead(b *testing.B) {
	base := connect(b, benchRouter(b), nil)

	set, err := policy.ParseTokens([]byte(`{"tokens":[{"name":"alice","token":"alice-token-0123456789",
		"tools":["noop","ollama_*"],"exclude_tools":["ollama_embed"],"concurrency":64,
		"rate_limits":[{"tools":"*","per_minute":6e8,"burst":1000000}]}]}`))
	if err != nil {
		b.Fatal(err)
	}
	store := policy.NewStore(set, "")
	pol, err := policy.New(policy.Options{Limits: []policy.Limit{{Tools: "noop", PerMinute: 6e8, Burst: 1000000, PerTool: true}}})
	if err != nil {
		b.Fatal(err)
	}
	sel, err := policy.NewSelector([]string{"noop", "ollama_*", "sh"}, []string{"python_*"})
	if err != nil {
		b.Fatal(err)
	}
	view := policy.NewView(benchRouter(b, pol.Middleware()), sel)
	b.Cleanup(view.Close)
	withPolicy := connect(b, view, &mcp.ServerOptions{
		// In memory there is no bearer token: stand in for the HTTP
		// layer's verified user.
		Scope: func(ctx context.Context, _ string) (context.Context, func(string) bool) {
			return store.Scope(ctx, "alice")
		},
	})

	const round = 50
	timeCalls(b, base, round) // warm up both
	timeCalls(b, withPolicy, round)
	var without, with []time.Duration
	first := true
	for b.Loop() { // one op: a round of each, the order swapped each time
		if first {
			without = append(without, timeCalls(b, base, round))
			with = append(with, timeCalls(b, withPolicy, round))
		} else {
			with = append(with, timeCalls(b, withPolicy, round))
			without = append(without, timeCalls(b, base, round))
		}
		first = !first
	}
	if refused := pol.Refused(); refused[policy.ReasonRate]+refused[policy.ReasonScope]+refused[policy.ReasonConcurrency] != 0 {
		b.Fatalf("the benchmark's calls were refused: %v", refused)
	}
	med := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	mw, mo := med(with), med(without)
	b.ReportMetric(float64(mw.Nanoseconds())/round/1e3, "µs/call")
	b.ReportMetric(float64(mo.Nanoseconds())/round/1e3, "µs/call_without")
	b.ReportMetric(float64(mw)/float64(mo), "x_without")
	// The fastest rounds are the ones a neighbour disturbed least.
	b.ReportMetric(float64(with[0])/float64(without[0]), "x_without_fastest")
}

// BenchmarkMiddlewareOnly is the policy middleware alone around a no-op
// handler, against the same router without it: the layer's own cost,
// without the transport that dwarfs it.
func BenchmarkMiddlewareOnly(b *testing.B) {
	set, _ := policy.ParseTokens([]byte(`{"tokens":[{"name":"alice","token":"alice-token-0123456789",
		"tools":["noop","ollama_*"],"rate_limits":[{"tools":"*","per_minute":6e8,"burst":1000000}]}]}`))
	p, _ := set.Lookup("alice-token-0123456789")
	pol, _ := policy.New(policy.Options{})
	plain, scoped := benchRouter(b), benchRouter(b, pol.Middleware())
	ctx := policy.WithPrincipal(context.Background(), p)
	call := func(r *calls.Router, ctx context.Context, n int) time.Duration {
		start := time.Now()
		for range n {
			if res, err := r.Call(ctx, "noop", nil); err != nil || res.IsError {
				b.Fatal(res, err)
			}
		}
		return time.Since(start)
	}
	b.ResetTimer()
	with := call(scoped, ctx, b.N)
	b.StopTimer()
	without := call(plain, context.Background(), b.N)
	b.ReportMetric(float64(with)/float64(without), "x_without")
}
