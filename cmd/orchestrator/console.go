package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/term"

	"github.com/membrane-mcp/membrane/calls/agent"
)

// errInterrupt is what reading a line returns when the user pressed Ctrl-C.
var errInterrupt = errors.New("interrupted")

// lineReader reads the user's input one line at a time.
type lineReader interface {
	// readLine shows prompt and returns the next line, io.EOF at the end,
	// or errInterrupt for Ctrl-C at a terminal.
	readLine(ctx context.Context, prompt string) (string, error)
}

// console edits lines on a terminal with x/term: arrows, history (kept in
// a file), Tab to complete a /command. Between lines the terminal is in its
// normal mode, so that Ctrl-C during a turn is a signal.
type console struct {
	fd      int
	t       *term.Terminal
	ctrlC   atomic.Bool
	reading atomic.Bool

	mu    sync.Mutex
	saved *term.State // the terminal's normal mode while a line is read
}

// restore puts the terminal back in its normal mode if a line is being
// read, for a program that must exit while ReadLine blocks.
func (c *console) restore() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.saved != nil {
		term.Restore(c.fd, c.saved)
	}
}

// promptWriter returns a writer that prints above the prompt while a line
// is being read, else nil.
func (c *console) promptWriter() io.Writer {
	if c.reading.Load() {
		return c.t
	}
	return nil
}

// ctrlCReader turns Ctrl-C into "end of line, erase the line, Enter" and
// raises a flag: x/term would return io.EOF with the line still in its
// buffer and the rest of the input dropped.
type ctrlCReader struct {
	r       io.Reader
	flag    *atomic.Bool
	pending []byte
}

func (c *ctrlCReader) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		buf := make([]byte, len(p))
		n, err := c.r.Read(buf)
		if n == 0 {
			return 0, err
		}
		for _, b := range buf[:n] {
			if b == 3 {
				c.flag.Store(true)
				c.pending = append(c.pending, 5, 21, '\r') // ^E ^U Enter
				continue
			}
			c.pending = append(c.pending, b)
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func newConsole(in *os.File, out io.Writer, history term.History) *console {
	c := &console{fd: int(in.Fd())}
	c.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{&ctrlCReader{r: in, flag: &c.ctrlC}, out}, "")
	if history != nil {
		c.t.History = history
	}
	c.t.AutoCompleteCallback = completeCommand
	return c
}

func (c *console) readLine(ctx context.Context, prompt string) (string, error) {
	// A terminal that reports no size (a fresh pseudo-terminal) would make
	// every character wrap.
	if w, h, err := term.GetSize(c.fd); err == nil && w >= 20 {
		c.t.SetSize(w, h)
	} else {
		c.t.SetSize(80, 24)
	}
	old, err := term.MakeRaw(c.fd)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	c.mu.Lock()
	c.saved = old
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.saved = nil
		term.Restore(c.fd, old)
		c.mu.Unlock()
	}()
	c.t.SetPrompt(prompt)
	c.ctrlC.Store(false)
	c.reading.Store(true)
	line, err := c.t.ReadLine()
	c.reading.Store(false)
	if c.ctrlC.Load() {
		return "", errInterrupt
	}
	if errors.Is(err, term.ErrPasteIndicator) {
		err = nil // a pasted line: take it as typed
	}
	return line, err
}

var commands = []string{"/tools", "/model", "/clear", "/help", "/exit"}

func completeCommand(line string, pos int, key rune) (string, int, bool) {
	if key != '\t' || !strings.HasPrefix(line, "/") || strings.Contains(line, " ") {
		return "", 0, false
	}
	var match []string
	for _, c := range commands {
		if strings.HasPrefix(c, line) {
			match = append(match, c)
		}
	}
	if len(match) != 1 {
		return "", 0, false
	}
	return match[0] + " ", len(match[0]) + 1, true
}

// pipeReader reads lines from a non-terminal stdin (a script, a pipe). A
// goroutine owns the reader, so that a wait for input can be cancelled.
type pipeReader struct {
	lines chan string
	err   error // set before lines is closed
}

func newPipeReader(r io.Reader) *pipeReader {
	p := &pipeReader{lines: make(chan string)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		p.err = sc.Err()
		close(p.lines)
	}()
	return p
}

func (p *pipeReader) readLine(ctx context.Context, _ string) (string, error) {
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case l, ok := <-p.lines:
		if !ok {
			if p.err != nil {
				return "", p.err
			}
			return "", io.EOF
		}
		return l, nil
	}
}

// fileHistory is a term.History kept in a file, one line per entry.
type fileHistory struct {
	mu    sync.Mutex
	path  string
	lines []string // oldest first
}

const maxHistory = 1000

func loadHistory(path string) *fileHistory {
	h := &fileHistory{path: path}
	if data, err := os.ReadFile(path); err == nil {
		for l := range strings.SplitSeq(strings.TrimRight(string(data), "\n"), "\n") {
			if l != "" {
				h.lines = append(h.lines, l)
			}
		}
		if len(h.lines) > maxHistory {
			h.lines = h.lines[len(h.lines)-maxHistory:]
		}
	}
	return h
}

func (h *fileHistory) Add(entry string) {
	entry = strings.TrimSpace(entry)
	if entry == "" || strings.ContainsAny(entry, "\n\r") {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.lines); n > 0 && h.lines[n-1] == entry {
		return
	}
	h.lines = append(h.lines, entry)
	if h.path == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return
	}
	f, err := os.OpenFile(h.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, entry)
}

func (h *fileHistory) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

// At returns the entry idx places back: 0 is the newest.
func (h *fileHistory) At(idx int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lines[len(h.lines)-1-idx]
}

// historyPath is where the REPL keeps its history by default.
func historyPath(getenv func(string) string) string {
	dir := getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "membrane", "orchestrator_history")
}

// approver decides on calls of the tools named by --approve.
type approver struct {
	all         bool
	tools       map[string]bool
	interactive bool
	yes         bool
	in          lineReader
	ui          *ui

	mu     sync.Mutex
	always map[string]bool
}

func newApprover(names []string, interactive, yes bool, in lineReader, u *ui) *approver {
	a := &approver{tools: map[string]bool{}, interactive: interactive, yes: yes, in: in, ui: u, always: map[string]bool{}}
	for _, n := range names {
		if n == "*" || n == "all" {
			a.all = true
		}
		a.tools[n] = true
	}
	return a
}

// needs reports whether name is covered: as given, or without the
// SERVER__ prefix of a multi-server set-up.
func (a *approver) needs(name string) bool {
	if a.all || a.tools[name] {
		return true
	}
	if _, tool, ok := strings.Cut(name, "__"); ok && a.tools[tool] {
		return true
	}
	return false
}

func (a *approver) approve(ctx context.Context, c agent.ToolCall) (bool, error) {
	if !a.needs(c.Name) {
		return true, nil
	}
	a.mu.Lock()
	always := a.always[c.Name]
	a.mu.Unlock()
	if always {
		return true, nil
	}
	if !a.interactive {
		if a.yes {
			return true, nil
		}
		a.ui.note("denied %s: it needs approval and there is no terminal to ask (pass --yes to allow)", c.Name)
		return false, nil
	}
	a.ui.pause()
	args := shortArgs(c.Arguments)
	for {
		ans, err := a.in.readLine(ctx, fmt.Sprintf("allow %s %s? [y]es [n]o [a]lways: ", c.Name, args))
		if err != nil {
			if errors.Is(err, errInterrupt) {
				return false, context.Canceled
			}
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(ans)) {
		case "y", "yes":
			return true, nil
		case "a", "always":
			a.mu.Lock()
			a.always[c.Name] = true
			a.mu.Unlock()
			return true, nil
		case "n", "no", "":
			return false, nil
		}
	}
}
