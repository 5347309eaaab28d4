package mcptest_test

import (
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

func TestConnectAndCallText(t *testing.T) {
	cs := mcptest.Connect(t, mcptest.EchoRouter(t), nil)
	res, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "hi"})
	if res.IsError || text != "hi" {
		t.Errorf("CallText = %q, %v", text, res.IsError)
	}
}

func TestConnectHTTPWithToken(t *testing.T) {
	srv := mcp.NewServer(mcptest.EchoRouter(t), nil)
	h, err := srv.HTTPHandler(&mcp.HTTPOptions{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	defer srv.Close()
	cs := mcptest.ConnectHTTP(t, ts.URL+"/mcp", "tok", nil)
	if _, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "http"}); text != "http" {
		t.Errorf("over HTTP: %q", text)
	}
}

func TestBuildBinaryAndConnectStdio(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := mcptest.BuildBinary(t, "./cmd/membrane")
	if again := mcptest.BuildBinary(t, "./cmd/membrane"); again != bin {
		t.Errorf("second build path %q != %q", again, bin)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("binary %s: %v", bin, err)
	}
	cs := mcptest.ConnectStdio(t, bin, []string{"--ollama-host", "127.0.0.1:1"}, nil, &sdk.ClientOptions{})
	if cs.InitializeResult().ServerInfo.Name != "membrane" {
		t.Errorf("server = %+v", cs.InitializeResult().ServerInfo)
	}
	var names []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "sh") {
		t.Errorf("tools = %v", names)
	}
}

func TestFreeAddrListens(t *testing.T) {
	t.Parallel()
	addr := mcptest.FreeAddr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("FreeAddr gave %s, which cannot be listened on: %v", addr, err)
	}
	ln.Close()
}

func TestSyncBufferConcurrent(t *testing.T) {
	t.Parallel()
	var b mcptest.SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Errorf("%d bytes, want 800", n)
	}
}
