package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/scrub"
)

// Scrubbing hides secrets in what calls answer before the model sees them:
// the text of every result (a shell's output, a model's answer, an error),
// its structured content, and the text of an error a handler returns. It
// is safe for concurrent use.
type Scrubbing struct {
	s    atomic.Pointer[scrub.Scrubber]
	log  *slog.Logger
	hits atomic.Uint64
}

// NewScrubbing returns a Scrubbing that hides what s finds. A nil log logs
// nothing.
func NewScrubbing(s *scrub.Scrubber, log *slog.Logger) *Scrubbing {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sc := &Scrubbing{log: log}
	sc.s.Store(s)
	return sc
}

// Set replaces the scrubber, as when a reload brings new secrets. Calls
// already running finish with the old one.
func (sc *Scrubbing) Set(s *scrub.Scrubber) { sc.s.Store(s) }

// Hits is how many secrets have been hidden so far.
func (sc *Scrubbing) Hits() uint64 { return sc.hits.Load() }

// Middleware returns the router middleware that scrubs every result.
func (sc *Scrubbing) Middleware() calls.Middleware {
	return func(next calls.Handler) calls.Handler {
		return calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			res, err := next.Handle(ctx, req)
			s := sc.s.Load()
			var kinds []string
			if err != nil {
				msg := err.Error()
				if ms := s.Find(msg); len(ms) > 0 {
					kinds = appendKinds(kinds, ms)
					err = errors.New(s.String(msg))
				}
			}
			if res != nil {
				kinds = result(s, res, kinds)
			}
			if len(kinds) > 0 {
				sc.hits.Add(uint64(len(kinds)))
				sc.log.DebugContext(ctx, "secrets hidden in a call's result", "call", req.Call.Name, "hits", len(kinds), "kinds", kinds)
			}
			return res, err
		})
	}
}

// result scrubs res in place and returns kinds with the kinds it hid
// appended.
func result(s *scrub.Scrubber, res *calls.Result, kinds []string) []string {
	for i := range res.Content {
		c := &res.Content[i]
		if c.Type != calls.ContentText {
			continue
		}
		if ms := s.Find(c.Text); len(ms) > 0 {
			kinds = appendKinds(kinds, ms)
			c.Text = s.String(c.Text)
		}
	}
	if res.Structured == nil {
		return kinds
	}
	doc, err := json.Marshal(res.Structured)
	if err != nil {
		return kinds
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return kinds
	}
	n := len(kinds)
	kinds = walk(s, v, kinds)
	if len(kinds) > n {
		res.Structured = s.Value(v)
	}
	return kinds
}

// walk appends the kinds of the secrets in every string of v.
func walk(s *scrub.Scrubber, v any, kinds []string) []string {
	switch v := v.(type) {
	case string:
		return appendKinds(kinds, s.Find(v))
	case []any:
		for _, e := range v {
			kinds = walk(s, e, kinds)
		}
	case map[string]any:
		for _, e := range v {
			kinds = walk(s, e, kinds)
		}
	}
	return kinds
}

func appendKinds(kinds []string, ms []scrub.Match) []string {
	for _, m := range ms {
		kinds = append(kinds, m.Kind)
	}
	return kinds
}
