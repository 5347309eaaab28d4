package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Checks of JSON-RPC input that go-sdk v1.8.0 does not make itself. Each is
// pinned by a contract test (jsonrpc_test.go) that fails when the SDK
// changes the behaviour it works around.

// maxSafeID is the largest integer id that survives go-sdk's decoding,
// which reads ids as float64 before it turns them into int64.
const maxSafeID = 1<<53 - 1

var integerLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// idProblem says what is wrong with the raw "id" of a message, or "" when
// it is a string or an integer the SDK reads back exactly. MCP allows no
// other ids: go-sdk would answer an id of 1.5 as 1, and 2^53+1 as 2^53.
func idProblem(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "the id is not a valid JSON string"
		}
		return ""
	case 'n':
		return "the id is null; a request needs a string or integer id (leave id out for a notification)"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if !integerLiteral.Match(raw) {
			return fmt.Sprintf("the id %s is not an integer; use a string or an integer", raw)
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n > maxSafeID || n < -maxSafeID {
			return fmt.Sprintf("the id %s is outside ±%d, the integers a JSON number holds exactly; use a smaller one or a string", raw, int64(maxSafeID))
		}
		return ""
	}
	return "the id must be a string or an integer"
}

// members are the member names of a JSON-RPC message.
var members = []string{"jsonrpc", "id", "method", "params", "result", "error"}

// messageIDProblem returns what is wrong with the id of one JSON-RPC
// message, and whether the message is a request (has a method). Member
// names are matched exactly: "ID" is not "id", though Go's decoders would
// fold it into one, so a near miss is a problem too. A message that is not
// a JSON object passes: the decoder answers it.
func messageIDProblem(msg []byte) (problem string, request bool) {
	var env map[string]json.RawMessage
	if json.Unmarshal(msg, &env) != nil {
		return "", false
	}
	_, request = env["method"]
	for k := range env {
		for _, m := range members {
			if k != m && strings.EqualFold(k, m) {
				return fmt.Sprintf("the member %q is not %q: JSON-RPC member names are lower case", k, m), true
			}
		}
	}
	return idProblem(env["id"]), request
}

// checkIDs answers -32600 with id null to a POST body whose message (or any
// message of a batch) has an id that is neither a string nor an integer,
// before the SDK rounds it. It reports whether the request may go on.
func checkIDs(w http.ResponseWriter, body []byte) bool {
	var msgs []json.RawMessage // a fresh slice: RawMessage decodes in place
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
		if json.Unmarshal(t, &msgs) != nil {
			return true // the SDK answers malformed input
		}
	} else {
		msgs = []json.RawMessage{body}
	}
	for _, m := range msgs {
		if p, _ := messageIDProblem(m); p != "" {
			writeRPCError(w, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, "invalid request: "+p)
			return false
		}
	}
	return true
}

// validLevels are the logging levels of MCP (RFC 5424 severities).
var validLevels = map[string]bool{
	"debug": true, "info": true, "notice": true, "warning": true,
	"error": true, "critical": true, "alert": true, "emergency": true,
}

// checkParams is receiving middleware for what go-sdk v1.8.0 accepts and
// MCP does not: a progress token that is neither a string nor an integer,
// and a logging level that does not exist. Both get -32602.
func checkParams(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if p := req.GetParams(); p != nil && !isNilParams(p) {
			if tok, ok := p.GetMeta()["progressToken"]; ok && !validToken(tok) {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams,
					Message: fmt.Sprintf("invalid params: _meta.progressToken must be a string or an integer, not %s", jsonType(tok))}
			}
		}
		if method == "logging/setLevel" {
			//lint:ignore SA1019 logging/setLevel is still served to clients of 2025-11-25 and before.
			if r, ok := req.(*sdk.ServerRequest[*sdk.SetLoggingLevelParams]); ok && r.Params != nil && !validLevels[string(r.Params.Level)] {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams,
					Message: fmt.Sprintf("invalid params: logging level %q is not one of debug, info, notice, warning, error, critical, alert, emergency", r.Params.Level)}
			}
		}
		return next(ctx, method, req)
	}
}

// isNilParams reports whether p is a typed nil, which GetMeta would
// dereference.
func isNilParams(p sdk.Params) bool {
	v := reflect.ValueOf(p)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// validToken reports whether a decoded progress token is a string or an
// integer.
func validToken(tok any) bool {
	switch v := tok.(type) {
	case string:
		return true
	case float64:
		return v == float64(int64(v)) && v <= maxSafeID && v >= -maxSafeID
	case int, int64, int32:
		return true
	case json.Number:
		return integerLiteral.MatchString(string(v))
	}
	return false
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case float64, json.Number:
		return "a fractional number"
	}
	return fmt.Sprintf("%T", v)
}
