package agent

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/membrane-mcp/membrane/calls"
)

// A capabilities card is a short section of the system prompt that lists
// the tools an agent has, one line each, grouped by the component that owns
// them. Small local models follow a plain list better than they read the
// JSON schemas of the tools parameter, so an agent on one gets the card by
// default (see CardAuto).

// DefaultCardChars is the budget of a card whose CardOptions leave MaxChars
// zero: about 500 tokens at four characters a token.
const DefaultCardChars = 2000

// CharsPerToken is the rough ratio CardOptions.MaxTokens is converted by.
const CharsPerToken = 4

// minCardLine is the shortest description worth showing; below it a card
// shows names only.
const minCardLine = 16

// cardLine is the longest one tool's description may be on a card that has
// room for everything.
const cardLine = 100

// CardOptions configures a capabilities card. The zero value is usable.
type CardOptions struct {
	// MaxChars bounds the card's length in bytes. Zero means MaxTokens
	// when that is set, else DefaultCardChars; negative means no bound.
	MaxChars int
	// MaxTokens bounds the card in tokens, counted as CharsPerToken bytes
	// each. It is used when MaxChars is zero.
	MaxTokens int
	// Title is the card's first line. Empty means "## Your tools".
	Title string
	// Group, when set, names the group a call is listed under. Nil means
	// its calls.Call.Group ("other" when empty).
	Group func(calls.Call) string
}

func (o *CardOptions) budget() int {
	if o == nil {
		return DefaultCardChars
	}
	switch {
	case o.MaxChars != 0:
		return o.MaxChars
	case o.MaxTokens > 0:
		return o.MaxTokens * CharsPerToken
	}
	return DefaultCardChars
}

func (o *CardOptions) title() string {
	if o == nil || o.Title == "" {
		return "## Your tools"
	}
	return o.Title
}

// cardGroup is the group label of calls that name none.
const cardGroup = "other"

// RenderCard returns the capabilities card of cs: a title, one line of
// advice, then the tools grouped by calls.Call.Group (groups and tools in
// name order), each "- name: the first sentence of its description". It is
// deterministic: the same calls give the same text, whatever their order.
//
// The card never exceeds the budget. When the whole list does not fit,
// descriptions are cut shorter, then dropped (names only), then the
// largest groups lose their last tools, each group saying how many it
// left out. No calls, or a budget too small for the title, give "".
func RenderCard(cs []calls.Call, o *CardOptions) string {
	if len(cs) == 0 {
		return ""
	}
	var label func(calls.Call) string
	if o != nil {
		label = o.Group
	}
	groups := groupCalls(cs, label)
	budget := o.budget()
	head := o.title() + "\n" + cardAdvice + "\n"
	if s := renderGroups(head, groups, cardLine); budget < 0 || len(s) <= budget {
		return s
	}
	// The widest descriptions that fit (the length grows with the width).
	if s := renderGroups(head, groups, minCardLine); len(s) <= budget {
		lo, hi := minCardLine, cardLine // renderGroups(lo) fits, renderGroups(hi) does not
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if len(renderGroups(head, groups, mid)) <= budget {
				lo = mid
			} else {
				hi = mid
			}
		}
		return renderGroups(head, groups, lo)
	}
	if s := renderGroups(head, groups, 0); len(s) <= budget {
		return s
	}
	// Names only do not fit: show fewer tools, taking them from the
	// largest group first (the last group among equals), so that every
	// group keeps a line as long as it can. The fewest left out that fit
	// are found by bisection.
	total := 0
	for _, g := range groups {
		total += len(g.calls)
	}
	cut := func(k int) string { return renderGroups(head, dropLargest(groups, k), 0) }
	if len(cut(total)) <= budget {
		lo, hi := 0, total // cut(hi) fits, cut(lo) does not
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if len(cut(mid)) <= budget {
				hi = mid
			} else {
				lo = mid
			}
		}
		return cut(hi)
	}
	if s := strings.TrimSuffix(head, "\n"); len(s) <= budget {
		return s
	}
	return ""
}

// dropLargest returns groups with k tools left out, each taken from the
// group that shows the most at that moment (the last among equals).
func dropLargest(groups []cardSection, k int) []cardSection {
	shown := make([]int, len(groups))
	for i, g := range groups {
		shown[i] = len(g.calls)
	}
	for ; k > 0; k-- {
		big := 0
		for i := range groups {
			if shown[i] >= shown[big] {
				big = i
			}
		}
		if shown[big] == 0 {
			break
		}
		shown[big]--
	}
	out := make([]cardSection, len(groups))
	for i, g := range groups {
		out[i] = cardSection{name: g.name, calls: g.calls[:shown[i]], descs: g.descs[:shown[i]], hidden: len(g.calls) - shown[i]}
	}
	return out
}

const cardAdvice = "Call a tool by its name with JSON arguments that match its schema; use only these tools."

type cardSection struct {
	name   string
	calls  []calls.Call
	descs  []string // each call's first sentence, on one line
	hidden int
}

func groupCalls(cs []calls.Call, label func(calls.Call) string) []cardSection {
	by := map[string][]calls.Call{}
	for _, c := range cs {
		g := c.Group
		if label != nil {
			g = label(c)
		}
		if g == "" {
			g = cardGroup
		}
		by[g] = append(by[g], c)
	}
	out := make([]cardSection, 0, len(by))
	for name, list := range by {
		slices.SortFunc(list, func(a, b calls.Call) int { return cmp.Compare(a.Name, b.Name) })
		descs := make([]string, len(list))
		for i, c := range list {
			descs[i] = firstSentence(c.Description)
		}
		out = append(out, cardSection{name: name, calls: list, descs: descs})
	}
	slices.SortFunc(out, func(a, b cardSection) int { return cmp.Compare(a.name, b.name) })
	return out
}

func renderGroups(head string, groups []cardSection, width int) string {
	var b strings.Builder
	b.WriteString(head)
	for _, g := range groups {
		if len(g.calls) == 0 && g.hidden == 0 {
			continue
		}
		b.WriteString(g.name)
		b.WriteString(":\n")
		for i, c := range g.calls {
			b.WriteString("- ")
			b.WriteString(c.Name)
			if d := summary(g.descs[i], width); d != "" {
				b.WriteString(": ")
				b.WriteString(d)
			}
			b.WriteByte('\n')
		}
		if g.hidden > 0 {
			fmt.Fprintf(&b, "- (%d more)\n", g.hidden)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// firstSentence is the first sentence of d, on one line.
func firstSentence(d string) string {
	d = strings.Join(strings.Fields(d), " ")
	if i := strings.Index(d, ". "); i >= 0 {
		d = d[:i+1]
	}
	return d
}

// summary is d cut to at most width bytes on a word boundary with "...".
// A width under minCardLine gives "".
func summary(d string, width int) string {
	if width < minCardLine {
		return ""
	}
	if len(d) <= width {
		return d
	}
	const more = "..."
	cut := width - len(more)
	if i := strings.LastIndexByte(d[:cut+1], ' '); i > 0 {
		cut = i
	}
	for cut > 0 && !utf8Start(d[cut]) {
		cut--
	}
	return strings.TrimRight(d[:cut], " ,;:") + more
}

// Card keeps the capabilities card of a changing set of calls: it follows
// a router (or a policy View of one) through Subscribe, and renders the
// card again only after the set changed. It is safe for concurrent use.
type Card struct {
	opts  *CardOptions
	unsub func()

	mu      sync.Mutex
	calls   map[string]calls.Call
	text    string
	stale   bool
	version uint64
}

// CardSource is what a Card follows. *calls.Router and a policy View
// implement it.
type CardSource interface {
	Subscribe(fn func(calls.Change)) (cancel func())
}

// NewCard returns a Card of the calls of src, kept up to date until Close.
// A nil opts means the defaults.
func NewCard(src CardSource, opts *CardOptions) *Card {
	c := &Card{opts: opts, calls: map[string]calls.Call{}, stale: true}
	c.unsub = src.Subscribe(c.apply)
	return c
}

func (c *Card) apply(ch calls.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range ch.Removed {
		delete(c.calls, name)
	}
	for _, call := range ch.Added {
		c.calls[call.Name] = call
	}
	c.stale = true
	c.version++
}

// Close stops following the source.
func (c *Card) Close() { c.unsub() }

// Version counts the changes the card has seen; it grows whenever the set
// of calls changed.
func (c *Card) Version() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// String returns the card of every call the source holds now.
func (c *Card) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stale {
		c.text = RenderCard(c.list(nil), c.opts)
		c.stale = false
	}
	return c.text
}

// For returns the card of the calls allow keeps (nil keeps all). It is
// rendered on every call; String is the cached one.
func (c *Card) For(allow func(calls.Call) bool) string {
	if allow == nil {
		return c.String()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return RenderCard(c.list(allow), c.opts)
}

func (c *Card) list(allow func(calls.Call) bool) []calls.Call {
	out := make([]calls.Call, 0, len(c.calls))
	for _, call := range c.calls {
		if allow == nil || allow(call) {
			out = append(out, call)
		}
	}
	return out
}

// CardMode says which agents get a capabilities card.
type CardMode string

// The card modes.
const (
	// CardModeAuto gives a card to agents on small or local models (see
	// CardAuto).
	CardModeAuto CardMode = "auto"
	// CardModeOn gives every agent a card.
	CardModeOn CardMode = "on"
	// CardModeOff gives none a card.
	CardModeOff CardMode = "off"
)

// CardModes lists the valid modes, for help texts and checks.
var CardModes = []string{string(CardModeAuto), string(CardModeOn), string(CardModeOff)}

// Enabled reports whether an agent on model, at baseURL, gets a card in
// mode m. The zero mode is CardModeAuto.
func (m CardMode) Enabled(model, baseURL string) bool {
	switch m {
	case CardModeOn:
		return true
	case CardModeOff:
		return false
	}
	return CardAuto(model, baseURL)
}

// sizeInName finds a parameter count such as "7b", "0.5b" or "1.5B" in a
// model name (qwen2.5:7b, llama3.2:3b-instruct, gemma3:1b).
var sizeInName = regexp.MustCompile(`(?i)(?:^|[^a-z0-9.])(\d+(?:\.\d+)?)b(?:$|[^a-z0-9])`)

// SmallModelBillions is the largest model, in billions of parameters,
// that CardAuto counts as small.
const SmallModelBillions = 14

// CardAuto reports whether an agent on model, served at baseURL, gets a
// capabilities card by default: yes for a small model (a parameter count
// in its name of at most SmallModelBillions, or "mini", "tiny" or "small"
// in it), and for a model of unknown size on a loopback endpoint (a local
// Ollama, most likely small); no otherwise.
func CardAuto(model, baseURL string) bool {
	if m := sizeInName.FindStringSubmatch(model); m != nil {
		n, err := strconv.ParseFloat(m[1], 64)
		if err == nil {
			return n <= SmallModelBillions
		}
	}
	lower := strings.ToLower(model)
	for _, w := range []string{"mini", "tiny", "small"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return loopbackURL(baseURL)
}

var loopbackHost = regexp.MustCompile(`^(?i)https?://(?:[^@/]*@)?(?:localhost|127\.[0-9.]+|\[::1\])(?::\d+)?(?:/|$)`)

func loopbackURL(s string) bool { return s == "" || loopbackHost.MatchString(s) }
