package policy

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/scrub"
)

// GuardOptions configure a Guard. The zero value guards nothing: no
// limits, no scoped tokens, no scrubbing.
type GuardOptions struct {
	// Limits are the rate limits every client shares.
	Limits []Limit
	// Tokens are the scoped tokens in use at start; nil for none.
	Tokens *TokenSet
	// SharedToken is the single bearer token, kept beside Tokens as the
	// unlimited SharedName; "" for none.
	SharedToken string
	// Scrub hides secrets in what calls answer: the credential shapes,
	// Secrets, and the plain tokens of Tokens.
	Scrub   bool
	Secrets []string
	// OnRefuse is told of each refused call (Options.OnRefuse).
	OnRefuse func(context.Context, Refusal)
	// Logger gets the scrubbing's log lines; nil discards them.
	Logger *slog.Logger
}

// Guard is the policy layer in front of a router's calls: the rate limits
// and caps (Policy), the scoped tokens (Tokens, nil without any), and the
// scrubbing of answers (Scrubbing, nil when off), kept in step when the
// tokens change.
type Guard struct {
	Policy    *Policy
	Tokens    *Store
	Scrubbing *Scrubbing

	limited bool
	secrets []string
}

// NewGuard returns the Guard of o, or an error naming a limit that is
// wrong.
func NewGuard(o GuardOptions) (*Guard, error) {
	p, err := New(Options{Limits: o.Limits, OnRefuse: o.OnRefuse})
	if err != nil {
		return nil, err
	}
	g := &Guard{Policy: p, limited: len(o.Limits) > 0 || o.Tokens != nil, secrets: slices.Clone(o.Secrets)}
	if o.Tokens != nil {
		g.Tokens = NewStore(o.Tokens, o.SharedToken)
	}
	if o.Scrub {
		g.Scrubbing = NewScrubbing(g.scrubber(o.Tokens), o.Logger)
	}
	return g, nil
}

// scrubber hides the configured secrets and the plain tokens of set.
func (g *Guard) scrubber(set *TokenSet) *scrub.Scrubber {
	secrets := slices.Clone(g.secrets)
	if set != nil {
		secrets = append(secrets, set.PlainTokens()...)
	}
	return scrub.New(&scrub.Options{Secrets: secrets})
}

// Middleware returns the router's middleware, outermost first: the
// scrubbing, which sees every answer (refusals too), then the policy,
// when anything limits calls.
func (g *Guard) Middleware() []calls.Middleware {
	var out []calls.Middleware
	if g.Scrubbing != nil {
		out = append(out, g.Scrubbing.Middleware())
	}
	if g.limited {
		out = append(out, g.Policy.Middleware())
	}
	return out
}

// Use puts set in step across the guard once the Tokens store holds it:
// the policy forgets the clients no longer in it, and the scrubbing hides
// its plain tokens instead of the old ones.
func (g *Guard) Use(set *TokenSet) {
	g.Policy.Retain(set)
	if g.Scrubbing != nil {
		g.Scrubbing.Set(g.scrubber(set))
	}
}

// Watch reloads the tokens file at path as Store.Watch does, until ctx is
// done, and puts each good load in use across the guard (Use) before
// onLoad hears of it. Without scoped tokens it returns at once.
func (g *Guard) Watch(ctx context.Context, path string, interval time.Duration, onLoad func(*TokenSet), onError func(error)) {
	if g.Tokens == nil {
		return
	}
	g.Tokens.Watch(ctx, path, interval, func(set *TokenSet) {
		g.Use(set)
		if onLoad != nil {
			onLoad(set)
		}
	}, onError)
}
