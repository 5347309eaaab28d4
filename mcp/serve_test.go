package mcp_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/mcp"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// ListenAndServe serves the MCP endpoint on the address it reports, and
// returns nil once its context ends.
func TestListenAndServe(t *testing.T) {
	t.Parallel()
	srv := mcp.NewServer(mcptest.EchoRouter(t), nil)
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- srv.ListenAndServe(ctx, "127.0.0.1:0", &mcp.ServeOptions{OnListen: func(a net.Addr) { addrc <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("ListenAndServe: %v", err)
	}
	cs := mcptest.ConnectHTTP(t, "http://"+addr.String()+mcp.DefaultPath, "", nil)
	if _, text := mcptest.CallText(t, cs, "echo", map[string]any{"text": "hi"}); text == "" {
		t.Error("echo answered nothing")
	}
	cs.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("after the context ended: %v", err)
	}
}

// An address already taken is a *ListenError that says so; one that does
// not parse is a *ListenError that does not.
func TestListenAndServeInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := mcp.NewServer(mcptest.EchoRouter(t), nil)
	defer srv.Close()
	err = srv.ListenAndServe(t.Context(), ln.Addr().String(), nil)
	var le *mcp.ListenError
	if !errors.As(err, &le) || !le.InUse() || le.Addr != ln.Addr().String() {
		t.Errorf("a taken address: %v (%#v)", err, le)
	}
	err = srv.ListenAndServe(t.Context(), "no-port", nil)
	if !errors.As(err, &le) || le.InUse() {
		t.Errorf("a bad address: %v", err)
	}
}

func TestCloseWithinIdle(t *testing.T) {
	t.Parallel()
	srv := mcp.NewServer(mcptest.EchoRouter(t), nil)
	if !srv.CloseWithin(time.Minute) {
		t.Error("an idle server did not close within a minute")
	}
}
