package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultMaxMessageBytes caps one message read by StdioTransport.
const DefaultMaxMessageBytes = 16 << 20

// StdioTransport serves MCP over newline-delimited JSON on a reader and a
// writer (stdin and stdout by default). Unlike go-sdk's StdioTransport, a
// line that is not a JSON-RPC message does not end the session: the client
// gets a JSON-RPC error (parse error, invalid request, message too large,
// batch not supported) and the session goes on.
type StdioTransport struct {
	// In and Out default to os.Stdin and os.Stdout.
	In  io.Reader
	Out io.Writer
	// MaxMessageBytes caps one message; a longer line is skipped and
	// answered with an error. Zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
}

var _ sdk.Transport = (*StdioTransport)(nil)

// Connect implements sdk.Transport.
func (t *StdioTransport) Connect(context.Context) (sdk.Connection, error) {
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
		in:       in,
		out:      out,
		incoming: make(chan msgOrErr),
		closed:   make(chan struct{}),
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
}

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
			m, code, text := decode(msg)
			if m != nil {
				select {
				case c.incoming <- msgOrErr{msg: m}:
				case <-c.closed:
					return
				}
			} else {
				c.reply(idOf(msg), code, text)
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

// decode parses one line. On failure it returns the JSON-RPC error code
// and message to answer.
func decode(line []byte) (jsonrpc.Message, int64, string) {
	if !json.Valid(line) {
		return nil, jsonrpc.CodeParseError, "parse error: the line is not valid JSON; send one JSON-RPC message per line"
	}
	if line[0] == '[' {
		return nil, jsonrpc.CodeInvalidRequest, "batch requests are not supported: send one JSON-RPC message per line"
	}
	m, err := jsonrpc.DecodeMessage(line)
	if err != nil {
		return nil, jsonrpc.CodeInvalidRequest, "invalid request: " + err.Error()
	}
	return m, 0, ""
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
	select {
	case <-c.closed:
		return io.ErrClosedPipe
	default:
	}
	buf := make([]byte, 0, len(data)+1)
	buf = append(append(buf, data...), '\n')
	_, err := c.out.Write(buf)
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

// Write implements sdk.Connection.
func (c *stdioConn) Write(ctx context.Context, m jsonrpc.Message) error {
	if r, ok := m.(*jsonrpc.Response); ok {
		fixErrorCode(r)
	}
	data, err := jsonrpc.EncodeMessage(m)
	if err != nil {
		return fmt.Errorf("mcp: encode: %w", err)
	}
	return c.writeLine(data)
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
	if strings.Contains(we.Message, "during session initialization") {
		fixed.Code = jsonrpc.CodeInvalidRequest
		fixed.Message += "; send initialize first"
	}
	r.Error = &fixed
}
