package policy

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/membrane-mcp/membrane/calls"
)

type principalKey struct{}

// WithPrincipal returns ctx carrying p, for the router's middleware.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, or nil for the simple
// case (one shared token or none).
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Reason says why a call was refused.
type Reason string

// The reasons a call is refused.
const (
	ReasonScope       Reason = "scope"       // the tool is outside the principal's tools
	ReasonRate        Reason = "rate"        // over a rate limit
	ReasonConcurrency Reason = "concurrency" // the principal's calls at once
)

// Refusal describes one refused call, for metrics and the ledger.
type Refusal struct {
	// Principal is the principal's name; "" in the simple case.
	Principal string
	Call      string
	Reason    Reason
	// RetryAfter, for ReasonRate, is how long until the call would pass.
	RetryAfter time.Duration
}

// Options configures a Policy. The zero value limits nothing.
type Options struct {
	// Limits apply to every client's calls together: a bucket here is
	// shared by all clients, so a bad prompt cannot hammer one model.
	Limits []Limit
	// Now is the clock of the rate limits. Nil means time.Now.
	Now func() time.Time
	// OnRefuse, when set, is told of every refused call. It runs on the
	// caller's goroutine and must be quick.
	OnRefuse func(ctx context.Context, r Refusal)
}

// Policy enforces scopes, rate limits and concurrency caps as router
// middleware. It is safe for concurrent use.
type Policy struct {
	o   Options
	now func() time.Time

	// limMu makes the check of several buckets and the taking from them
	// one step, so that a refused call takes nothing from any bucket.
	limMu  sync.Mutex
	global []*bucketSet

	mu      sync.RWMutex
	clients map[string]*clientState // by Principal.state

	refused [3]atomic.Uint64
}

// bucketSet is one Limit's buckets: one shared, or one per tool.
type bucketSet struct {
	l      Limit
	sel    *Selector
	shared *rate.Limiter
	// perTool is guarded by Policy.limMu.
	perTool map[string]*rate.Limiter
}

func newBucketSet(l Limit) *bucketSet {
	sel, _ := NewSelector([]string{l.Tools}, nil) // checked by Limit.check
	b := &bucketSet{l: l, sel: sel}
	if l.PerTool {
		b.perTool = map[string]*rate.Limiter{}
	} else {
		b.shared = rate.NewLimiter(rate.Limit(l.PerMinute/60), l.Burst)
	}
	return b
}

// limiter returns the bucket for tool, or nil when the limit does not
// cover it. limMu is held.
func (b *bucketSet) limiter(tool string) *rate.Limiter {
	if !b.sel.Allows(tool) {
		return nil
	}
	if b.shared != nil {
		return b.shared
	}
	lim, ok := b.perTool[tool]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(b.l.PerMinute/60), b.l.Burst)
		b.perTool[tool] = lim
	}
	return lim
}

type clientState struct {
	buckets []*bucketSet
	slots   chan struct{} // nil: no cap
}

// New returns a Policy, or an error naming a limit that is wrong.
func New(o Options) (*Policy, error) {
	p := &Policy{o: o, now: o.Now, clients: map[string]*clientState{}}
	if p.now == nil {
		p.now = time.Now
	}
	for _, l := range o.Limits {
		if err := l.check(); err != nil {
			return nil, err
		}
		p.global = append(p.global, newBucketSet(l))
	}
	return p, nil
}

// Refused returns how many calls were refused for each reason.
func (p *Policy) Refused() map[Reason]uint64 {
	return map[Reason]uint64{
		ReasonScope:       p.refused[0].Load(),
		ReasonRate:        p.refused[1].Load(),
		ReasonConcurrency: p.refused[2].Load(),
	}
}

// Retain drops the runtime state of principals not in set, after a reload.
func (p *Policy) Retain(set *TokenSet) {
	keep := map[string]bool{SharedName: true}
	for _, pr := range set.Principals() {
		keep[pr.state] = true
	}
	p.mu.Lock()
	for k := range p.clients {
		if !keep[k] {
			delete(p.clients, k)
		}
	}
	p.mu.Unlock()
}

func (p *Policy) client(pr *Principal) *clientState {
	p.mu.RLock()
	st, ok := p.clients[pr.state]
	p.mu.RUnlock()
	if ok {
		return st
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.clients[pr.state]; ok {
		return st
	}
	st = &clientState{}
	for _, l := range pr.Limits {
		st.buckets = append(st.buckets, newBucketSet(l))
	}
	if pr.Concurrency > 0 {
		st.slots = make(chan struct{}, pr.Concurrency)
	}
	p.clients[pr.state] = st
	return st
}

// Middleware returns the router middleware that enforces the policy.
func (p *Policy) Middleware() calls.Middleware {
	return func(next calls.Handler) calls.Handler {
		return calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			pr := PrincipalFrom(ctx)
			if pr == nil || pr.Unlimited() {
				if len(p.global) == 0 {
					return next.Handle(ctx, req)
				}
				if res := p.takeRate(ctx, pr, nil, req.Call.Name); res != nil {
					return res, nil
				}
				return next.Handle(ctx, req)
			}
			name := req.Call.Name
			if !pr.Tools.Allows(name) {
				p.refuse(ctx, Refusal{Principal: pr.Name, Call: name, Reason: ReasonScope})
				res := calls.Errorf("unknown tool %q: it is not available to this client (token %q). List the tools (tools/list) for the ones it may call.", name, pr.Name)
				res.Structured = map[string]any{"refused": string(ReasonScope)}
				return res, nil
			}
			st := p.client(pr)
			if st.slots != nil {
				select {
				case st.slots <- struct{}{}:
					defer func() { <-st.slots }()
				default:
					p.refuse(ctx, Refusal{Principal: pr.Name, Call: name, Reason: ReasonConcurrency})
					res := calls.Errorf("busy: this client (token %q) already has %d calls running, its limit; wait for one to finish and try again", pr.Name, cap(st.slots))
					res.Structured = map[string]any{"busy": true, "refused": string(ReasonConcurrency)}
					return res, nil
				}
			}
			if res := p.takeRate(ctx, pr, st, name); res != nil {
				return res, nil
			}
			return next.Handle(ctx, req)
		})
	}
}

// takeRate takes one call from every bucket that covers tool (the shared
// ones and the principal's), or from none: a refused call costs nothing.
// It returns the refusal, or nil when the call may go.
func (p *Policy) takeRate(ctx context.Context, pr *Principal, st *clientState, tool string) *calls.Result {
	p.limMu.Lock()
	now := p.now()
	var (
		lims  [8]*rate.Limiter
		use   = lims[:0]
		wait  time.Duration
		which *Limit
	)
	consider := func(sets []*bucketSet) {
		for _, b := range sets {
			lim := b.limiter(tool)
			if lim == nil {
				continue
			}
			use = append(use, lim)
			if tokens := lim.TokensAt(now); tokens < 1 {
				d := time.Duration(math.Ceil((1 - tokens) / float64(lim.Limit()) * float64(time.Second)))
				if d > wait {
					wait, which = d, &b.l
				}
			}
		}
	}
	consider(p.global)
	if st != nil {
		consider(st.buckets)
	}
	if wait == 0 {
		for _, lim := range use {
			lim.AllowN(now, 1)
		}
		p.limMu.Unlock()
		return nil
	}
	p.limMu.Unlock()
	who, scope := "", "all clients together"
	if pr != nil {
		who = pr.Name
	}
	if st != nil && !containsLimit(p.global, which) {
		scope = fmt.Sprintf("this client (token %q)", who)
	}
	p.refuse(ctx, Refusal{Principal: who, Call: tool, Reason: ReasonRate, RetryAfter: wait})
	secs := math.Ceil(wait.Seconds()*10) / 10
	res := calls.Errorf("rate limited: %s may make %g calls a minute to %s (bursts of %d), for %s; try again in %.1f s",
		tool, which.PerMinute, which.Tools, which.Burst, scope, secs)
	res.Structured = map[string]any{"rate_limited": true, "retry_after_s": secs, "refused": string(ReasonRate)}
	return res
}

func containsLimit(sets []*bucketSet, l *Limit) bool {
	for _, b := range sets {
		if &b.l == l {
			return true
		}
	}
	return false
}

func (p *Policy) refuse(ctx context.Context, r Refusal) {
	switch r.Reason {
	case ReasonScope:
		p.refused[0].Add(1)
	case ReasonRate:
		p.refused[1].Add(1)
	case ReasonConcurrency:
		p.refused[2].Add(1)
	}
	if p.o.OnRefuse != nil {
		p.o.OnRefuse(ctx, r)
	}
}
