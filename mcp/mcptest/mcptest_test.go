package mcptest_test

import (
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"syscall"
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

// TestProcs finds this test process with its parent and process group,
// and a child it started (control: the child is gone once reaped).
func TestProcs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	find := func(pid int) (mcptest.Proc, bool) {
		for _, p := range mcptest.Procs() {
			if p.PID == pid {
				return p, true
			}
		}
		return mcptest.Proc{}, false
	}
	me, ok := find(os.Getpid())
	if !ok || me.PPID != os.Getppid() || me.PGID != syscall.Getpgrp() || me.Comm == "" || me.State == "Z" {
		t.Fatalf("this process: %+v, %v", me, ok)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child, ok := find(cmd.Process.Pid)
	if !ok || child.PPID != os.Getpid() || child.Comm != "sleep" {
		t.Errorf("the child: %+v, %v", child, ok)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if p, ok := find(cmd.Process.Pid); ok {
		t.Errorf("the reaped child is still listed: %+v", p)
	}
}
