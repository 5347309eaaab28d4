package mcp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp"
)

func remoteTool(name string, h calls.HandlerFunc) calls.Call {
	return calls.Call{Name: name, Description: name + " does things", Kind: calls.KindTool, Handler: h,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`)}
}

// serve runs r behind the real server adapter over in-memory transports and
// connects a Client to it, registering into a fresh local router.
func serve(t *testing.T, r *calls.Router, opts *mcp.ClientOptions) (*mcp.Client, *calls.Router) {
	t.Helper()
	srv := mcp.NewServer(r, &mcp.ServerOptions{Name: "remote"})
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.SDK().Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	local := calls.NewRouter(nil)
	c, err := mcp.Connect(t.Context(), ct, local, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		ss.Wait()
		srv.Close()
	})
	return c, local
}

func names(r *calls.Router) []string {
	var out []string
	for _, c := range r.List() {
		out = append(out, c.Name)
	}
	return out
}

func TestClientMirrorsRemoteTools(t *testing.T) {
	t.Parallel()
	remote := calls.NewRouter(nil)
	for _, c := range []calls.Call{
		remoteTool("echo", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			var in struct {
				Text string `json:"text"`
			}
			if err := calls.DecodeArgs(req.Arguments, &in); err != nil {
				return calls.Errorf("%v", err), nil
			}
			return calls.Text("echo: " + in.Text), nil
		}),
		remoteTool("fail", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			return calls.Errorf("exit status 1"), nil
		}),
	} {
		if err := remote.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	changed := make(chan calls.Change, 4)
	_, local := serve(t, remote, &mcp.ClientOptions{Name: "membrane", OnToolsChanged: func(ch calls.Change) { changed <- ch }})

	if got := names(local); fmt.Sprint(got) != "[echo fail]" {
		t.Fatalf("local tools = %v", got)
	}
	c, _ := local.Lookup("echo")
	if c.Description != "echo does things" || !strings.Contains(string(c.InputSchema), `"text"`) || c.Group != "mcp:membrane" {
		t.Errorf("call = %+v", c)
	}

	res, err := local.Call(t.Context(), "echo", &calls.Request{Arguments: json.RawMessage(`{"text":"hi"}`)})
	if err != nil || res.IsError || res.TextOf() != "echo: hi" {
		t.Errorf("echo = %+v, %v", res, err)
	}
	res, err = local.Call(t.Context(), "fail", nil)
	if err != nil || !res.IsError || res.TextOf() != "exit status 1" {
		t.Errorf("fail = %+v, %v", res, err)
	}

	// The server's list changes: the client follows.
	if err := remote.Add(remoteTool("late", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text("late"), nil })); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, func() bool { return slices.Contains(names(local), "late") })
	remote.Remove("fail")
	waitFor(t, changed, func() bool { return !slices.Contains(names(local), "fail") })
	if res, err := local.Call(t.Context(), "late", nil); err != nil || res.TextOf() != "late" {
		t.Errorf("late = %+v, %v", res, err)
	}
}

func waitFor(t *testing.T, changed <-chan calls.Change, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-changed:
		case <-t.Context().Done():
			t.Fatal("the client never followed the server's change")
		}
	}
}

func TestClientCancelReachesTheServer(t *testing.T) {
	t.Parallel()
	remote := calls.NewRouter(nil)
	started := make(chan struct{})
	stopped := make(chan error, 1)
	if err := remote.Add(remoteTool("slow", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	})); err != nil {
		t.Fatal(err)
	}
	_, local := serve(t, remote, nil)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-started; cancel() }()
	_, err := local.Call(ctx, "slow", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("server handler saw %v", err)
		}
	case <-t.Context().Done():
		t.Fatal("the server's handler was never cancelled")
	}
}

// Progress notifications reach the local request's Progress. The remote
// tool waits for each report to arrive before sending the next, since
// notifications that trail a call's result are not delivered.
func TestClientProgress(t *testing.T) {
	t.Parallel()
	remote := calls.NewRouter(nil)
	seen := make(chan struct{})
	if err := remote.Add(remoteTool("work", func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		for i := 1; i <= 3; i++ {
			req.Progress.Report(ctx, float64(i), 3, fmt.Sprintf("step %d", i))
			select {
			case <-seen:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return calls.Text("done"), nil
	})); err != nil {
		t.Fatal(err)
	}
	_, local := serve(t, remote, nil)
	var got []string
	res, err := local.Call(t.Context(), "work", &calls.Request{Progress: calls.ProgressFunc(func(_ context.Context, p, total float64, msg string) {
		got = append(got, fmt.Sprintf("%v/%v %s", p, total, msg))
		seen <- struct{}{}
	})})
	if err != nil || res.TextOf() != "done" {
		t.Fatalf("work = %+v, %v", res, err)
	}
	if fmt.Sprint(got) != "[1/3 step 1 2/3 step 2 3/3 step 3]" {
		t.Errorf("progress = %v", got)
	}
}

func TestClientCloseRemovesTools(t *testing.T) {
	t.Parallel()
	remote := calls.NewRouter(nil)
	if err := remote.Add(remoteTool("echo", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text(""), nil })); err != nil {
		t.Fatal(err)
	}
	srv := mcp.NewServer(remote, nil)
	defer srv.Close()
	st, ct := sdk.NewInMemoryTransports()
	if _, err := srv.SDK().Connect(t.Context(), st, nil); err != nil {
		t.Fatal(err)
	}
	local := calls.NewRouter(nil)
	if err := local.Add(remoteTool("mine", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text(""), nil })); err != nil {
		t.Fatal(err)
	}
	c, err := mcp.Connect(t.Context(), ct, local, &mcp.ClientOptions{Name: "a", Prefix: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(local)); got != "[a__echo mine]" {
		t.Fatalf("tools = %s", got)
	}
	if n, ok := c.RemoteName("a__echo"); !ok || n != "echo" {
		t.Errorf("RemoteName = %q, %v", n, ok)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(local)); got != "[mine]" {
		t.Errorf("after Close tools = %s", got)
	}
}

// A raw go-sdk server may name tools in ways OpenAI-style APIs reject; the
// client renames them and still calls the right remote tool.
func TestClientOddToolNames(t *testing.T) {
	t.Parallel()
	s := sdk.NewServer(&sdk.Implementation{Name: "odd"}, nil)
	long := strings.Repeat("x", 100)
	for _, n := range []string{"files.read", long, "no_schema_type"} {
		s.AddTool(&sdk.Tool{Name: n, InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "I am " + req.Params.Name}}}, nil
			})
	}
	st, ct := sdk.NewInMemoryTransports()
	ss, err := s.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	local := calls.NewRouter(nil)
	c, err := mcp.Connect(t.Context(), ct, local, &mcp.ClientOptions{Name: "odd.server"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := names(local)
	if len(got) != 3 || !slices.Contains(got, "files_read") {
		t.Fatalf("tools = %v", got)
	}
	for _, n := range got {
		if !calls.NamePattern.MatchString(n) {
			t.Errorf("%q does not match %s", n, calls.NamePattern)
		}
		remote, _ := c.RemoteName(n)
		res, err := local.Call(t.Context(), n, nil)
		if err != nil || res.TextOf() != "I am "+remote {
			t.Errorf("%s = %+v, %v", n, res, err)
		}
	}
}

func TestLocalNames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 70)
	tests := []struct {
		server string
		prefix bool
		tools  []string
		want   map[string]string
	}{
		{"m", false, []string{"sh", "python_run"}, map[string]string{"sh": "sh", "python_run": "python_run"}},
		{"membrane", true, []string{"sh"}, map[string]string{"sh": "membrane__sh"}},
		{"my server", true, []string{"get.file"}, map[string]string{"get.file": "my_server__get_file"}},
		// "a.b" would become "a_b", which another tool already is: it gets a hash.
		{"s", false, []string{"a.b", "a_b"}, map[string]string{"a_b": "a_b", "a.b": "a_b_" + hash8("s", "a.b")}},
		{"s", false, []string{long}, map[string]string{long: strings.Repeat("a", 55) + "_" + hash8("s", long)}},
	}
	for _, tt := range tests {
		got := mcp.LocalNames(tt.server, tt.prefix, tt.tools)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("LocalNames(%q, %v, %v) = %v, want %v", tt.server, tt.prefix, tt.tools, got, tt.want)
		}
	}
}

// hash8 is the short hash LocalNames appends to a name it had to change.
func hash8(server, tool string) string {
	h := sha256.Sum256([]byte(server + "\x00" + tool))
	return hex.EncodeToString(h[:4])
}

func FuzzLocalNames(f *testing.F) {
	f.Add("membrane", true, "sh", "python_run")
	f.Add("a.b", false, "x.y", "x_y")
	f.Add("", true, strings.Repeat("z", 80), "")
	f.Fuzz(func(t *testing.T, server string, prefix bool, a, b string) {
		tools := []string{a}
		if b != a {
			tools = append(tools, b)
		}
		got := mcp.LocalNames(server, prefix, tools)
		seen := map[string]bool{}
		for _, tool := range tools {
			n, ok := got[tool]
			if !ok {
				t.Fatalf("no name for %q", tool)
			}
			if !calls.NamePattern.MatchString(n) {
				t.Fatalf("%q -> %q does not match the pattern", tool, n)
			}
			if seen[n] {
				t.Fatalf("two tools named %q: %v", n, got)
			}
			seen[n] = true
		}
	})
}

func TestParseServers(t *testing.T) {
	t.Parallel()
	ok := `{"mcpServers": {
		"membrane": {"command": "/usr/local/bin/membrane", "args": ["--config", "m.yaml"], "env": {"OLLAMA_HOST": "127.0.0.1:11434"}},
		"remote": {"type": "http", "url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}},
		"off": {"command": "nothing", "disabled": true}
	}}`
	got, err := mcp.ParseServers([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["membrane"].Args[1] != "m.yaml" || got["membrane"].Env["OLLAMA_HOST"] == "" || got["remote"].Headers["Authorization"] != "Bearer x" {
		t.Errorf("parsed = %+v", got)
	}
	bad := []struct{ in, want string }{
		{`[]`, "not a JSON object"},
		{`{}`, `no "mcpServers" object`},
		{`{"mcpServers": {"a": {}}}`, `server "a": set "command"`},
		{`{"mcpServers": {"a": {"command": "x", "url": "http://h/mcp"}}}`, "not both"},
		{`{"mcpServers": {"a": {"url": "ftp://h"}}}`, "not an http:// or https:// URL"},
		{`{"mcpServers": {"a": {"type": "sse", "url": "http://h/sse"}}}`, "SSE transport is not supported"},
		{`{"mcpServers": {"a": {"command": "x", "arg": []}}}`, `unknown field "arg"`},
		{`{"mcpServers": {"a": {"command": "x", "env": {"A": 1}}}}`, `server "a"`},
		{`{"mcpServers": {"a": {"type": "stdio", "url": "http://h/mcp"}}}`, `needs "command"`},
	}
	for _, b := range bad {
		_, err := mcp.ParseServers([]byte(b.in))
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseServers(%s) = %v, want %q", b.in, err, b.want)
		}
	}
	path := filepath.Join(t.TempDir(), "servers.json")
	if err := os.WriteFile(path, []byte(ok), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := mcp.LoadServers(path); err != nil || len(s) != 2 {
		t.Errorf("LoadServers = %v, %v", s, err)
	}
	if _, err := mcp.LoadServers(path + ".missing"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseServers: a configuration file is user input; parsing it must
// never panic, and what it accepts is launchable or reachable.
func FuzzParseServers(f *testing.F) {
	f.Add([]byte(`{"mcpServers": {"m": {"command": "membrane", "args": ["-v"]}}}`))
	f.Add([]byte(`{"servers": {"h": {"url": "http://127.0.0.1:8765/mcp"}}}`))
	f.Add([]byte(`{"mcpServers": {"": {"command": "x"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := mcp.ParseServers(data)
		if err != nil {
			return
		}
		for name, sc := range got {
			if (sc.Command == "") == (sc.URL == "") {
				t.Fatalf("%q accepted with command %q and url %q", name, sc.Command, sc.URL)
			}
			_ = sc.Transport(nil)
		}
	})
}

// When the server goes away, its tools leave the router and the owner is
// told; calls made after that fail as unknown calls, not hang.
func TestClientServerGone(t *testing.T) {
	t.Parallel()
	remote := calls.NewRouter(nil)
	if err := remote.Add(remoteTool("echo", func(context.Context, *calls.Request) (*calls.Result, error) { return calls.Text(""), nil })); err != nil {
		t.Fatal(err)
	}
	srv := mcp.NewServer(remote, nil)
	defer srv.Close()
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.SDK().Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	local := calls.NewRouter(nil)
	ended := make(chan error, 1)
	c, err := mcp.Connect(t.Context(), ct, local, &mcp.ClientOptions{Name: "gone", OnSessionEnd: func(err error) { ended <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ss.Close()
	select {
	case <-ended:
	case <-t.Context().Done():
		t.Fatal("OnSessionEnd was not called")
	}
	if n := local.Len(); n != 0 {
		t.Errorf("%d tools left after the server went away", n)
	}
	if _, err := local.Call(t.Context(), "echo", nil); !errors.Is(err, calls.ErrUnknownCall) {
		t.Errorf("call after the end: %v", err)
	}
}
