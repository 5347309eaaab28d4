package mcp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
)

// The workspace as MCP resources: every regular file of a session's
// workspace is a resource workspace://HANDLE/PATH (see
// calls.WorkspaceURI), listed by resources/list, read by resources/read,
// and described by the one template resources/templates/list shows. A
// client that subscribes to one hears notifications/resources/updated when
// it changes: the subscribed files are looked at when any tool call ends,
// and every subscriptionPoll while subscriptions exist.
//
// A session sees only its own workspace and the workspace handles of its
// token (calls.Workspaces): resources/list shows both, and a URI of any
// other workspace is not found. Every part is bounded: a page of resourcesPage files, reads
// of at most WorkspaceResourceOptions.MaxReadBytes, and
// maxSubscriptions per session.

// Bounds of the workspace resources.
const (
	resourcesPage = 500
	// maxResourcesSkip bounds the cursor of resources/list: what one page
	// may walk past before it starts.
	maxResourcesSkip = 200_000
	// DefaultMaxResourceBytes is the largest file resources/read returns
	// when WorkspaceResourceOptions.MaxReadBytes is zero: in base64 it
	// stays under DefaultMaxResultBytes.
	DefaultMaxResourceBytes = 4 << 20
	maxSubscriptions        = 64
	// maxSubscriptionsTotal bounds the subscriptions of all sessions: the
	// files looked at after each call.
	maxSubscriptionsTotal = 4096
)

// subscriptionPoll is how often subscribed files are looked at while a
// long call runs. A variable so that tests can shorten it.
var subscriptionPoll = time.Second

// WorkspaceResourceOptions turns on the workspace resources of a Server.
type WorkspaceResourceOptions struct {
	// MaxReadBytes is the largest file resources/read returns; a larger
	// one is an error that says so. Zero means DefaultMaxResourceBytes.
	MaxReadBytes int64
}

// fileStamp is what a subscribed file looked like when last seen.
type fileStamp struct {
	exists bool
	size   int64
	mtime  int64
	mode   fs.FileMode
}

type subscription struct {
	dir, rel string
	stamp    fileStamp
}

// resources is the state of the workspace resources.
type resources struct {
	maxRead int64

	mu      sync.Mutex
	subs    map[*sdk.ServerSession]map[string]*subscription
	polling bool
}

func newResources(o *WorkspaceResourceOptions) *resources {
	r := &resources{maxRead: o.MaxReadBytes, subs: map[*sdk.ServerSession]map[string]*subscription{}}
	if r.maxRead <= 0 {
		r.maxRead = DefaultMaxResourceBytes
	}
	return r
}

// total is the number of subscriptions held; r.mu is held.
func (r *resources) total() int {
	n := 0
	for _, m := range r.subs {
		n += len(m)
	}
	return n
}

// serveResources adds the template and the list handler to the SDK
// server. The subscribe handlers are set in its options.
func (s *Server) serveResources() {
	s.sdk.AddResourceTemplate(&sdk.ResourceTemplate{
		URITemplate: calls.WorkspaceURITemplate,
		Name:        "workspace",
		Title:       "Files of the session workspace",
		Description: "The files sh, python_run and the file tools see in " + calls.WorkspaceDir + ". HANDLE names this session's workspace or a workspace handle (ws_...) of this token: " +
			"take it from a resource link or the workspace a tool returned, or from resources/list.",
	}, s.readResource)
	s.sdk.AddReceivingMiddleware(s.listResources)
}

// workspaceOf returns the directory and handle of the workspace of ss,
// or "" when it has none yet.
func (s *Server) workspaceOf(ss *sdk.ServerSession) (dir, handle string) {
	s.mu.Lock()
	st := s.sessions[ss]
	s.mu.Unlock()
	if st == nil {
		return "", ""
	}
	dir = st.cs.Workspace()
	if dir == "" {
		return "", ""
	}
	return dir, st.cs.WorkspaceHandle()
}

// resolveURI checks that uri names a file of a workspace the request may
// see: its session's own, or that of a workspace handle (ws_...) of the
// request's token.
func (s *Server) resolveURI(req sdk.Request, uri string) (dir, rel string, err error) {
	handle, rel, err := calls.ParseWorkspaceURI(uri)
	if err != nil {
		return "", "", &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
	}
	ss, _ := req.GetSession().(*sdk.ServerSession)
	if calls.ValidWorkspaceHandle(handle) {
		dir = s.handleWorkspace(req, handle)
	} else if own, mine := s.workspaceOf(ss); handle == mine {
		dir = own
	}
	if dir == "" {
		return "", "", sdk.ResourceNotFoundError(uri)
	}
	return dir, rel, nil
}

// handleWorkspace is the directory of a workspace handle of the
// request's token, or "" when there is none (no store, unknown, expired,
// another token's, no workspace made yet).
func (s *Server) handleWorkspace(req sdk.Request, handle string) string {
	if s.handles == nil {
		return ""
	}
	probe := calls.NewSession("")
	probe.BindWorkspaces(s.handles, userOf(req), false)
	rw, err := calls.ResolveWorkspace(&calls.Request{Session: probe}, handle)
	if err != nil {
		return ""
	}
	defer rw.Release()
	return rw.Session.Workspace()
}

// listResources answers resources/list, a page at a time, with the files
// of the session's own workspace and then those of the workspace handles
// of the request's token (in the order of their handles): a sessionless
// client, whose every request is its own, sees its handles' files. The
// cursor is the offset in the session's workspace ("N"), or a handle and
// the offset in its workspace ("ws_...:N").
func (s *Server) listResources(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		lr, ok := req.(*sdk.ListResourcesRequest)
		if method != "resources/list" || !ok {
			return next(ctx, method, req)
		}
		from, skip, err := parseResourcesCursor(cursorOf(lr))
		if err != nil {
			return nil, err
		}
		var srcs []resourceSource
		if from == "" {
			if dir, handle := s.workspaceOf(lr.Session); dir != "" {
				srcs = append(srcs, resourceSource{dir, handle, true})
			}
		}
		if s.handles != nil {
			for _, o := range s.handles.Owned(userOf(req), 0) {
				if o.Dir != "" && o.Handle >= from {
					srcs = append(srcs, resourceSource{o.Dir, o.Handle, false})
				}
			}
		}
		// Answered here, so the SDK's SetCacheable does not run: a
		// listing is the caller's own (its session's and its handles'
		// files) and changes with every call.
		out := &sdk.ListResourcesResult{Resources: []*sdk.Resource{}, Cacheable: sdk.Cacheable{CacheScope: "private"}}
		for i, src := range srcs {
			if i > 0 || src.own != (from == "") || (from != "" && src.handle != from) {
				skip = 0 // the cursor's workspace went away: start the next one
			}
			room := resourcesPage - len(out.Resources)
			ents, more, err := calls.ListWorkspace(ctx, src.dir, calls.ListOptions{Skip: skip, Max: room,
				Filter: func(e calls.WorkspaceEntry) bool { return e.Type == "file" }})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				continue // the workspace went away with its session or handle
			}
			for _, e := range ents {
				out.Resources = append(out.Resources, &sdk.Resource{
					URI:      calls.WorkspaceURI(src.handle, e.Path),
					Name:     e.Path,
					MIMEType: calls.MIMEByName(e.Path),
					Size:     e.Size,
				})
			}
			if more {
				if skip+len(ents) <= maxResourcesSkip {
					out.NextCursor = resourcesCursor(src, skip+len(ents))
				}
				return out, nil
			}
			if len(out.Resources) >= resourcesPage {
				// This workspace is done; the next page starts at the
				// following handle.
				if i+1 < len(srcs) {
					out.NextCursor = resourcesCursor(srcs[i+1], 0)
				}
				return out, nil
			}
		}
		return out, nil
	}
}

// resourceSource is one workspace resources/list walks.
type resourceSource struct {
	dir, handle string
	own         bool // the session's own workspace, not a handle's
}

// resourcesCursor is the cursor of a page starting at offset n of the
// workspace with the given handle.
func resourcesCursor(src resourceSource, n int) string {
	if !src.own {
		return src.handle + ":" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// parseResourcesCursor reads a cursor of resourcesCursor: the handle
// ("" for the session's own workspace) and the offset.
func parseResourcesCursor(c string) (handle string, skip int, err error) {
	if c == "" {
		return "", 0, nil
	}
	num := c
	if h, n, ok := strings.Cut(c, ":"); ok {
		handle, num = h, n
		if !calls.ValidWorkspaceHandle(h) {
			num = "" // refused below
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > maxResourcesSkip {
		return "", 0, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid cursor: pass the nextCursor of the previous page"}
	}
	return handle, n, nil
}

// userOf is the user of the request's bearer token, "" for none.
func userOf(req sdk.Request) string {
	if ex := req.GetExtra(); ex != nil && ex.TokenInfo != nil {
		return ex.TokenInfo.UserID
	}
	return ""
}

// readResource answers resources/read of a workspace URI: UTF-8 text as
// text, anything else as a blob.
func (s *Server) readResource(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	uri := req.Params.URI
	dir, rel, err := s.resolveURI(req, uri)
	if err != nil {
		return nil, err
	}
	data, err := calls.ReadWorkspaceFile(ctx, dir, rel, s.res.maxRead)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, sdk.ResourceNotFoundError(uri)
		}
		msg := err.Error()
		if errors.Is(err, calls.ErrFileTooLarge) {
			msg += "; read a part of it with sh (head -c, split) instead"
		}
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: msg}
	}
	mt := calls.SniffMIME(rel, data)
	c := &sdk.ResourceContents{URI: uri, MIMEType: mt}
	if !calls.IsImageMIME(mt) && utf8.Valid(data) {
		c.Text = string(data)
	} else {
		c.Blob = data
		if c.Blob == nil {
			c.Blob = []byte{}
		}
	}
	return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{c}}, nil
}

// subscribe records a subscription of the session to a file of its
// workspace. The SDK then sends it notifications/resources/updated for
// the URI.
func (s *Server) subscribe(ctx context.Context, req *sdk.SubscribeRequest) error {
	dir, rel, err := s.resolveURI(req, req.Params.URI)
	if err != nil {
		return err
	}
	r := s.res
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.subs[req.Session]
	if _, ok := m[req.Params.URI]; !ok {
		if len(m) >= maxSubscriptions {
			return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("a session may hold at most %d resource subscriptions; unsubscribe from one first", maxSubscriptions)}
		}
		if r.total() >= maxSubscriptionsTotal {
			return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("the server holds %d resource subscriptions, the most it keeps; try again later", maxSubscriptionsTotal)}
		}
	}
	if m == nil {
		m = map[string]*subscription{}
		r.subs[req.Session] = m
		ss := req.Session
		go func() {
			_ = ss.Wait()
			r.mu.Lock()
			delete(r.subs, ss)
			r.mu.Unlock()
		}()
	}
	m[req.Params.URI] = &subscription{dir: dir, rel: rel, stamp: stampOf(dir, rel)}
	if !r.polling {
		r.polling = true
		go s.pollSubscriptions()
	}
	return nil
}

func (s *Server) unsubscribe(ctx context.Context, req *sdk.UnsubscribeRequest) error {
	r := s.res
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subs[req.Session], req.Params.URI)
	return nil
}

// pollSubscriptions looks at the subscribed files every subscriptionPoll
// until the server closes.
func (s *Server) pollSubscriptions() {
	t := time.NewTicker(subscriptionPoll)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.checkSubscriptions("")
		}
	}
}

// checkSubscriptions tells subscribers of every file in the workspace dir
// ("" for all) that changed since it was last seen. It looks at most
// maxSubscriptionsTotal files.
func (s *Server) checkSubscriptions(dir string) {
	if s.res == nil {
		return
	}
	r := s.res
	type seen struct {
		uri string
		sub *subscription
	}
	r.mu.Lock()
	var all []seen
	for _, m := range r.subs {
		for uri, sub := range m {
			if dir == "" || sub.dir == dir {
				all = append(all, seen{uri, sub})
			}
		}
	}
	r.mu.Unlock()
	changed := map[string]bool{}
	for _, e := range all {
		st := stampOf(e.sub.dir, e.sub.rel)
		r.mu.Lock()
		if st != e.sub.stamp {
			e.sub.stamp = st
			changed[e.uri] = true
		}
		r.mu.Unlock()
	}
	for uri := range changed {
		_ = s.sdk.ResourceUpdated(context.Background(), &sdk.ResourceUpdatedNotificationParams{URI: uri})
	}
}

// stampOf looks at rel inside dir without following a link out.
func stampOf(dir, rel string) fileStamp {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fileStamp{}
	}
	defer root.Close()
	fi, err := root.Lstat(rel)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
}

func cursorOf(lr *sdk.ListResourcesRequest) string {
	if lr.Params == nil {
		return ""
	}
	return lr.Params.Cursor
}
