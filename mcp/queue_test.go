package mcp_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// piped is one go-sdk client connected to srv over mcp.ResilientStdioTransport on
// pipes; cut drops the connection as a client that goes away would.
type piped struct {
	cs  *sdk.ClientSession
	cut func()
}

// sessions connects n clients to one server.
func sessions(t testing.TB, srv *mcp.Server, n int, opts *sdk.ClientOptions) []piped {
	t.Helper()
	out := make([]piped, n)
	for i := range out {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan struct{})
		go func() {
			_ = srv.Run(context.Background(), &mcp.ResilientStdioTransport{In: inR, Out: outW})
			outW.Close()
			close(done)
		}()
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "q", Version: "1"}, opts).
			Connect(context.Background(), &sdk.IOTransport{Reader: outR, Writer: inW}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		cut := func() {
			once.Do(func() {
				inW.Close()
				outR.Close()
				<-done
			})
		}
		out[i] = piped{cs, cut}
		t.Cleanup(func() {
			cut()
			cs.Close()
		})
	}
	return out
}

// TestQueueStarvation: session A starts as many long calls as sh has
// slots, and more; session B's call still runs. When A disconnects, its
// queued calls are dropped without running and its running ones end.
func TestQueueStarvation(t *testing.T) {
	t.Parallel()
	const limit = 4
	r := calls.NewRouter(nil)
	var started atomic.Int32
	starts := make(chan string, 100)
	release := make(chan struct{})
	c := call("hold", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		started.Add(1)
		starts <- req.Session.ID()
		select {
		case <-release:
			return calls.Text("done"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	c.Concurrency = limit
	mustAdd(t, r, c)
	srv := mcp.NewServer(r, nil)
	t.Cleanup(srv.Close)
	queued := make(chan struct{}, 100)
	cs := sessions(t, srv, 2, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			if strings.HasPrefix(req.Params.Message, "queued:") {
				queued <- struct{}{}
			}
		},
	})
	a, b := cs[0].cs, cs[1].cs
	share := calls.DefaultShare(limit)
	var wg sync.WaitGroup
	callA := func(tok string) {
		p := &sdk.CallToolParams{Name: "hold", Arguments: map[string]any{}}
		p.SetProgressToken(tok)
		wg.Go(func() { _, _ = a.CallTool(context.Background(), p) })
	}
	for range share {
		callA("run")
	}
	for range share {
		<-starts
	}
	for range 3 {
		callA("wait")
	}
	for range 3 {
		<-queued
	}
	// B's call runs while A holds its share and has calls waiting.
	done := make(chan *sdk.CallToolResult, 1)
	go func() {
		res, err := b.CallTool(t.Context(), &sdk.CallToolParams{Name: "hold", Arguments: map[string]any{}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-starts
	if n := started.Load(); n != int32(share+1) {
		t.Fatalf("%d calls started, want A's %d and B's", n, share)
	}
	// A goes away: its running calls end, its queued ones never run.
	cs[0].cut()
	wg.Wait()
	close(release)
	if res := <-done; res == nil || res.IsError {
		t.Fatalf("B's call: %+v", res)
	}
	if res, err := b.CallTool(t.Context(), &sdk.CallToolParams{Name: "hold", Arguments: map[string]any{}}); err != nil || res.IsError {
		t.Fatalf("B's second call: %v %v", res, err)
	}
	if n := started.Load(); n != int32(share+2) {
		t.Errorf("%d calls started, want %d: A's queued calls ran after A left", n, share+2)
	}
}
