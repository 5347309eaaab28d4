// Package console reads what the orchestrator's user types: lines at a
// terminal (edited with x/term, with a history file and Tab completion of
// the REPL's commands), lines from a pipe, and single key presses for
// approval prompts. Ctrl-C at a terminal comes back as ErrInterrupt.
package console

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

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ErrInterrupt is what reading a line or a key returns when the user
// pressed Ctrl-C.
var ErrInterrupt = errors.New("interrupted")

// LineReader reads the user's input one line at a time.
type LineReader interface {
	// ReadLine shows prompt and returns the next line, io.EOF at the end,
	// or ErrInterrupt for Ctrl-C at a terminal.
	ReadLine(ctx context.Context, prompt string) (string, error)
}

// Console edits lines on a terminal with x/term: arrows, history (kept in
// a file), Tab to complete a /command. Between lines the terminal is in its
// normal mode, so that Ctrl-C during a turn is a signal.
type Console struct {
	fd      int
	t       *term.Terminal
	ctrlC   atomic.Bool
	reading atomic.Bool

	mu    sync.Mutex
	saved *term.State // the terminal's normal mode while a line is read
}

// Restore puts the terminal back in its normal mode if a line is being
// read, for a program that must exit while ReadLine blocks.
func (c *Console) Restore() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.saved != nil {
		term.Restore(c.fd, c.saved)
	}
}

// PromptWriter returns a writer that prints above the prompt while a line
// is being read, else nil.
func (c *Console) PromptWriter() io.Writer {
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

// New returns a console reading the terminal in and echoing on out, with
// history (nil: none kept) and Tab completing the commands given.
func New(in *os.File, out io.Writer, history term.History, commands []string) *Console {
	c := &Console{fd: int(in.Fd())}
	c.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{&ctrlCReader{r: in, flag: &c.ctrlC}, out}, "")
	if history != nil {
		c.t.History = history
	}
	c.t.AutoCompleteCallback = completer(commands)
	return c
}

// Reading reports whether a line is being read (the terminal is raw).
func (c *Console) Reading() bool { return c.reading.Load() }

// ReadLine implements LineReader.
func (c *Console) ReadLine(ctx context.Context, prompt string) (string, error) {
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
		return "", ErrInterrupt
	}
	if errors.Is(err, term.ErrPasteIndicator) {
		err = nil // a pasted line: take it as typed
	}
	return line, err
}

// completer completes a /command that one of commands begins with.
func completer(commands []string) func(line string, pos int, key rune) (string, int, bool) {
	return func(line string, pos int, key rune) (string, int, bool) {
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
}

// Pipe reads lines from a non-terminal stdin (a script, a pipe). A
// goroutine owns the reader, so that a wait for input can be cancelled.
type Pipe struct {
	lines chan string
	err   error // set before lines is closed
}

// NewPipe reads the lines of r.
func NewPipe(r io.Reader) *Pipe {
	p := &Pipe{lines: make(chan string)}
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

// ReadLine implements LineReader; ctx ending stops the wait.
func (p *Pipe) ReadLine(ctx context.Context, _ string) (string, error) {
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

// History is a term.History kept in a file, one line per entry.
type History struct {
	mu    sync.Mutex
	path  string
	lines []string // oldest first
}

const maxHistory = 1000

// LoadHistory reads the history kept in path (none yet is fine); Add
// appends to it.
func LoadHistory(path string) *History {
	h := &History{path: path}
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

// Add implements term.History.
func (h *History) Add(entry string) {
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

// Len implements term.History.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

// At returns the entry idx places back: 0 is the newest.
func (h *History) At(idx int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lines[len(h.lines)-1-idx]
}

// HistoryPath is where the REPL keeps its history by default.
func HistoryPath(getenv func(string) string) string {
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

// Keys reads single key presses from a terminal, for approval prompts.
type Keys struct {
	In  *os.File // the terminal's input
	Out *os.File // the terminal the prompt is on (for its size); may be nil
}

// Size returns the terminal's width and height (80×24 when it says none).
func (k Keys) Size() (int, int) {
	for _, f := range []*os.File{k.Out, k.In} {
		if f == nil {
			continue
		}
		if w, h, err := term.GetSize(int(f.Fd())); err == nil && w >= 20 && h >= 5 {
			return w, h
		}
	}
	return 80, 24
}

// ReadKey puts the terminal in raw mode just long enough to read one key,
// and gives up when ctx ends. Ctrl-C is ErrInterrupt, Ctrl-D is 'n'.
func (k Keys) ReadKey(ctx context.Context) (byte, error) {
	fd := int(k.In.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return 0, fmt.Errorf("terminal: %w", err)
	}
	defer term.Restore(fd, old)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return 0, fmt.Errorf("terminal: %w", err)
		}
		if n <= 0 {
			continue
		}
		var b [1]byte
		if _, err := k.In.Read(b[:]); err != nil {
			return 0, fmt.Errorf("terminal: %w", err)
		}
		if b[0] == 3 {
			return 0, ErrInterrupt
		}
		if b[0] == 4 {
			return 'n', nil // Ctrl-D: no
		}
		return b[0], nil
	}
}
