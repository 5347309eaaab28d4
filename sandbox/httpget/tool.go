package httpget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

var inputSchema = json.RawMessage(`{"type":"object","properties":{"url":{"type":"string","description":"The http or https URL to fetch. Only URLs the server's allow-list names can be fetched."}},"required":["url"],"additionalProperties":false}`)

// outputSchema is the structured content of http_get: the facts of the
// page (its text is the text content, once), or a refusal.
var outputSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "url": {"type": "string", "description": "The URL as asked for, normalised."},
    "final_url": {"type": "string", "description": "Where the redirects ended."},
    "status": {"type": "integer", "description": "The HTTP status."},
    "content_type": {"type": "string", "description": "The media type, without parameters."},
    "bytes": {"type": "integer", "minimum": 0, "description": "Body bytes read."},
    "truncated": {"type": "boolean", "description": "The body or its text was cut at a limit."},
    "cached": {"type": "boolean", "description": "The page came from the cache."},
    "refused": {"type": "boolean", "description": "The URL was refused (not on the allow-list, or a private address); nothing was fetched."}
  },
  "anyOf": [
    {"required": ["url", "final_url", "status", "content_type", "bytes", "truncated", "cached"]},
    {"required": ["refused"]}
  ]
}`)

// Call returns http_get as a call, in group "http_get". Its description
// names what the allow-list lets through, so that a model does not guess.
func (g *Getter) Call() calls.Call {
	allowed := make([]string, 0, len(g.rules))
	for _, r := range g.rules {
		allowed = append(allowed, r.raw)
	}
	if len(allowed) > 20 {
		allowed = append(allowed[:20], fmt.Sprintf("and %d more", len(allowed)-20))
	}
	return calls.Call{
		Name:  Name,
		Title: "Fetch a web page",
		Description: "Fetch a web page or a text document over http(s) and return it as readable text (HTML becomes Markdown), " +
			"with the final URL, the status and the content type. Only public addresses on the server's allow-list can be fetched: " +
			strings.Join(allowed, ", ") + ". Answers are cached for a short while.",
		InputSchema:  inputSchema,
		OutputSchema: outputSchema,
		Kind:         calls.KindTool,
		Group:        Name,
		Timeout:      g.o.Timeout + 5*time.Second,
		Concurrency:  g.o.Concurrency,
		ReadOnly:     true,
		Handler:      calls.HandlerFunc(g.handle),
	}
}

func (g *Getter) handle(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	var a struct {
		URL string `json:"url"`
	}
	if err := calls.DecodeArgs(req.Arguments, &a); err != nil {
		return calls.Errorf("%v; http_get takes {\"url\": string}", err), nil
	}
	if strings.TrimSpace(a.URL) == "" {
		return calls.Errorf("url is required: give the http or https URL to fetch"), nil
	}
	p, err := g.Fetch(ctx, a.URL)
	var (
		be *BlockedError
		fe *FetchError
	)
	switch {
	case errors.As(err, &be):
		res := calls.Errorf("%s. Nothing was fetched.", strings.TrimPrefix(be.Error(), "http_get: "))
		res.Structured = map[string]any{"refused": true}
		return res, nil
	case errors.As(err, &fe):
		return calls.Errorf("%s", strings.TrimPrefix(fe.Error(), "http_get: ")), nil
	case err != nil:
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "URL: %s\nStatus: %d %s\nContent-Type: %s\n", p.FinalURL, p.Status, http.StatusText(p.Status), p.ContentType)
	if p.Truncated {
		fmt.Fprintf(&b, "Truncated: yes (the page is longer than the limit; this is its beginning)\n")
	}
	b.WriteString("\n")
	b.WriteString(p.Text)
	res := calls.Text(b.String())
	res.Structured = p
	res.IsError = p.Status >= 400
	return res, nil
}
