// Command membrane-load drives an MCP server over streamable HTTP with many
// concurrent sessions and reports throughput, latency percentiles and
// errors. It sends a fixed number of requests and stops.
//
//	membrane --http 127.0.0.1:8765 &
//	membrane-load -url http://127.0.0.1:8765/mcp -c 50 -n 20000 -method tools/call -tool sh -args '{"nope":1}'
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var (
		target  = flag.String("url", "http://127.0.0.1:8765/mcp", "MCP endpoint `URL`")
		token   = flag.String("token", os.Getenv("MEMBRANE_TOKEN"), "bearer `TOKEN` (default $MEMBRANE_TOKEN)")
		conc    = flag.Int("c", 50, "concurrent sessions")
		total   = flag.Int("n", 10000, "requests in all")
		method  = flag.String("method", "tools/list", "`METHOD` to send: tools/list, tools/call or ping")
		tool    = flag.String("tool", "sh", "tool to call with -method tools/call")
		args    = flag.String("args", `{"nope":1}`, "tool arguments, a JSON object (the default is a no-op: sh refuses it at once)")
		timeout = flag.Duration("timeout", 2*time.Minute, "stop after this long whatever is left")
		remote  = flag.Bool("allow-remote", false, "allow a URL that is not on this machine")
	)
	flag.Parse()
	if err := run(*target, *token, *conc, *total, *method, *tool, *args, *timeout, *remote); err != nil {
		fmt.Fprintln(os.Stderr, "membrane-load:", err)
		os.Exit(1)
	}
}

func run(target, token string, conc, total int, method, tool, args string, timeout time.Duration, remote bool) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q: want http://host:port/mcp", target)
	}
	if ip := net.ParseIP(strings.Trim(u.Hostname(), "[]")); !remote && u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-url %s is not on this machine; pass -allow-remote to load a server you run elsewhere", target)
	}
	if conc < 1 || total < conc {
		return errors.New("-c must be at least 1 and -n at least -c")
	}
	var body []byte
	switch method {
	case "tools/list", "ping":
		body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 2, "method": method})
	case "tools/call":
		var a map[string]any
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			return fmt.Errorf("-args: %v", err)
		}
		body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 2, "method": method, "params": map[string]any{"name": tool, "arguments": a}})
	default:
		return fmt.Errorf("-method %q: use tools/list, tools/call or ping", method)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2, MaxConnsPerHost: conc * 2}}
	post := func(sid string, body []byte) (string, []byte, error) {
		req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		resp, err := client.Do(req)
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
	sids := make([]string, conc)
	for i := range sids {
		sid, _, err := post("", []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"membrane-load","version":"1"}}}`))
		if err != nil {
			return fmt.Errorf("initialize: %v", err)
		}
		if _, _, err := post(sid, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)); err != nil {
			return fmt.Errorf("initialized: %v", err)
		}
		sids[i] = sid
	}
	defer func() {
		for _, sid := range sids {
			if sid == "" {
				continue
			}
			req, _ := http.NewRequest(http.MethodDelete, target, nil)
			req.Header.Set("Mcp-Session-Id", sid)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	var (
		next     atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, total)
		wg       sync.WaitGroup
		stop     = time.Now().Add(timeout)
		start    = time.Now()
	)
	for w := range conc {
		wg.Go(func() {
			var local []time.Duration
			for next.Add(1) <= int64(total) && time.Now().Before(stop) {
				t0 := time.Now()
				_, data, err := post(sids[w], body)
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
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p int) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, len(lat)*p/100)]
	}
	fmt.Printf("%s %s: %d requests from %d sessions in %s\n", method, target, len(lat), conc, elapsed.Round(time.Millisecond))
	fmt.Printf("  %.0f req/s   p50 %s   p90 %s   p99 %s   max %s\n", float64(len(lat))/elapsed.Seconds(),
		pct(50).Round(time.Microsecond), pct(90).Round(time.Microsecond), pct(99).Round(time.Microsecond), pct(100).Round(time.Microsecond))
	fmt.Printf("  errors: %d\n", errs.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("  first error: %s\n", e)
		return errors.New("some requests failed")
	}
	return nil
}
