package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
)

// ClientOptions configures Connect. A nil *ClientOptions means the
// defaults.
type ClientOptions struct {
	// Name names the remote server in logs, in errors and in its router
	// group ("mcp:" + Name). Empty means "server".
	Name string
	// Prefix, when true, registers each remote tool as NAME__TOOL, so that
	// the tools of several servers cannot collide. Names are always
	// sanitised to calls.NamePattern (letters, digits, '_' and '-', at
	// most 64 characters), with a short hash where that changes or cuts
	// them.
	Prefix bool
	// CallTimeout bounds each remote call. Zero means the router's default.
	CallTimeout time.Duration
	// ClientName and ClientVersion are announced to the server. Empty means
	// "membrane-orchestrator" and "dev".
	ClientName, ClientVersion string
	// OnToolsChanged, when set, is called after the tool list was
	// refreshed because the server said it changed.
	OnToolsChanged func(calls.Change)
	// OnSessionEnd, when set, is called if the session ends without Close
	// (the server exited or the connection broke); the server's tools have
	// been removed from the router by then.
	OnSessionEnd func(err error)
	// PrefixName, when Prefix is set, is the SERVER part of NAME__TOOL.
	// Empty means ServerPrefix(Name). Callers that connect several
	// servers pass the names ServerPrefixes chose, which are unique.
	PrefixName string
	// Limits bound what the server's tool list may make the client hold.
	// Zero fields mean the defaults (see ListLimits).
	Limits ListLimits
	// Debounce is how long the tool list must stay quiet after a
	// notifications/tools/list_changed before it is listed again, so that
	// a burst of notifications costs one listing. Zero means
	// DefaultDebounce; a storm that never pauses is listed at most once
	// per 10×Debounce.
	Debounce time.Duration
	// ProtocolVersion is the newest protocol version offered. Empty means
	// the SDK's newest (2026-07-28): the client probes with server/discover
	// and falls back to initialize, and so to a session, when the server
	// does not take it. List changes are followed on either era
	// (subscriptions/listen, or the session's notifications).
	ProtocolVersion string
	// Logger receives the client's records. Nil discards. (A launched
	// server's own logs go to its stderr; MCP logging notifications are
	// deprecated and not requested.) Tools skipped and lists cut short are
	// logged at Warn, naming the server and the tool.
	Logger *slog.Logger
}

// ListLimits bound one server's tool list. A zero field means its default.
type ListLimits struct {
	// Pages is the most tools/list pages read per listing (default 100).
	Pages int
	// Tools is the most tools kept per server (default 1000).
	Tools int
	// ToolBytes is the largest a tool's input schema may be, in bytes of
	// JSON (default 64 KiB); a larger tool is skipped.
	ToolBytes int
	// TotalBytes bounds the name, description and schema bytes of all of
	// the server's tools together (default 4 MiB); tools past it are
	// dropped.
	TotalBytes int
	// Description is the longest description passed on, in bytes
	// (default 4 KiB); a longer one is cut and ends in "…".
	Description int
	// SchemaDepth is the deepest an input schema may nest objects and
	// arrays (default 32); a deeper tool is skipped.
	SchemaDepth int
}

// Defaults of ListLimits and ClientOptions.Debounce.
const (
	DefaultListPages      = 100
	DefaultListTools      = 1000
	DefaultToolBytes      = 64 << 10
	DefaultTotalToolBytes = 4 << 20
	DefaultDescription    = 4 << 10
	DefaultSchemaDepth    = 32
	DefaultDebounce       = 200 * time.Millisecond
)

func (l ListLimits) withDefaults() ListLimits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Pages, DefaultListPages)
	def(&l.Tools, DefaultListTools)
	def(&l.ToolBytes, DefaultToolBytes)
	def(&l.TotalBytes, DefaultTotalToolBytes)
	def(&l.Description, DefaultDescription)
	def(&l.SchemaDepth, DefaultSchemaDepth)
	return l
}

// ToolInfo is who a registered call really is: the server and the tool's
// own name there, which approval decisions are made on (never the local
// name, which may have been cleaned, cut or hashed), and a digest of the
// tool's definition as listed, which changes whenever the server changes
// the tool's description, schema or annotations.
type ToolInfo struct {
	// Server is the server's name (ClientOptions.Name).
	Server string
	// Name is the tool's name on the server.
	Name string
	// Local is the call's name in the router.
	Local string
	// Description is the description as passed on (possibly cut).
	Description string
	// Digest is a hex SHA-256 of the tool's full definition.
	Digest string
}

// Client holds one connection to a remote MCP server and keeps the
// server's tools registered as calls in a router, following
// notifications/tools/list_changed. Calling one of those calls calls the
// remote tool: arguments pass through verbatim, cancelling the context
// sends notifications/cancelled, progress notifications reach the
// request's Progress, and the result comes back as a calls.Result (a
// remote tool error stays a tool error).
type Client struct {
	name   string
	group  string
	opts   ClientOptions
	router *calls.Router
	log    *slog.Logger
	cs     *sdk.ClientSession

	mu     sync.Mutex
	remote map[string]ToolInfo // local name -> who it is
	// checked holds the schema verdicts of the last listing, by tool
	// digest, so that listing unchanged tools again costs no new check.
	checked map[string]error
	closed  bool
	refresh chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup

	progress sync.Map // token string -> calls.Progress
	nextTok  atomic.Int64

	// handle is the workspace handle the server's last result named
	// (see carryWorkspace).
	handle atomic.Value // string
}

// Connect connects to the MCP server at the other end of t, registers its
// tools in r and keeps them in step until Close. It fails if the server
// cannot be reached or initialised, or if its tools cannot be listed.
func Connect(ctx context.Context, t sdk.Transport, r *calls.Router, opts *ClientOptions) (*Client, error) {
	c := &Client{router: r, remote: map[string]ToolInfo{}, refresh: make(chan struct{}, 1), done: make(chan struct{})}
	if opts != nil {
		c.opts = *opts
	}
	c.name = c.opts.Name
	if c.name == "" {
		c.name = "server"
	}
	c.group = "mcp:" + c.name
	c.opts.Limits = c.opts.Limits.withDefaults()
	if c.opts.Debounce <= 0 {
		c.opts.Debounce = DefaultDebounce
	}
	c.log = c.opts.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("server", c.name)
	impl := &sdk.Implementation{Name: c.opts.ClientName, Version: c.opts.ClientVersion}
	if impl.Name == "" {
		impl.Name = "membrane-orchestrator"
	}
	if impl.Version == "" {
		impl.Version = "dev"
	}
	client := sdk.NewClient(impl, &sdk.ClientOptions{
		Capabilities: &sdk.ClientCapabilities{},
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			select {
			case c.refresh <- struct{}{}:
			default:
			}
		},
		ProgressNotificationHandler: func(ctx context.Context, req *sdk.ProgressNotificationClientRequest) {
			tok := fmt.Sprint(req.Params.ProgressToken)
			if p, ok := c.progress.Load(tok); ok {
				p.(calls.Progress).Report(ctx, req.Params.Progress, req.Params.Total, req.Params.Message)
			}
		},
	})
	cs, err := client.Connect(ctx, t, &sdk.ClientSessionOptions{ProtocolVersion: c.opts.ProtocolVersion})
	if err != nil {
		return nil, fmt.Errorf("mcp: connect to %s: %w", c.name, err)
	}
	c.cs = cs
	if _, err := c.Refresh(ctx); err != nil {
		cs.Close()
		return nil, err
	}
	c.wg.Add(2)
	go c.watch()
	go func() {
		defer c.wg.Done()
		select {
		case <-c.done:
		case err := <-c.waitSession():
			c.mu.Lock()
			closing := c.closed
			if !closing {
				c.router.Sync(c.group, nil)
			}
			c.mu.Unlock()
			if closing {
				return
			}
			c.log.Warn("server session ended; its tools are gone", "err", err)
			if c.opts.OnSessionEnd != nil {
				c.opts.OnSessionEnd(err)
			}
		}
	}()
	return c, nil
}

func (c *Client) waitSession() <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.cs.Wait() }()
	return ch
}

// watch refreshes the tools whenever the server says they changed.
func (c *Client) watch() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.refresh:
		}
		if !c.settle() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ch, err := c.Refresh(ctx)
		cancel()
		if err != nil {
			c.log.Warn("refresh tools after list_changed", "err", err)
			continue
		}
		if !ch.Empty() && c.opts.OnToolsChanged != nil {
			c.opts.OnToolsChanged(ch)
		}
	}
}

// settle waits until no list_changed has arrived for Debounce, or for
// 10×Debounce at most; it reports false if the client closed meanwhile.
func (c *Client) settle() bool {
	quiet := time.NewTimer(c.opts.Debounce)
	defer quiet.Stop()
	limit := time.NewTimer(10 * c.opts.Debounce)
	defer limit.Stop()
	for {
		select {
		case <-c.done:
			return false
		case <-quiet.C:
			return true
		case <-limit.C:
			return true
		case <-c.refresh:
			quiet.Reset(c.opts.Debounce)
		}
	}
}

// Name returns the server's name.
func (c *Client) Name() string { return c.name }

// ProtocolVersion returns the protocol version agreed with the server.
func (c *Client) ProtocolVersion() string {
	if r := c.cs.InitializeResult(); r != nil {
		return r.ProtocolVersion
	}
	return ""
}

// Session returns the underlying go-sdk session.
func (c *Client) Session() *sdk.ClientSession { return c.cs }

// RemoteName returns the server's own name for the local call name.
func (c *Client) RemoteName(local string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.remote[local]
	return n.Name, ok
}

// Tool returns who the local call name is, if it is one of this server's
// tools.
func (c *Client) Tool(local string) (ToolInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.remote[local]
	return t, ok
}

// Tools returns every tool of the server that is registered.
func (c *Client) Tools() []ToolInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ToolInfo, 0, len(c.remote))
	for _, t := range c.remote {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b ToolInfo) int { return strings.Compare(a.Local, b.Local) })
	return out
}

// Refresh lists the server's tools again and makes the router's calls for
// this server match them. The listing is bounded by ClientOptions.Limits:
// past a limit the rest is dropped with a warning. A tool whose schema is
// not a usable JSON Schema is skipped with a warning; the others stay.
func (c *Client) Refresh(ctx context.Context) (calls.Change, error) {
	tools, err := c.list(ctx)
	if err != nil {
		return calls.Change{}, err
	}
	prefixName := c.opts.PrefixName
	if prefixName == "" {
		prefixName = ServerPrefix(c.name)
	}
	names := localNames(prefixName, c.opts.Prefix, c.name, toolNames(tools))
	remote := map[string]ToolInfo{}
	c.mu.Lock()
	old := c.checked
	c.mu.Unlock()
	checked := make(map[string]error, len(tools))
	var cs []calls.Call
	for _, tool := range tools {
		local := names[tool.Name]
		d := digest(tool)
		bad, seen := old[d]
		call, err := c.callOf(tool, local, !seen)
		if seen && bad != nil {
			err = bad
		}
		checked[d] = err
		if err != nil {
			if !seen {
				c.log.Warn("skipping a tool whose input schema is unusable", "tool", tool.Name, "err", err)
			}
			continue
		}
		remote[local] = ToolInfo{Server: c.name, Name: tool.Name, Local: local, Description: call.Description, Digest: d}
		cs = append(cs, call)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return calls.Change{}, errors.New("mcp: client closed")
	}
	c.remote = remote
	c.checked = checked
	ch, err := c.router.Sync(c.group, cs)
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("some tools were not registered", "err", err)
	}
	c.log.Debug("tools listed", "tools", len(cs), "added", len(ch.Added), "removed", len(ch.Removed))
	return ch, nil
}

// list reads the server's tools page by page, within the limits.
func (c *Client) list(ctx context.Context) ([]*sdk.Tool, error) {
	lim := c.opts.Limits
	var (
		tools  []*sdk.Tool
		seen   = map[string]bool{}
		total  int
		cursor string
	)
	for page := 0; ; page++ {
		if page == lim.Pages {
			c.log.Warn("the server's tool list goes on past the page limit; using the tools read so far", "pages", lim.Pages, "tools", len(tools))
			break
		}
		res, err := c.cs.ListTools(ctx, &sdk.ListToolsParams{Cursor: cursor})
		if err != nil {
			return nil, fmt.Errorf("mcp: list tools of %s: %w", c.name, err)
		}
		full := false
		for _, t := range res.Tools {
			if t == nil || seen[t.Name] {
				continue
			}
			if len(tools) == lim.Tools {
				c.log.Warn("the server lists more tools than the limit; the rest are dropped", "limit", lim.Tools)
				full = true
				break
			}
			t.Description = capText(t.Description, lim.Description)
			t.Title = capText(t.Title, 256)
			size := len(t.Name) + len(t.Description) + len(t.Title)
			if t.InputSchema != nil {
				b, err := json.Marshal(t.InputSchema)
				if err != nil || len(b) > lim.ToolBytes {
					c.log.Warn("skipping a tool whose input schema is too large", "tool", t.Name, "bytes", len(b), "limit", lim.ToolBytes)
					continue
				}
				size += len(b)
			}
			if total+size > lim.TotalBytes {
				c.log.Warn("the server's tools exceed the total size limit; the rest are dropped", "limit_bytes", lim.TotalBytes, "tools", len(tools))
				full = true
				break
			}
			total += size
			seen[t.Name] = true
			tools = append(tools, t)
		}
		if full || res.NextCursor == "" {
			break
		}
		if res.NextCursor == cursor {
			c.log.Warn("the server's tool list repeats its cursor; stopping there", "tools", len(tools))
			break
		}
		cursor = res.NextCursor
	}
	return tools, nil
}

// capText cuts s to at most n bytes, at a rune boundary, ending in "…".
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// digest identifies a tool definition: any change to its name, title,
// description, schema or annotations changes it.
func digest(t *sdk.Tool) string {
	b, _ := json.Marshal(t)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func toolNames(ts []*sdk.Tool) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func (c *Client) callOf(t *sdk.Tool, local string, check bool) (calls.Call, error) {
	schema, err := objectSchema(t.InputSchema)
	if err != nil {
		return calls.Call{}, err
	}
	if check {
		if err := CheckSchema(schema, c.opts.Limits.SchemaDepth); err != nil {
			return calls.Call{}, err
		}
	}
	desc := t.Description
	if desc == "" {
		desc = t.Title
	}
	call := calls.Call{
		Name:        local,
		Title:       t.Title,
		Description: desc,
		InputSchema: schema,
		Kind:        calls.KindTool,
		Timeout:     c.opts.CallTimeout,
		Concurrency: -1, // the server applies its own limits
		Handler:     c.handler(t.Name, takesWorkspace(schema)),
	}
	if a := t.Annotations; a != nil {
		call.ReadOnly = a.ReadOnlyHint
		call.Destructive = a.DestructiveHint != nil && *a.DestructiveHint
		if call.Title == "" {
			call.Title = a.Title
		}
	}
	return call, nil
}

// objectSchema returns the tool's input schema as JSON, with "type":
// "object" added when the server left it out.
func objectSchema(s any) (json.RawMessage, error) {
	if s == nil {
		return json.RawMessage(`{"type":"object"}`), nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("input schema is not a JSON object")
	}
	switch m["type"] {
	case "object":
		return b, nil
	case nil:
		m["type"] = "object"
		return json.Marshal(m)
	}
	return nil, fmt.Errorf("input schema has type %v, want object", m["type"])
}

func (c *Client) handler(remote string, workspace bool) calls.Handler {
	return calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
		args := req.Arguments
		if len(args) == 0 {
			args = json.RawMessage("{}")
		}
		if workspace {
			args = c.carryWorkspace(args)
		}
		params := &sdk.CallToolParams{Name: remote, Arguments: args}
		if req.TraceParent != "" {
			// The caller's trace goes on in the server (SEP-414).
			m := map[string]any{"traceparent": req.TraceParent}
			if req.TraceState != "" {
				m["tracestate"] = req.TraceState
			}
			params.SetMeta(m)
		}
		if req.Progress != nil {
			tok := c.name + "-" + strconv.FormatInt(c.nextTok.Add(1), 10)
			params.SetProgressToken(tok)
			c.progress.Store(tok, req.Progress)
			defer c.progress.Delete(tok)
		}
		res, err := c.cs.CallTool(ctx, params)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("mcp: %s: call %s: %w", c.name, remote, err)
		}
		if workspace {
			c.noteWorkspace(res)
		}
		return resultFrom(res), nil
	})
}

// takesWorkspace reports whether a tool's input schema has the
// "workspace" argument of a workspace handle.
func takesWorkspace(schema json.RawMessage) bool {
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	_ = json.Unmarshal(schema, &s)
	_, ok := s.Properties[calls.WorkspaceArg]
	return ok
}

// carryWorkspace adds the last workspace handle the server returned to
// arguments that name none. Over the sessionless protocol, a server such
// as membrane keeps files from one call to the next only for calls that
// pass the handle, which a model may forget; the client carries it, as a
// session would have. Arguments that name a workspace keep theirs.
func (c *Client) carryWorkspace(args json.RawMessage) json.RawMessage {
	h, _ := c.handle.Load().(string)
	if h == "" {
		return args
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(args, &m) != nil || m == nil {
		return args
	}
	if _, ok := m[calls.WorkspaceArg]; ok {
		return args
	}
	m[calls.WorkspaceArg], _ = json.Marshal(h)
	out, err := json.Marshal(m)
	if err != nil {
		return args
	}
	return out
}

// noteWorkspace keeps the workspace handle a result names.
func (c *Client) noteWorkspace(res *sdk.CallToolResult) {
	st, ok := res.StructuredContent.(map[string]any)
	if !ok {
		return
	}
	if h, ok := st[calls.WorkspaceArg].(string); ok && calls.ValidWorkspaceHandle(h) {
		c.handle.Store(h)
	}
}

// resultFrom turns an MCP tool result into a calls.Result. Content the
// calls domain has no type for (audio, resources) becomes text that says
// what it was.
func resultFrom(r *sdk.CallToolResult) *calls.Result {
	out := &calls.Result{IsError: r.IsError, Structured: r.StructuredContent}
	for _, c := range r.Content {
		switch c := c.(type) {
		case *sdk.TextContent:
			out.Content = append(out.Content, calls.Content{Type: calls.ContentText, Text: calls.ValidUTF8(c.Text)})
		case *sdk.ImageContent:
			out.Content = append(out.Content, calls.Content{Type: calls.ContentImage, Data: c.Data, MIMEType: c.MIMEType})
		case *sdk.AudioContent:
			out.Content = append(out.Content, calls.Content{Type: calls.ContentText, Text: fmt.Sprintf("[audio: %s, %d bytes]", c.MIMEType, len(c.Data))})
		case *sdk.ResourceLink:
			size := int64(-1)
			if c.Size != nil {
				size = *c.Size
			}
			out.Content = append(out.Content, calls.Content{Type: calls.ContentLink, URI: c.URI, Name: calls.ValidUTF8(c.Name), MIMEType: c.MIMEType, Size: size})
		case *sdk.EmbeddedResource:
			if c.Resource == nil {
				continue
			}
			text := c.Resource.Text
			if text == "" {
				text = fmt.Sprintf("[resource %s: %s, %d bytes]", c.Resource.URI, c.Resource.MIMEType, len(c.Resource.Blob))
			}
			out.Content = append(out.Content, calls.Content{Type: calls.ContentText, Text: calls.ValidUTF8(text)})
		}
	}
	return out
}

// Close removes the server's tools from the router and closes the session
// (for a launched server: closes its stdin, then SIGTERM, then SIGKILL).
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.router.Sync(c.group, nil)
	c.mu.Unlock()
	err := c.cs.Close()
	c.wg.Wait()
	if err != nil && !isClosedErr(err) {
		return fmt.Errorf("mcp: close %s: %w", c.name, err)
	}
	return nil
}

// Wait blocks until the session with the server ends.
func (c *Client) Wait() error { return c.cs.Wait() }

// LocalNames maps a server's tool names to names that match
// calls.NamePattern and are unique among them: "PREFIX__TOOL" when prefix is
// set (PREFIX is ServerPrefix(server), which never holds "__", so the first
// "__" of a local name always ends the server's part), else the tool's own
// name. A name with characters outside [A-Za-z0-9_-] has them replaced by
// '_'; one longer than 64 characters is cut and ends in a hash of the
// server and the whole tool name, as does any name that would clash, so
// the tools of one server stay distinct.
func LocalNames(server string, prefix bool, tools []string) map[string]string {
	return localNames(ServerPrefix(server), prefix, server, tools)
}

func localNames(prefixName string, prefix bool, server string, tools []string) map[string]string {
	out := make(map[string]string, len(tools))
	used := map[string]bool{}
	// Names that need no change are placed first, so that a renamed tool
	// never takes a name another tool has as is.
	want := func(t string) string {
		if prefix {
			return prefixName + "__" + t
		}
		return t
	}
	for _, t := range tools {
		if n := want(t); calls.NamePattern.MatchString(n) && !used[n] {
			out[t] = n
			used[n] = true
		}
	}
	for _, t := range tools {
		if _, ok := out[t]; ok {
			continue
		}
		n := sanitizeName(want(t))
		for salt := 0; len(n) > 64 || used[n] || !calls.NamePattern.MatchString(n); salt++ {
			key := server + "\x00" + t
			if salt > 0 {
				key += "\x00" + strconv.Itoa(salt)
			}
			h := sha256.Sum256([]byte(key))
			suffix := "_" + hex.EncodeToString(h[:4])
			base := sanitizeName(want(t))
			n = base[:min(len(base), 64-len(suffix))] + suffix
		}
		out[t] = n
		used[n] = true
	}
	return out
}

// ServerPrefix is the SERVER part of a SERVER__TOOL name: the server's name
// with characters outside [A-Za-z0-9_-] replaced, with no "__" in it and no
// '_' at either end (so that the join cannot be forged by a server or tool
// name that holds "__"), and at most 24 characters, the longer ones cut
// and ending in a hash of the whole.
func ServerPrefix(server string) string {
	p := sanitizeName(server)
	for strings.Contains(p, "__") {
		p = strings.ReplaceAll(p, "__", "_")
	}
	p = strings.Trim(p, "_")
	if p == "" {
		p = "server"
	}
	if len(p) > 24 {
		h := sha256.Sum256([]byte(server))
		p = strings.TrimRight(p[:19], "_") + "-" + hex.EncodeToString(h[:2])
	}
	return p
}

// ServerPrefixes returns a unique ServerPrefix for each server name: where
// two names clean up to the same prefix, each gets a hash of its own name.
func ServerPrefixes(servers []string) map[string]string {
	out := map[string]string{}
	count := map[string]int{}
	for _, s := range servers {
		count[ServerPrefix(s)]++
	}
	for _, s := range servers {
		p := ServerPrefix(s)
		if count[p] > 1 {
			h := sha256.Sum256([]byte(s))
			p = strings.TrimRight(p[:min(len(p), 15)], "_") + "-" + hex.EncodeToString(h[:3])
		}
		out[s] = p
	}
	return out
}

func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// HeaderTransport adds fixed headers (such as Authorization) to every
// request it sends through Base (nil means http.DefaultTransport).
type HeaderTransport struct {
	Header http.Header
	Base   http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (h *HeaderTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	maps.Copy(r.Header, h.Header)
	base := h.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// HTTPTransport returns a streamable HTTP client transport for url that
// sends token (when not empty) as a bearer token and the given headers on
// every request.
func HTTPTransport(url, token string, headers map[string]string) sdk.Transport {
	h := http.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	}
	t := &sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1}
	if len(h) > 0 {
		t.HTTPClient = &http.Client{Transport: &HeaderTransport{Header: h}}
	}
	return t
}
