// Package policy decides which tools a client sees, which it may call, and
// how often: tool selection by glob, scoped bearer tokens read from a file
// that is reloaded while the server runs, per-tool and per-client rate
// limits (token buckets from golang.org/x/time/rate) and a per-client
// concurrency cap.
//
// The pieces meet the rest of membrane at three seams:
//
//   - A [View] is a router as a client sees it: the live set of calls,
//     filtered by a [Selector] (--tools, --exclude-tools). Calls that
//     appear later pass the same filter, and a change of filter is one
//     change to subscribers, so notifications/tools/list_changed keeps
//     working.
//   - A [Store] holds the scoped tokens. The HTTP layer resolves a bearer
//     token to a [Principal] with [Store.Lookup] (constant time), and the
//     MCP adapter carries it in the request context ([WithPrincipal]).
//   - [Policy.Middleware] is router middleware: it refuses a call outside
//     the principal's scope, over a rate limit (with when to retry) or over
//     the principal's concurrency cap, as tool errors a model can act on.
//
// The simple case, one shared token or none, has no principal in the
// context: every tool, no per-client limits.
package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// A Selector picks tool names by glob: a name is selected when it matches
// an include pattern (or there are none) and no exclude pattern. Patterns
// are path.Match globs: *, ? and [classes]. The zero Selector selects
// everything.
type Selector struct {
	include, exclude []string
}

// NewSelector checks the patterns and returns their Selector.
func NewSelector(include, exclude []string) (*Selector, error) {
	s := &Selector{}
	for _, list := range []struct {
		in  []string
		out *[]string
		of  string
	}{{include, &s.include, "tool"}, {exclude, &s.exclude, "excluded tool"}} {
		for _, p := range list.in {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if _, err := path.Match(p, ""); err != nil {
				return nil, &PatternError{Pattern: p, Reason: "not a valid glob (use *, ? and [a-z])"}
			}
			*list.out = append(*list.out, p)
		}
	}
	return s, nil
}

// A PatternError is a glob that cannot be used.
type PatternError struct {
	Pattern, Reason string
}

func (e *PatternError) Error() string { return fmt.Sprintf("tool pattern %q: %s", e.Pattern, e.Reason) }

// Allows reports whether name is selected. A nil Selector selects
// everything.
func (s *Selector) Allows(name string) bool {
	if s == nil {
		return true
	}
	if len(s.include) > 0 && !matchAny(s.include, name) {
		return false
	}
	return !matchAny(s.exclude, name)
}

// All reports whether s selects every name.
func (s *Selector) All() bool {
	return s == nil || len(s.include) == 0 && len(s.exclude) == 0 ||
		slices.Contains(s.include, "*") && len(s.exclude) == 0
}

// Unmatched returns the patterns, include and exclude, that match none of
// names. At start-up, where the set of tools is known, that is a typo; for
// tools that appear later (a model not yet pulled) it may not be.
func (s *Selector) Unmatched(names []string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, p := range append(slices.Clone(s.include), s.exclude...) {
		if !slices.ContainsFunc(names, func(n string) bool { return globMatch(p, n) }) {
			out = append(out, p)
		}
	}
	return out
}

// Patterns returns the include and exclude patterns.
func (s *Selector) Patterns() (include, exclude []string) {
	if s == nil {
		return nil, nil
	}
	return slices.Clone(s.include), slices.Clone(s.exclude)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

func globMatch(p, name string) bool {
	ok, _ := path.Match(p, name) // patterns are checked when made
	return ok
}
