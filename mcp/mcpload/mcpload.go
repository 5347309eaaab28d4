// Package mcpload drives an MCP server over streamable HTTP with many
// concurrent sessions and measures what comes back: throughput, latency
// percentiles and errors. It sends a fixed number of requests and stops, so
// a load run is always bounded. The membrane-load command and membrane's
// HTTP benchmarks both use it.
//
// It speaks raw JSON-RPC over HTTP rather than going through an SDK client,
// so that what it measures is the server, not a client's overhead.
package mcpload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// protocolVersion is the MCP version the sessions initialize with.
const protocolVersion = "2025-11-25"

// Options says what load to send. URL, Body, Sessions and Requests are
// required.
type Options struct {
	// URL is the MCP endpoint, such as http://127.0.0.1:8765/mcp.
	URL string
	// Token is sent as a bearer token when not empty.
	Token string
	// Sessions is how many sessions send at once, one worker each.
	Sessions int
	// Requests is how many requests are sent in all, shared by the
	// sessions; it must be at least Sessions.
	Requests int
	// Body is the JSON-RPC request every worker sends, such as
	// {"jsonrpc":"2.0","id":2,"method":"tools/list"}. A reply counts as an
	// error unless it is a 2xx carrying a "result".
	Body []byte
}

// Result is what one run measured.
type Result struct {
	// Requests is how many requests were sent.
	Requests int
	// Errors counts the requests that failed or got no result.
	Errors int
	// FirstError describes the first failure, or is "".
	FirstError string
	// Elapsed is the time from the first request to the last reply,
	// sessions' set-up excluded.
	Elapsed time.Duration
	// Latencies holds each request's round trip, sorted.
	Latencies []time.Duration
}

// RPS returns the requests per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the latency at or under which p percent of the
// requests answered (100 is the slowest).
func (r *Result) Percentile(p int) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(len(r.Latencies)-1, len(r.Latencies)*p/100)]
}

// Run opens the sessions, sends the requests, closes the sessions and
// returns what it measured. It stops early when ctx is done; the requests
// not sent by then are not counted. An error means the load could not be
// set up (a bad option, or a session that could not initialize).
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.URL == "" || len(o.Body) == 0 {
		return nil, errors.New("mcpload: URL and Body are required")
	}
	if o.Sessions < 1 || o.Requests < o.Sessions {
		return nil, errors.New("mcpload: want at least one session and at least as many requests as sessions")
	}
	c := &client{
		url:   o.URL,
		token: o.Token,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: o.Sessions * 2,
			MaxConnsPerHost:     o.Sessions * 2,
		}},
	}
	defer c.http.CloseIdleConnections()

	sids := make([]string, o.Sessions)
	defer func() {
		for _, sid := range sids {
			if sid != "" {
				c.end(sid)
			}
		}
	}()
	for i := range sids {
		sid, _, err := c.post(ctx, "", []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+protocolVersion+`","capabilities":{},"clientInfo":{"name":"mcpload","version":"1"}}}`))
		if err != nil {
			return nil, fmt.Errorf("mcpload: initialize: %w", err)
		}
		if _, _, err := c.post(ctx, sid, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)); err != nil {
			return nil, fmt.Errorf("mcpload: initialized: %w", err)
		}
		sids[i] = sid
	}

	var (
		next     atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, o.Requests)
		wg       sync.WaitGroup
		start    = time.Now()
	)
	for w := range o.Sessions {
		wg.Go(func() {
			local := make([]time.Duration, 0, o.Requests/o.Sessions+1)
			for ctx.Err() == nil && next.Add(1) <= int64(o.Requests) {
				t0 := time.Now()
				_, data, err := c.post(ctx, sids[w], o.Body)
				local = append(local, time.Since(t0))
				if err == nil && !bytes.Contains(data, []byte(`"result"`)) {
					err = fmt.Errorf("no result: %.200s", data)
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res := &Result{Requests: len(lat), Errors: int(errs.Load()), Elapsed: time.Since(start), Latencies: lat}
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
	}
	slices.Sort(res.Latencies)
	return res, nil
}

type client struct {
	url, token string
	http       *http.Client
}

// post sends one JSON-RPC message on session sid ("" for none) and returns
// the session id the server named and the reply's body.
func (c *client) post(ctx context.Context, sid string, body []byte) (string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	c.auth(req)
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", protocolVersion)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode/100 != 2 {
		return "", data, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	return resp.Header.Get("Mcp-Session-Id"), data, nil
}

// end deletes session sid, best effort.
func (c *client) end(sid string) {
	req, err := http.NewRequest(http.MethodDelete, c.url, nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", sid)
	c.auth(req)
	if resp, err := c.http.Do(req); err == nil {
		resp.Body.Close()
	}
}

func (c *client) auth(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}
