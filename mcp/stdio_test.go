package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

// connectStdio serves r over mcp.ResilientStdioTransport on pipes and connects a
// go-sdk client to the other ends.
func connectStdio(t *testing.T, r *calls.Router, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	return connectStdioWith(t, r, nil, opts)
}

// connectStdioWith is connectStdio with server options.
func connectStdioWith(t *testing.T, r *calls.Router, so *mcp.ServerOptions, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	srv := mcp.NewServer(r, so)
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(context.Background(), &mcp.ResilientStdioTransport{In: inR, Out: outW})
		outW.Close()
	}()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, opts).
		Connect(t.Context(), &sdk.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		inW.Close()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		srv.Close()
	})
	return cs
}

func TestStdioListChanged(t *testing.T) {
	t.Parallel()
	r := routerWithEcho(t)
	cs := checkListChanged(t, r, "stdio", func(o *sdk.ClientOptions) *sdk.ClientSession { return connectStdio(t, r, o) })
	if _, text := callEcho(t, cs, "over stdio"); text != "over stdio" {
		t.Errorf("echo = %q", text)
	}
}

// floodCall answers n bytes of \x01, which JSON escapes to six bytes
// each.
func floodCall(n int) calls.Call {
	return call("flood", func(context.Context, *calls.Request) (*calls.Result, error) {
		return calls.Text(strings.Repeat("\x01", n)), nil
	})
}

// TestStdioOversizedResult: a result that would encode past go-sdk's 16
// MiB line is cut below DefaultMaxResultBytes with a marker, and the
// client's session lives on. The allow control is the same call with the
// bound switched off, which ends the session: the SDK behaviour the bound
// exists for.
func TestStdioOversizedResult(t *testing.T) {
	t.Parallel()
	if mcp.DefaultMaxResultBytes > sdk.DefaultMaxLineLength/2 {
		t.Fatalf("DefaultMaxResultBytes %d is not well under go-sdk's line limit %d", mcp.DefaultMaxResultBytes, sdk.DefaultMaxLineLength)
	}
	const n = 3 << 20 // 18 MiB once escaped
	r := routerWithEcho(t)
	mustAdd(t, r, floodCall(n))

	cs := connectStdio(t, r, nil)
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "flood"})
	if err != nil {
		t.Fatalf("oversized result: %v", err)
	}
	text := res.Content[0].(*sdk.TextContent).Text
	if !strings.Contains(text, "was cut from") || res.StructuredContent != nil {
		t.Errorf("oversized result: %d bytes of text ending %q, structured %v; want it cut with a marker", len(text), text[max(0, len(text)-200):], res.StructuredContent != nil)
	}
	if b, _ := json.Marshal(res); len(b) > mcp.DefaultMaxResultBytes {
		t.Errorf("result is %d bytes encoded, over %d", len(b), mcp.DefaultMaxResultBytes)
	}
	if _, text := callEcho(t, cs, "still here"); text != "still here" {
		t.Errorf("second call = %q", text)
	}
}

// TestSDKDropsSessionOnLongLine pins the go-sdk behaviour boundResult
// guards against: a line past DefaultMaxLineLength ends the client session
// of IOTransport and CommandTransport (which share the reader).
func TestSDKDropsSessionOnLongLine(t *testing.T) {
	t.Parallel()
	if sdk.DefaultMaxLineLength != 16<<20 {
		t.Errorf("go-sdk DefaultMaxLineLength = %d, want 16 MiB: revisit DefaultMaxResultBytes", sdk.DefaultMaxLineLength)
	}
	r := routerWithEcho(t)
	mustAdd(t, r, floodCall(3<<20))
	cs := connectStdioWith(t, r, &mcp.ServerOptions{MaxResultBytes: -1}, nil)
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "flood"}); err == nil {
		t.Fatal("an unbounded 18 MiB result reached the client: go-sdk's line limit changed")
	}
	if _, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err == nil {
		t.Error("the session outlived an over-long line: go-sdk's behaviour changed, boundResult may be relaxed")
	}
}

func callEcho(t *testing.T, cs *sdk.ClientSession, text string) (*sdk.CallToolResult, string) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return res, strings.Join(parts, "\n")
}

// FuzzStdioTransport feeds arbitrary input to the stdio transport: it must
// never panic, every line it writes back must be a JSON-RPC error object,
// and it must report the end of input.
func FuzzStdioTransport(f *testing.F) {
	for _, s := range []string{
		"", "\n", "garbage\n", "[]\n", "{}\n", `{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n",
		`{"jsonrpc":"2.0","id":"x","result":{}}` + "\n", `{"jsonrpc":"2.0","id":1,"method":` + "\n",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}\r\n", `{"jsonrpc":"2.0","id":[1],"method":"x"}`,
		strings.Repeat("x", 300) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		tr := &mcp.ResilientStdioTransport{In: bytes.NewReader(data), Out: &out, MaxMessageBytes: 256}
		conn, err := tr.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			if _, err := conn.Read(ctx); err != nil {
				if ctx.Err() != nil {
					t.Fatal("the transport never reported the end of input")
				}
				break
			}
		}
		conn.Close()
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Error   *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.JSONRPC != "2.0" || m.Error == nil || m.Error.Code == 0 || len(m.ID) == 0 {
				t.Fatalf("wrote %q, want a JSON-RPC error", sc.Bytes())
			}
		}
	})
}
