package openaicompat

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/openai/openai-go/v3/option"

	"github.com/membrane-mcp/membrane/calls"
)

// maxErrorBody bounds the error reply the client reads.
const maxErrorBody = 64 << 10

// errorBodies rewrites an error reply that openai-go cannot decode into
// the OpenAI form it can, {"error": {"message": ...}}, so that the status
// reaches explain. openai-go decodes the "error" member as an object and
// returns the JSON error alone when it is a string, the form vLLM's
// --api-key check, LM Studio and Ollama answer with ({"error":
// "Unauthorized"}); and a body that is not JSON (a web page at the URL)
// leaves an empty message. TestOpenAIGoErrorBodies pins that behaviour.
func errorBodies(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	res, err := next(req)
	if err != nil || res.StatusCode < 400 {
		return res, err
	}
	body, rerr := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	res.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	if msg, rewrite := errorText(body); rewrite {
		body, _ = json.Marshal(map[string]any{"error": map[string]string{"message": msg}})
		res.Header.Set("Content-Type", "application/json")
		res.ContentLength = int64(len(body))
		res.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

// errorText is the message of an error body openai-go cannot read, and
// whether it needs rewriting: a string "error" member, a JSON body with
// none, or a body that is not JSON.
func errorText(body []byte) (string, bool) {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &e) != nil {
		return plainBody(body), true
	}
	if len(e.Error) > 0 && e.Error[0] == '{' {
		return "", false // the OpenAI form
	}
	var s string
	switch {
	case json.Unmarshal(e.Error, &s) == nil && s != "":
		return s, true
	case e.Message != "":
		return e.Message, true
	case json.Unmarshal(e.Detail, &s) == nil && s != "":
		return s, true // FastAPI's (vLLM's) {"detail": "..."}
	}
	return strings.TrimSpace(string(body)), true
}

// plainBody is a non-JSON error body as a message shows it: a web page by
// its title, other text cut to a line.
func plainBody(body []byte) string {
	if title, page := calls.HTMLPage(string(body)); page {
		if title == "" {
			return "an HTML page, not an OpenAI-compatible API reply"
		}
		return "an HTML page (" + trimTo(title, 80) + "), not an OpenAI-compatible API reply"
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(body), "�"))
	if s == "" {
		return "an empty reply, not an OpenAI-compatible API reply"
	}
	return trimTo(s, 300)
}

func trimTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
