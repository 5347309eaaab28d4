// Package approve asks the user before the model's calls of chosen tools
// run. It decides on a tool's identity (its server and its own name
// there), never on the name the model sees, shows the whole call made safe
// for the terminal, and remembers an "always" for one definition of a tool
// only: a server that redefines the tool is asked about again.
package approve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/console"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
	"github.com/membrane-mcp/membrane/mcp"
)

// Index says who a local tool name is. mcp.Fleet implements it.
type Index interface {
	Tool(local string) (mcp.ToolInfo, bool)
	Tools() []mcp.ToolInfo
}

// Keys asks for one key press on a terminal. console.Keys implements it.
type Keys interface {
	// ReadKey returns the key pressed, or console.ErrInterrupt for Ctrl-C.
	ReadKey(ctx context.Context) (byte, error)
	// Size returns the terminal's width and height.
	Size() (int, int)
}

// Options configures New. A nil *Options asks about no tool.
type Options struct {
	// Names are the tools to ask about: a tool's own name (on any
	// server), SERVER:TOOL, the name the model sees, or "*" (or "all")
	// for every tool.
	Names []string
	// Index says who a tool is.
	Index Index
	// Interactive says there is a terminal to ask on, through Keys and
	// Out. Without one, a call that needs approval is denied, unless Yes.
	Interactive bool
	Yes         bool
	Keys        Keys
	// UI is where denials are noted, and which is held while asking.
	UI *display.UI
	// Out is where the prompt is shown (the terminal).
	Out io.Writer
}

// Approver decides on calls of the tools named in its Options.
type Approver struct {
	all         bool
	names       []string
	index       Index
	interactive bool
	yes         bool
	keys        Keys
	ui          *display.UI
	out         io.Writer

	mu     sync.Mutex
	always map[string]bool // server \x00 tool \x00 digest
}

// New returns an approver of the calls opts names.
func New(opts *Options) *Approver {
	var o Options
	if opts != nil {
		o = *opts
	}
	a := &Approver{index: o.Index, interactive: o.Interactive, yes: o.Yes, keys: o.Keys, ui: o.UI, out: o.Out, always: map[string]bool{}}
	for _, n := range o.Names {
		if n == "*" || n == "all" {
			a.all = true
			continue
		}
		a.names = append(a.names, n)
	}
	return a
}

// matches reports whether the name n covers the tool t: n is the
// tool's own name (on any server), SERVER:TOOL, or the name the model
// sees.
func matches(n string, t mcp.ToolInfo) bool {
	if n == t.Name || n == t.Local {
		return true
	}
	if i := strings.LastIndexByte(n, ':'); i > 0 && n[:i] == t.Server && n[i+1:] == t.Name {
		return true
	}
	return false
}

// Check refuses names that match no tool, so that a typo does
// not leave the tool it meant ungated.
func (a *Approver) Check() error {
	tools := a.index.Tools()
	var bad []string
	for _, n := range a.names {
		if !slices.ContainsFunc(tools, func(t mcp.ToolInfo) bool { return matches(n, t) }) {
			bad = append(bad, n)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	var have []string
	for _, t := range tools {
		have = append(have, t.Name)
	}
	slices.Sort(have)
	have = slices.Compact(have)
	return fmt.Errorf("--approve %s: no such tool, so nothing would be asked for; the tools are: %s (or use SERVER:TOOL, or '*')",
		strings.Join(bad, ","), strings.Join(have, ", "))
}

// needs reports whether a call of the local name must be approved, and who
// the tool is. A name no server owns always needs approval.
func (a *Approver) needs(local string) (mcp.ToolInfo, bool) {
	t, ok := a.index.Tool(local)
	if !ok {
		return mcp.ToolInfo{Local: local, Name: local}, true
	}
	if a.all {
		return t, true
	}
	for _, n := range a.names {
		if matches(n, t) {
			return t, true
		}
	}
	return t, false
}

func alwaysKey(t mcp.ToolInfo) string { return t.Server + "\x00" + t.Name + "\x00" + t.Digest }

// Approve reports whether the call may run; it is agent.Options.Approve.
// A Ctrl-C at the prompt is context.Canceled.
func (a *Approver) Approve(ctx context.Context, c agent.ToolCall) (bool, error) {
	t, need := a.needs(c.Name)
	if !need {
		return true, nil
	}
	a.mu.Lock()
	always := t.Digest != "" && a.always[alwaysKey(t)]
	a.mu.Unlock()
	if always {
		return true, nil
	}
	if !a.interactive {
		if a.yes {
			return true, nil
		}
		a.ui.Note("denied %s: it needs approval and there is no terminal to ask (pass --yes to allow)", termsafe.Line(c.Name))
		return false, nil
	}
	release := a.ui.Hold() // the terminal is ours until the answer
	defer release()
	w, h := a.keys.Size()
	lines := promptLines(t, c.Arguments, w)
	page := max(h-3, 3)
	for start := 0; ; start += page {
		end := min(start+page, len(lines))
		io.WriteString(a.out, strings.Join(lines[start:end], "\n")+"\n")
		last := end == len(lines)
		if last {
			fmt.Fprint(a.out, "allow? [y]es [n]o [a]lways ")
		} else {
			fmt.Fprintf(a.out, "── lines %d-%d of %d: any key for more, n to deny ──", start+1, end, len(lines))
		}
		for {
			k, err := a.keys.ReadKey(ctx)
			if err != nil {
				fmt.Fprintln(a.out)
				if errors.Is(err, console.ErrInterrupt) {
					return false, context.Canceled
				}
				return false, err
			}
			switch {
			case k == 'n' || k == 'N' || k == 'q' || k == 0x1b:
				fmt.Fprintln(a.out, "no")
				return false, nil
			case !last:
				fmt.Fprint(a.out, "\r\x1b[K")
			case k == 'y' || k == 'Y':
				fmt.Fprintln(a.out, "yes")
				return true, nil
			case k == 'a' || k == 'A':
				fmt.Fprintln(a.out, "always")
				if t.Digest != "" {
					a.mu.Lock()
					a.always[alwaysKey(t)] = true
					a.mu.Unlock()
				}
				return true, nil
			case k == '\r' || k == '\n':
				fmt.Fprintln(a.out, "no")
				return false, nil
			default:
				continue // not an answer: ask again
			}
			break
		}
	}
}

// promptLines shows the whole call: the tool, its server, and every
// argument pretty-printed, made safe for the terminal and wrapped at
// width.
func promptLines(t mcp.ToolInfo, args string, width int) []string {
	head := fmt.Sprintf("▶ the model wants to call %s", termsafe.Line(t.Name))
	if t.Server != "" {
		head += " from server " + termsafe.Line(t.Server)
	} else {
		head += " (no server has this tool)"
	}
	if t.Local != t.Name && t.Local != "" {
		head += fmt.Sprintf(" (shown to the model as %s)", termsafe.Line(t.Local))
	}
	var out []string
	out = append(out, wrap(head, width)...)
	body := prettyArgs(args)
	for l := range strings.SplitSeq(body, "\n") {
		for _, w := range wrap(termsafe.Line(l), width-2) {
			out = append(out, "│ "+w)
		}
	}
	return out
}

// prettyArgs indents JSON arguments for a person: keys in the order sent,
// duplicates kept (a server may take either), numbers as written, and
// strings with no HTML escaping (the model's "&&" is not shown as
// "\u0026\u0026"). Anything that is not JSON is shown as it is.
func prettyArgs(args string) string {
	dec := json.NewDecoder(strings.NewReader(args))
	dec.UseNumber()
	var b strings.Builder
	tok, err := dec.Token()
	if err == nil {
		err = writeJSON(&b, dec, tok, "")
	}
	if err != nil {
		return args
	}
	if _, err := dec.Token(); err != io.EOF {
		return args
	}
	return b.String()
}

func writeJSON(b *strings.Builder, dec *json.Decoder, tok json.Token, indent string) error {
	switch v := tok.(type) {
	case json.Delim:
		open, end := string(v), "}"
		if v == '[' {
			end = "]"
		}
		b.WriteString(open)
		n := 0
		for dec.More() {
			if n > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + indent + "  ")
			t, err := dec.Token()
			if err != nil {
				return err
			}
			if v == '{' {
				key, _ := t.(string)
				b.WriteString(quoteJSON(key) + ": ")
				if t, err = dec.Token(); err != nil {
					return err
				}
			}
			if err := writeJSON(b, dec, t, indent+"  "); err != nil {
				return err
			}
			n++
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		if n > 0 {
			b.WriteString("\n" + indent)
		}
		b.WriteString(end)
	case string:
		b.WriteString(quoteJSON(v))
	case json.Number:
		b.WriteString(v.String())
	case bool:
		fmt.Fprint(b, v)
	case nil:
		b.WriteString("null")
	}
	return nil
}

func quoteJSON(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// wrap cuts s into pieces of at most width runes.
func wrap(s string, width int) []string {
	width = max(width, 10)
	var out []string
	for utf8.RuneCountInString(s) > width {
		i, n := 0, 0
		for n < width {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			n++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return append(out, s)
}
