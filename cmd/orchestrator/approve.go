package main

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
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
	"github.com/membrane-mcp/membrane/mcp"
)

// toolIndex says who a local tool name is. The fleet implements it.
type toolIndex interface {
	Tool(local string) (mcp.ToolInfo, bool)
	Tools() []mcp.ToolInfo
}

// keyReader asks for one key press on a terminal.
type keyReader interface {
	// readKey returns the key pressed, or errInterrupt for Ctrl-C.
	readKey(ctx context.Context) (byte, error)
	// size returns the terminal's width and height.
	size() (int, int)
}

// approver decides on calls of the tools named by --approve. It decides on
// a tool's identity (its server and its own name there), never on the
// name the model sees, and remembers an "always" for one definition of a
// tool only.
type approver struct {
	all         bool
	names       []string
	index       toolIndex
	interactive bool
	yes         bool
	keys        keyReader
	ui          *ui
	out         io.Writer // where the prompt is shown (the terminal)

	mu     sync.Mutex
	always map[string]bool // server \x00 tool \x00 digest
}

func newApprover(names []string, index toolIndex, interactive, yes bool, keys keyReader, u *ui, out io.Writer) *approver {
	a := &approver{index: index, interactive: interactive, yes: yes, keys: keys, ui: u, out: out, always: map[string]bool{}}
	for _, n := range names {
		if n == "*" || n == "all" {
			a.all = true
			continue
		}
		a.names = append(a.names, n)
	}
	return a
}

// matches reports whether the --approve name n covers the tool t: n is the
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

// check refuses --approve names that match no tool, so that a typo does
// not leave the tool it meant ungated.
func (a *approver) check() error {
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
func (a *approver) needs(local string) (mcp.ToolInfo, bool) {
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

func (a *approver) approve(ctx context.Context, c agent.ToolCall) (bool, error) {
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
		a.ui.note("denied %s: it needs approval and there is no terminal to ask (pass --yes to allow)", termsafe.Line(c.Name))
		return false, nil
	}
	a.ui.pause()
	a.ui.mu.Lock() // the terminal is ours until the answer
	defer a.ui.mu.Unlock()
	w, h := a.keys.size()
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
			k, err := a.keys.readKey(ctx)
			if err != nil {
				fmt.Fprintln(a.out)
				if errors.Is(err, errInterrupt) {
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
