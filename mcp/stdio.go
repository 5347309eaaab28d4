package mcp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Defaults used where ResilientStdioTransport leaves a field zero.
const (
	// DefaultMaxMessageBytes caps one message read by ResilientStdioTransport.
	DefaultMaxMessageBytes = 16 << 20
	// DefaultMaxInFlight caps the requests a stdio client may have
	// waiting for an answer at once.
	DefaultMaxInFlight = 1024
)

// maxHeld bounds the notifications held back until the session is
// initialized; identical ones are sent once.
const maxHeld = 64

// ResilientStdioTransport serves MCP over newline-delimited JSON on a reader
// and a writer (stdin and stdout by default), and is named for what sets it
// apart from go-sdk's StdioTransport: a line that is not a JSON-RPC
// message does not end the session. The client
// gets a JSON-RPC error (parse error, invalid request, message too large,
// batch not supported) and the session goes on. It also answers what
// go-sdk v1.8.0 would get wrong:
//
//   - an id that is neither a string nor an integer exactly representable
//     in JSON (1.5, true, null, 2^53+1) gets -32600 with id null, where the
//     SDK would round it;
//   - a request that reuses the id of one still in flight gets -32600 with
//     that id, and the first request goes on (the SDK answers nothing);
//   - past MaxInFlight requests waiting at once, more get -32600;
//   - nothing but replies goes out before initialize is answered, and
//     only pings and log messages before notifications/initialized: other
//     notifications (tools/list_changed, say) are held until then.
type ResilientStdioTransport struct {
	// In and Out default to os.Stdin and os.Stdout.
	In  io.Reader
	Out io.Writer
	// MaxMessageBytes caps one message; a longer line is skipped and
	// answered with an error. Zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxInFlight caps the requests waiting for an answer at once. Zero
	// means DefaultMaxInFlight.
	MaxInFlight int

	// listState, set by Server.Run, lets the connection answer a
	// tools/list from an earlier answer (see stdioConn.answerList).
	listState func() (version uint64, key string, ok bool)
}

var _ sdk.Transport = (*ResilientStdioTransport)(nil)

// Connect implements sdk.Transport.
func (t *ResilientStdioTransport) Connect(context.Context) (sdk.Connection, error) {
	in, out := t.In, t.Out
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	limit := t.MaxMessageBytes
	if limit <= 0 {
		limit = DefaultMaxMessageBytes
	}
	c := &stdioConn{
		in:          in,
		out:         out,
		incoming:    make(chan msgOrErr),
		closed:      make(chan struct{}),
		inflight:    map[jsonrpc.ID]string{},
		maxInFlight: t.MaxInFlight,
		listState:   t.listState,
	}
	if c.maxInFlight <= 0 {
		c.maxInFlight = DefaultMaxInFlight
	}
	go c.readLoop(limit)
	return c, nil
}

type msgOrErr struct {
	msg jsonrpc.Message
	err error
}

type stdioConn struct {
	in       io.Reader
	out      io.Writer
	wmu      sync.Mutex
	incoming chan msgOrErr
	closed   chan struct{}
	once     sync.Once

	maxInFlight int
	mu          sync.Mutex
	inflight    map[jsonrpc.ID]string // requests read and not yet answered, with their method
	phase       phase
	held        [][]byte // encoded notifications held until phaseReady

	// The tool lists this session was sent, for answerList; nil
	// listState: none are kept.
	listState    func() (version uint64, key string, ok bool)
	lists        map[paramsDigest]stdioList
	pendingLists map[jsonrpc.ID]stdioList // asked, not yet answered (no result yet)
}

// stdioList is a tools/list result the SDK sent this session, for params
// of one digest, with the version of the tool set and the list key (the
// scope's view) it was asked at.
type stdioList struct {
	digest  paramsDigest
	version uint64
	key     string
	result  json.RawMessage
}

// maxStdioLists bounds the lists one stdio session keeps: one per page
// and distinct params, which a client keeps the same from list to list.
const maxStdioLists = 8

// phase is how far the session's start has come, for what may be sent.
type phase uint8

const (
	phaseNew         phase = iota // initialize not answered: replies only
	phaseInitialized              // answered: replies, pings and log messages
	phaseReady                    // notifications/initialized seen (or a stateless start): anything
)

// readLoop reads lines until the input ends. It may outlive Close while a
// read of the input cannot be interrupted; it then ends with the process.
func (c *stdioConn) readLoop(limit int) {
	br := bufio.NewReaderSize(c.in, 64<<10)
	var line []byte
	for {
		line = line[:0]
		tooLong := false
		var err error
		for {
			var frag []byte
			frag, err = br.ReadSlice('\n')
			if !tooLong {
				if len(line)+len(frag) > limit+2 { // room for \r\n
					tooLong = true
					line = line[:0]
				} else {
					line = append(line, frag...)
				}
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if tooLong {
			c.reply(nil, jsonrpc.CodeInvalidRequest, fmt.Sprintf("message too large: the limit is %d bytes", limit))
		} else if msg := bytes.TrimSpace(line); len(msg) > 0 {
			m, bad := decode(msg)
			switch {
			case m != nil:
				if id, code, text := c.admit(m); code != 0 {
					c.reply(id, code, text)
					break
				}
				if c.answerList(m) {
					break
				}
				select {
				case c.incoming <- msgOrErr{msg: m}:
				case <-c.closed:
					return
				}
			case bad.drop:
				// A response from the client with an id that cannot be
				// one of ours: a response is never answered.
			case bad.nullID:
				c.reply(nil, bad.code, bad.text)
			default:
				c.reply(idOf(msg), bad.code, bad.text)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			select {
			case c.incoming <- msgOrErr{err: err}:
			case <-c.closed:
			}
			return
		}
	}
}

// admit registers a request that was read, and refuses one whose id is
// already in flight or that would pass MaxInFlight. It also moves the
// session's phase on notifications/initialized. A refusal returns the id
// to answer and a non-zero code.
func (c *stdioConn) admit(m jsonrpc.Message) (*jsonrpc.ID, int64, string) {
	req, ok := m.(*jsonrpc.Request)
	if !ok {
		return nil, 0, ""
	}
	if !req.IsCall() {
		if req.Method == "notifications/initialized" {
			c.open(phaseReady)
		}
		return nil, 0, ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.inflight[req.ID]; dup {
		id := req.ID
		return &id, jsonrpc.CodeInvalidRequest, fmt.Sprintf("invalid request: id %v is already used by a request that has not been answered; use a new id for each request", req.ID.Raw())
	}
	if len(c.inflight) >= c.maxInFlight {
		id := req.ID
		return &id, jsonrpc.CodeInvalidRequest, fmt.Sprintf("invalid request: %d requests are already waiting for an answer, the most one session may have; wait for some to finish", c.maxInFlight)
	}
	c.inflight[req.ID] = req.Method
	return nil, 0, ""
}

// answerList answers a tools/list that was admitted (its id in flight)
// with the result the SDK sent this session for the same params, byte for
// byte, and reports true; or it notes the request, so that Write keeps the
// SDK's answer, and reports false. The SDK's answer is the same for the
// same params while the tool set and the scope's view stay the same: it
// is kept with both (listState), and answered only at the same ones (the
// session having been answered, initialize or a first request of the
// sessionless protocol: a kept answer means the SDK took the session's
// requests), and while the server is ready and open. Anything the SDK
// refused is never kept. The answer is kept as the SDK's is written, so a
// list sent before that answer arrived may be answered first: JSON-RPC
// answers come in any order, and the two are the same.
func (c *stdioConn) answerList(m jsonrpc.Message) bool {
	req, ok := m.(*jsonrpc.Request)
	if !ok || c.listState == nil || req.Method != "tools/list" || !req.IsCall() {
		return false
	}
	version, key, ready := c.listState()
	h := sha256.New()
	h.Write(req.Params)
	var d paramsDigest
	h.Sum(d[:0])
	c.mu.Lock()
	e, hit := c.lists[d]
	if !hit || !ready || e.version != version || e.key != key {
		if c.pendingLists == nil {
			c.pendingLists = map[jsonrpc.ID]stdioList{}
		}
		c.pendingLists[req.ID] = stdioList{digest: d, version: version, key: key}
		c.mu.Unlock()
		return false
	}
	delete(c.inflight, req.ID)
	c.mu.Unlock()
	id, err := marshalNoEscape(req.ID.Raw())
	if err != nil {
		return false
	}
	const head, mid = `{"jsonrpc":"2.0","id":`, `,"result":`
	line := make([]byte, 0, len(head)+len(id)+len(mid)+len(e.result)+2)
	line = append(append(append(append(append(line, head...), id...), mid...), e.result...), '}', '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.writeFramedLocked(line)
	return true
}

// keepList keeps the SDK's answer r to a tools/list that answerList
// noted, if the tool set and the scope's view are still those it was
// asked at (now, read before the answer was written: a view that changed
// while the SDK made the list may have made it). It runs with mu held.
func (c *stdioConn) keepList(r *jsonrpc.Response, now stdioList) {
	p, ok := c.pendingLists[r.ID]
	if !ok {
		return
	}
	delete(c.pendingLists, r.ID)
	if r.Error != nil || len(r.Result) == 0 || p.version != now.version || p.key != now.key {
		return
	}
	if c.lists == nil || len(c.lists) >= maxStdioLists {
		c.lists = map[paramsDigest]stdioList{}
	}
	p.result = bytes.Clone(r.Result) // exactly its size: the SDK's buffer grew by doubling
	c.lists[p.digest] = p
}

// open moves the session to phase p (never back) and sends what was held
// for it.
func (c *stdioConn) open(p phase) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.advanceLocked(p)
}

// advanceLocked is open with wmu held.
func (c *stdioConn) advanceLocked(p phase) error {
	c.mu.Lock()
	if p <= c.phase {
		c.mu.Unlock()
		return nil
	}
	c.phase = p
	var held [][]byte
	if p == phaseReady {
		held, c.held = c.held, nil
	}
	c.mu.Unlock()
	for _, data := range held {
		if err := c.writeLocked(data); err != nil {
			return err
		}
	}
	return nil
}

// badLine says how to answer a line that is not a message to pass on.
type badLine struct {
	code   int64
	text   string
	nullID bool // answer with id null: the line's id is the problem
	drop   bool // answer nothing
}

// decode parses one line: a message, or how to answer the line.
func decode(line []byte) (jsonrpc.Message, badLine) {
	if !json.Valid(line) {
		return nil, badLine{code: jsonrpc.CodeParseError, text: "parse error: the line is not valid JSON; send one JSON-RPC message per line"}
	}
	if line[0] == '[' {
		return nil, badLine{code: jsonrpc.CodeInvalidRequest, text: "batch requests are not supported: send one JSON-RPC message per line"}
	}
	if problem, request := messageIDProblem(line); problem != "" {
		if !request {
			return nil, badLine{drop: true}
		}
		return nil, badLine{code: jsonrpc.CodeInvalidRequest, text: "invalid request: " + problem, nullID: true}
	}
	m, err := jsonrpc.DecodeMessage(line)
	if err != nil {
		return nil, badLine{code: jsonrpc.CodeInvalidRequest, text: "invalid request: " + err.Error()}
	}
	return m, badLine{}
}

// idOf returns the id of a request that could not be decoded, when it has a
// usable one.
func idOf(line []byte) *jsonrpc.ID {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(line, &probe) != nil || len(probe.ID) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(probe.ID, &v) != nil {
		return nil
	}
	id, err := jsonrpc.MakeID(v)
	if err != nil {
		return nil
	}
	return &id
}

// reply writes an error response for a message the server never saw.
func (c *stdioConn) reply(id *jsonrpc.ID, code int64, msg string) {
	resp := &jsonrpc.Response{Error: &jsonrpc.Error{Code: code, Message: msg}}
	if id != nil {
		resp.ID = *id
	}
	data, err := jsonrpc.EncodeMessage(resp)
	if err != nil {
		return
	}
	if id == nil {
		// JSON-RPC wants "id": null when the id could not be read.
		data = nullID(data)
	}
	_ = c.writeLine(data)
}

// nullID makes sure an error response without an id carries "id":null.
func nullID(data []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return data
	}
	if _, ok := m["id"]; ok {
		return data
	}
	m["id"] = json.RawMessage("null")
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}

func (c *stdioConn) writeLine(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(data)
}

// writeLocked writes one line; it runs with wmu held.
func (c *stdioConn) writeLocked(data []byte) error {
	buf := make([]byte, 0, len(data)+1)
	buf = append(append(buf, data...), '\n')
	return c.writeFramedLocked(buf)
}

// writeFramedLocked writes line, which ends in its newline; it runs with
// wmu held.
func (c *stdioConn) writeFramedLocked(line []byte) error {
	select {
	case <-c.closed:
		return io.ErrClosedPipe
	default:
	}
	_, err := c.out.Write(line)
	return err
}

// Read implements sdk.Connection.
func (c *stdioConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.closed:
		return nil, io.EOF
	case m := <-c.incoming:
		return m.msg, m.err
	}
}

// Write implements sdk.Connection. A response frees its id; the answer to
// initialize (or a first answer of the stateless protocol) opens the
// session for more than replies; a notification or request from the server
// is held while the session's phase does not allow it.
func (c *stdioConn) Write(ctx context.Context, m jsonrpc.Message) error {
	r, isResp := m.(*jsonrpc.Response)
	if isResp {
		fixErrorCode(r)
	}
	data, err := jsonrpc.EncodeMessage(m)
	if err != nil {
		return fmt.Errorf("mcp: encode: %w", err)
	}
	var now stdioList
	if isResp && c.listState != nil {
		c.mu.Lock()
		_, listed := c.pendingLists[r.ID]
		c.mu.Unlock()
		if listed {
			now.version, now.key, _ = c.listState()
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	next := c.phase
	if isResp {
		method, ok := c.inflight[r.ID]
		delete(c.inflight, r.ID)
		if len(c.pendingLists) > 0 {
			c.keepList(r, now)
		}
		if ok && r.Error == nil {
			switch method {
			case "initialize":
				next = max(next, phaseInitialized)
			case "ping":
			default:
				// A request answered without initialize: the stateless
				// protocol (server/discover and after), which has no
				// notifications/initialized to wait for.
				if c.phase == phaseNew {
					next = phaseReady
				}
			}
		}
	} else if req, ok := m.(*jsonrpc.Request); ok && !c.allowed(req) {
		if len(c.held) < maxHeld && !slices.ContainsFunc(c.held, func(h []byte) bool { return bytes.Equal(h, data) }) {
			c.held = append(c.held, data)
		}
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if err := c.writeLocked(data); err != nil {
		return err
	}
	return c.advanceLocked(next)
}

// allowed reports whether the server may send req in the current phase. It
// runs with mu held.
func (c *stdioConn) allowed(req *jsonrpc.Request) bool {
	switch c.phase {
	case phaseNew:
		return false
	case phaseInitialized:
		return req.Method == "ping" || req.Method == "notifications/message"
	}
	return true
}

// Close implements sdk.Connection. It closes the input when it can be
// closed, which ends a pending read of a pipe.
func (c *stdioConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		if cl, ok := c.in.(io.Closer); ok && c.in != os.Stdin {
			_ = cl.Close()
		}
	})
	return nil
}

// SessionID implements sdk.Connection: stdio has one session and no id.
func (c *stdioConn) SessionID() string { return "" }

// fixErrorCode gives an error response a JSON-RPC code when the SDK left it
// at 0 (it does for a request sent before initialize).
func fixErrorCode(r *jsonrpc.Response) {
	if r.Error == nil {
		return
	}
	var we *jsonrpc.Error
	if !errors.As(r.Error, &we) {
		we = &jsonrpc.Error{Message: r.Error.Error()}
	}
	if we.Code != 0 {
		return
	}
	fixed := *we
	fixed.Code = jsonrpc.CodeInternalError
	if sdkFailureOf(we.Message) == sdkFailureBeforeInit {
		fixed.Code = jsonrpc.CodeInvalidRequest
		fixed.Message += "; send initialize first"
	}
	r.Error = &fixed
}
