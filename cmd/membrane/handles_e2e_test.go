package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
	"github.com/membrane-mcp/membrane/ollama/ollamatest"
)

const (
	handleAlice = "alice-token-0123456789ab"
	handleBob   = "bob-token-0123456789abcd"
)

// TestWorkspaceHandlesBinary is the 2026-07-28 HTTP client against the
// real binary, on the default (stateful) endpoint: go-sdk v1.8 negotiates
// the sessionless protocol, sh makes a workspace whose handle comes back,
// python_run by the handle reads what sh wrote (and so does a raw
// request), another token's request with the handle is refused, and once
// the handle has been idle past --workspace-idle-timeout it gives a clear
// error. A 2025-11-25 session beside it keeps its own workspace.
func TestWorkspaceHandlesBinary(t *testing.T) {
	bin := binary(t)
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"alice","token":"`+handleAlice+`"},{"name":"bob","token":"`+handleBob+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base, _, _ := startHTTP(t, bin, append([]string{"--tokens-file", tokens, "--workspace-idle-timeout", "3s"}, noOllama...)...)
	url := base + "/mcp"

	alice := mcptest.ConnectHTTPVersion(t, url, handleAlice, "", nil)
	if v := alice.InitializeResult().ProtocolVersion; v != newProto || alice.ID() != "" {
		t.Fatalf("negotiated %s with session %q, want %s without one", v, alice.ID(), newProto)
	}
	res, text := mcptest.CallText(t, alice, "sh", map[string]any{"cmd": "echo kept > note && echo made"})
	if res.IsError && strings.Contains(text, "bwrap") {
		mcptest.Require(t, "the sandbox cannot run here: "+text)
	}
	st, _ := res.StructuredContent.(map[string]any)
	handle, _ := st["workspace"].(string)
	if res.IsError || !calls.ValidWorkspaceHandle(handle) || !strings.Contains(text, handle) {
		t.Fatalf("sh without a handle: handle %q in %v:\n%s", handle, st, text)
	}
	res, text = mcptest.CallText(t, alice, "python_run", map[string]any{"code": "print(open('note').read().strip())", "workspace": handle})
	if res.IsError || !strings.Contains(text, "stdout:\nkept\n") {
		t.Fatalf("python_run by handle:\n%s", text)
	}
	// Raw requests, one connection each, carry the handle the same way.
	body, hdr := newProtoCall(4, "sh", fmt.Sprintf(`{"cmd":"cat note","workspace":%q}`, handle))
	hdr["Authorization"] = "Bearer " + handleAlice
	m, resp := rpc(t, base, body, hdr)
	if resp.StatusCode != 200 || !strings.Contains(fmt.Sprint(m), "kept") {
		t.Fatalf("raw sh by handle: %d %v", resp.StatusCode, m)
	}
	// Control: without the handle, a new, empty workspace.
	res, text = mcptest.CallText(t, alice, "sh", map[string]any{"cmd": "cat note"})
	if !res.IsError || strings.Contains(text, "stdout:\nkept") {
		t.Fatalf("a call without the handle read the file:\n%s", text)
	}

	// Another token: refused, and its text says what to do.
	bob := mcptest.ConnectHTTPVersion(t, url, handleBob, "", nil)
	res, text = mcptest.CallText(t, bob, "sh", map[string]any{"cmd": "cat note", "workspace": handle})
	if !res.IsError || strings.Contains(text, "kept") || !strings.Contains(text, "not a workspace of this token") {
		t.Fatalf("bob with alice's handle:\n%s", text)
	}

	// A session (2025-11-25) beside it: its own workspace, no handle.
	old := mcptest.ConnectHTTPVersion(t, url, handleAlice, "2025-11-25", nil)
	if old.ID() == "" {
		t.Fatal("a 2025-11-25 client got no session")
	}
	res, _ = mcptest.CallText(t, old, "sh", map[string]any{"cmd": "echo mine > s"})
	if st, _ := res.StructuredContent.(map[string]any); res.IsError || st["workspace"] != nil {
		t.Fatalf("a session's call: %v", st)
	}
	if res, text := mcptest.CallText(t, old, "sh", map[string]any{"cmd": "cat s"}); res.IsError || !strings.Contains(text, "mine") {
		t.Fatalf("a session's second call:\n%s", text)
	}

	// Idle past the timeout: a clear error. The sweep runs on its own
	// (every second at this timeout), so poll until the handle is gone.
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, text = mcptest.CallText(t, alice, "sh", map[string]any{"cmd": "true", "workspace": handle})
		if res.IsError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the handle never expired")
		}
		time.Sleep(4 * time.Second) // longer than the idle timeout: the call above reset it
	}
	if !strings.Contains(text, "expired after 3s") || !strings.Contains(text, "leave workspace out") {
		t.Fatalf("expired handle:\n%s", text)
	}
}

// newProtoCall is a tools/call of the sessionless protocol, with its
// headers.
func newProtoCall(id int, tool, args string) (string, map[string]string) {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s,"_meta":{`+
		`"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},`+
		`"io.modelcontextprotocol/clientCapabilities":{}}}}`, id, tool, args, newProto)
	return body, map[string]string{"Mcp-Protocol-Version": newProto, "Mcp-Method": "tools/call", "Mcp-Name": tool}
}

// TestListChangedHTTPListen: a 2026-07-28 HTTP client (no session) hears
// through subscriptions/listen that a model appeared in the real test
// Ollama, and lists its tool.
func TestListChangedHTTPListen(t *testing.T) {
	bin := binary(t)
	srv := ollamatest.Start(t)
	_, base, _, _ := startHTTP(t, bin, "--ollama-host", srv.URL, "--ollama-refresh", "200ms")
	changed := make(chan struct{}, 10)
	cs := mcptest.ConnectHTTPVersion(t, base+"/mcp", "", "", &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	if v := cs.InitializeResult().ProtocolVersion; v != newProto || cs.ID() != "" {
		t.Fatalf("negotiated %s with session %q", v, cs.ID())
	}
	before := toolSet(t, cs)
	srv.Create(t, "listen-tiny", ollamatest.ChatModel())
	deadline := time.After(60 * time.Second)
	for {
		select {
		case <-changed:
			after := toolSet(t, cs)
			if len(after) > len(before) {
				if !strings.Contains(strings.Join(after, ","), "listen") {
					t.Fatalf("tools after list_changed %v do not name the model", after)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no list_changed over subscriptions/listen; tools now %v", toolSet(t, cs))
		}
	}
}
