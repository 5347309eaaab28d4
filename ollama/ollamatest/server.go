package ollamatest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ollama/ollama/api"
)

// Options configure [StartServer]. A nil *Options means the defaults.
type Options struct {
	// Binary is the ollama executable. Empty means [EnsureBinary].
	Binary string
	// Dir holds the model store (OLLAMA_MODELS) and the server's HOME. Empty
	// means a new temporary directory, removed by [Server.Stop]. A Dir you
	// give is left in place.
	Dir string
	// Env adds KEY=VALUE entries to the server's environment, after the
	// defaults, so they win: for example "OLLAMA_NUM_PARALLEL=1" or
	// "OLLAMA_KEEP_ALIVE=0".
	Env []string
	// ReadyTimeout bounds the wait for the server to answer. Zero means 30s.
	ReadyTimeout time.Duration
	// Logger receives the server's output, one record per line at debug
	// level. Nil discards it; the last 64 KiB are kept for [Server.Logs].
	Logger *slog.Logger
}

// Server is a running test Ollama on a loopback port with its own model
// store. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string
	// Host is 127.0.0.1:PORT, the form OLLAMA_HOST takes.
	Host string
	// ModelsDir is the model store directory (OLLAMA_MODELS).
	ModelsDir string

	bin     string
	dir     string
	ownDir  bool
	env     []string
	timeout time.Duration
	log     *slog.Logger
	logs    *ring
	http    *http.Transport // this server's connections only, closed by Stop
	client  *api.Client

	mu   sync.Mutex
	proc *process // nil when stopped
}

// process is one run of `ollama serve`.
type process struct {
	cmd  *exec.Cmd
	pgid int
	done chan struct{} // closed when cmd.Wait returns
	err  error         // cmd.Wait's result, set before done closes
}

// StartServer starts `ollama serve` on a free loopback port and waits until
// GET / answers 200. The server and every runner it spawns share a process
// group, so [Server.Stop] leaves nothing behind. The environment is the
// caller's minus every OLLAMA_* variable (a user's OLLAMA_HOST must not
// leak in), plus OLLAMA_HOST, OLLAMA_MODELS, OLLAMA_NOPRUNE=1 and HOME set
// to a private directory, then opts.Env.
func StartServer(ctx context.Context, opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{
		bin:     opts.Binary,
		dir:     opts.Dir,
		timeout: opts.ReadyTimeout,
		log:     opts.Logger,
		logs:    &ring{max: 64 << 10},
		http:    &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
	}
	if s.timeout == 0 {
		s.timeout = 30 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.bin == "" {
		var err error
		if s.bin, err = EnsureBinary(ctx); err != nil {
			return nil, err
		}
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "ollamatest-")
		if err != nil {
			return nil, fmt.Errorf("ollamatest: %w", err)
		}
		s.dir, s.ownDir = d, true
	}
	s.ModelsDir = filepath.Join(s.dir, "models")
	home := filepath.Join(s.dir, "home")
	for _, d := range []string{s.ModelsDir, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			s.cleanDir()
			return nil, fmt.Errorf("ollamatest: %w", err)
		}
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OLLAMA_") && !strings.HasPrefix(kv, "HOME=") {
			s.env = append(s.env, kv)
		}
	}
	s.env = append(s.env, "HOME="+home, "OLLAMA_MODELS="+s.ModelsDir, "OLLAMA_NOPRUNE=1")
	s.env = append(s.env, opts.Env...)

	// The port comes from the kernel, but another process may take it between
	// our probe and Ollama's bind; try a few.
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		s.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "http://" + s.Host
		if err = s.start(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		s.cleanDir()
		return nil, err
	}
	u, _ := url.Parse(s.URL)
	s.client = api.NewClient(u, &http.Client{Transport: s.http})
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ollamatest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start launches the process on s.Host and waits until it is ready.
func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("ollamatest: server already running")
	}
	// A shell leads the process group. When the server exits on its own, or
	// when the shell gets SIGTERM (sent by the kernel if this process dies,
	// see sysProcAttr), it SIGKILLs the whole group, runners included; on
	// SIGTERM it also removes the temporary directory. So not even a test
	// binary killed by -timeout leaves an Ollama or its files behind.
	ownDir := ""
	if s.ownDir {
		ownDir = s.dir
	}
	const script = `trap 'kill -KILL 0' EXIT
trap 'trap - EXIT; [ -n "$1" ] && rm -rf -- "$1"; kill -KILL 0' TERM
"$0" serve & wait`
	cmd := exec.Command("/bin/sh", "-c", script, s.bin, ownDir)
	cmd.Env = append(append([]string(nil), s.env...), "OLLAMA_HOST="+s.Host)
	cmd.Dir = s.dir
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 2 * time.Second // do not hang on an output pipe a stray child holds
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("ollamatest: start %s serve: %w", s.bin, err)
	}
	p := &process{cmd: cmd, pgid: cmd.Process.Pid, done: make(chan struct{})}
	go s.copyLogs(pr)
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	s.proc = p
	s.log.Debug("ollama starting", "pid", p.pgid, "host", s.Host)

	if err := s.waitReady(ctx, p); err != nil {
		s.killLocked()
		return err
	}
	return nil
}

func (s *Server) copyLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.logs.add(line)
		s.log.Debug(line, "host", s.Host)
	}
	io.Copy(io.Discard, r) // a line over 1 MiB: keep draining so the server never blocks
}

func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	c := &http.Client{Transport: s.http, Timeout: time.Second}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		if resp, err := c.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("ollamatest: ollama serve exited before it was ready (%v); its output:\n%s", p.err, s.logs.tail(4096))
		case <-ctx.Done():
			return fmt.Errorf("ollamatest: ollama serve on %s not ready after %v: %w; its output:\n%s", s.Host, s.timeout, ctx.Err(), s.logs.tail(4096))
		case <-tick.C:
		}
	}
}

// Client returns an Ollama API client for this server.
func (s *Server) Client() *api.Client { return s.client }

// Logs returns the tail of the server's output (up to 64 KiB).
func (s *Server) Logs() string { return s.logs.tail(64 << 10) }

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// KillServer sends SIGKILL to the server and its runners at once, as a crash
// would, and waits until every process of the group is gone. The model store
// stays, so [Server.RestartServer] brings the same models back.
func (s *Server) KillServer() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

func (s *Server) killLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	<-p.done
	s.http.CloseIdleConnections()
	// Runners are the server's children in its group; once the server is
	// gone they are orphans. Wait until no live process is left in the group.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := groupAlive(p.pgid)
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ollamatest: %d processes of group %d survived SIGKILL", left, p.pgid)
		}
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		time.Sleep(10 * time.Millisecond)
	}
}

// RestartServer starts the server again on the same port with the same model
// store, after [Server.KillServer] or [Server.Stop]; if it is running, it is
// killed first.
func (s *Server) RestartServer(ctx context.Context) error {
	if err := s.KillServer(); err != nil {
		return err
	}
	if s.ownDir {
		if _, err := os.Stat(s.dir); err != nil {
			return fmt.Errorf("ollamatest: restart after Stop removed the model store: %w", err)
		}
	}
	return s.start(ctx)
}

// Stop kills the server and its runners, checks that none survived, and
// removes the temporary directory it made. It is safe to call twice.
func (s *Server) Stop() error {
	err := s.KillServer()
	s.cleanDir()
	return err
}

func (s *Server) cleanDir() {
	if s.ownDir {
		os.RemoveAll(s.dir)
	}
}

// Start starts a test Ollama for t (see [StartServer]) and stops it when the
// test ends, checking that no process is left behind. If the test fails, the
// tail of the server's output is logged. It fails or skips t when Ollama is
// unavailable, as [Binary] does.
func Start(t TB) *Server {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is [Start] with options. opts.Binary defaults to [Binary](t).
func StartWith(t TB, opts *Options) *Server {
	t.Helper()
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Binary == "" {
		o.Binary = Binary(t)
	}
	s, err := StartServer(context.Background(), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ollama serve on %s, last output:\n%s", s.Host, s.logs.tail(8192))
		}
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Kill sends SIGKILL to the server and its runners, for fault tests. See
// [Server.KillServer].
func (s *Server) Kill(t TB) {
	t.Helper()
	if err := s.KillServer(); err != nil {
		t.Fatal(err)
	}
}

// Restart starts the server again on the same port and model store. See
// [Server.RestartServer].
func (s *Server) Restart(t TB) {
	t.Helper()
	if err := s.RestartServer(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// ring keeps the last max bytes of output lines.
type ring struct {
	mu    sync.Mutex
	max   int
	size  int
	lines []string
}

func (r *ring) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
	r.size += len(line) + 1
	for r.size > r.max && len(r.lines) > 1 {
		r.size -= len(r.lines[0]) + 1
		r.lines = r.lines[1:]
	}
}

func (r *ring) tail(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	size := 0
	i := len(r.lines)
	for i > 0 && size+len(r.lines[i-1])+1 <= n {
		i--
		size += len(r.lines[i]) + 1
	}
	for _, l := range r.lines[i:] {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
