package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// newProtocol is the first protocol version whose requests are sessionless:
// each POST is a request's whole life, and closing it is how a client
// cancels.
const newProtocol = "2026-07-28"

// isNewProtocol reports whether r is of the sessionless protocol, by its
// Mcp-Protocol-Version header (as the SDK decides it).
func isNewProtocol(r *http.Request) bool {
	return r.Header.Get("Mcp-Protocol-Version") >= newProtocol
}

// cancelAbandoned cancels the call id of session sid whose POST ended
// because the client closed the connection before the response came.
//
// The SDK ties a handler to its HTTP request only for requests of the
// 2026-07-28 protocol (PropagateRequestCancellation). For the earlier
// versions a session's calls outlive the POST that started them, as if
// the client could resume the stream; membrane keeps no event store, so
// it never can, and the result would go nowhere. So when such a POST ends
// with its request context done, the layer sends the session the
// notifications/cancelled the client did not get to send, through the
// SDK's own endpoint: the call is cancelled exactly as a client's own
// cancellation would do it.
//
// Only a call whose response was not written is cancelled (replyWatch):
// a client that reads its result and closes at once must not have the
// cancellation land on its next request, which may reuse the id.
func (h *httpHandler) cancelAbandoned(r *http.Request, sid string, id jsonrpc.ID) {
	raw, err := json.Marshal(id.Raw())
	if err != nil {
		return
	}
	body := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":` + string(raw) +
		`,"reason":"the client closed the HTTP connection"}}`
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), http.MethodPost, r.URL.String(), strings.NewReader(body))
	if err != nil {
		return
	}
	req.Host = r.Host
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" {
		req.Header.Set("Mcp-Protocol-Version", v)
	}
	var w discardWriter
	h.mcp.ServeHTTP(&w, req)
	h.log.Debug("http request abandoned: call cancelled", "session", sid, "id", string(raw), "status", w.status)
}

// replyWatch passes the SDK's writes through and notes whether one of
// them is the JSON-RPC response to id: an SSE event (the SDK writes each
// in one Write) or a JSON body.
type replyWatch struct {
	http.ResponseWriter
	id   jsonrpc.ID
	seen atomic.Bool
}

func (w *replyWatch) Write(p []byte) (int, error) {
	if !w.seen.Load() && isReplyTo(p, w.id) {
		w.seen.Store(true)
	}
	return w.ResponseWriter.Write(p)
}

func (w *replyWatch) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *replyWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// isReplyTo reports whether p, one SSE event or a JSON body, holds the
// JSON-RPC response to id.
func isReplyTo(p []byte, id jsonrpc.ID) bool {
	if t := bytes.TrimSpace(p); len(t) > 0 && t[0] == '{' {
		return replyIs(t, id)
	}
	for line := range bytes.Lines(p) {
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok && replyIs(bytes.TrimSpace(data), id) {
			return true
		}
	}
	return false
}

func replyIs(data []byte, id jsonrpc.ID) bool {
	if is, sure := replyIsQuick(data, id); sure {
		return is
	}
	m, err := jsonrpc.DecodeMessage(data)
	if err != nil {
		return false
	}
	resp, ok := m.(*jsonrpc.Response)
	return ok && resp.ID == id
}

// replyIsQuick tells a reply from the envelope's first keys, without
// decoding what follows: the SDK writes "jsonrpc", "id" and "method"
// ahead of "params", "result" and "error" (TestSDKWritesIDFirst pins it),
// and the result of a tools/list is the whole tool list, every time. sure
// is false for anything it cannot tell at once; the caller then decodes
// the whole message.
func replyIsQuick(data []byte, id jsonrpc.ID) (is, sure bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false, false
	}
	var got json.RawMessage
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return false, false
		}
		switch k {
		case "jsonrpc":
			var v string
			if dec.Decode(&v) != nil || v != "2.0" {
				return false, false
			}
		case "id":
			if got != nil || dec.Decode(&got) != nil {
				return false, false
			}
		case "method":
			return false, false // a request or a notification: rare, small
		case "result", "error":
			if got == nil {
				return false, false
			}
			return idIs(got, id)
		default:
			return false, false
		}
	}
	return false, false
}

// idIs compares a JSON-RPC id as written with id; sure is false for a
// form it does not know.
func idIs(raw json.RawMessage, id jsonrpc.ID) (is, sure bool) {
	switch want := id.Raw().(type) {
	case string:
		var s string
		if raw[0] != '"' {
			return false, raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')
		}
		if json.Unmarshal(raw, &s) != nil {
			return false, false
		}
		return s == want, true
	case int64:
		if raw[0] == '"' {
			return false, true
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return false, false
		}
		return n == want, true
	}
	return false, false
}

// discardWriter is the ResponseWriter of a request the layer makes itself.
type discardWriter struct {
	hdr    http.Header
	status int
}

func (d *discardWriter) Header() http.Header {
	if d.hdr == nil {
		d.hdr = http.Header{}
	}
	return d.hdr
}

func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(p), nil
}

func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}

// requestCtxKey carries, in a stateless request's context, that request's
// own context: the SDK connects each stateless request's throwaway session
// with it, and its handlers' contexts keep its values but not its
// cancellation.
type requestCtxKey struct{}

// withRequestCtx marks r so that endWithRequest can tie its calls to it.
// Only for stateless requests: a stateful session is connected with the
// context of its initialize, long done when its calls run.
func withRequestCtx(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), requestCtxKey{}, r.Context()))
}

// endWithRequest is receiving middleware that cancels a call when the
// stateless HTTP request carrying it ends. Closing the throwaway session
// does not do it: the SDK's Close waits for running handlers. Calls on
// other transports carry no such context and pass untouched.
func endWithRequest(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		rctx, ok := ctx.Value(requestCtxKey{}).(context.Context)
		if !ok || method != "tools/call" {
			return next(ctx, method, req)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(rctx, cancel)
		defer stop()
		return next(ctx, method, req)
	}
}
