package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// job is one process to run in the sandbox.
type job struct {
	// argv is the command as the sandbox sees it, before the rlimits
	// wrapper.
	argv  []string
	stdin *string
	// files are written into the sandbox before it starts, read-only, keyed
	// by their path inside a bubblewrap sandbox (under /run/membrane). In
	// rlimit mode they go to a private directory instead, and argv entries
	// equal to a key are rewritten to the real path.
	files   map[string][]byte
	timeout time.Duration
	ws      *workspace
	sess    *calls.Session
	// block makes bwrap's init wait for a byte on a pipe before it starts
	// the command (bwrapPipes.block).
	block bool
}

// outcome is what became of a job.
type outcome struct {
	exitCode       int
	signal         syscall.Signal // non-zero when the process died of a signal
	stdout, stderr capture
	dur            time.Duration
	started        time.Duration // from the run request to the process running
	began          time.Time     // when the run was requested
	timedOut       bool          // our timeout fired and we killed it
	cancelled      bool          // the caller gave up (client cancel, disconnect, shutdown)
	oomKilled      bool          // the kernel killed a process for passing the call's memory cap
	// quota is set when the call was killed for passing the workspace
	// quota, and says how.
	quota string
	// quotaAfter is set when the workspace was found over its quota only
	// after the call ended (it wrote too fast for the watch), and says how.
	quotaAfter string
	setupErr   string
}

// process is a running job, registered so that Close and the end of its
// session can kill it.
type process struct {
	sess *calls.Session
	done chan struct{}

	mu     sync.Mutex
	cmd    *exec.Cmd
	killed bool
	// initFD is a pidfd of the sandbox's init (pid 1 of its pid
	// namespace), or -1. When that process has exited, so has every
	// process of the sandbox.
	initFD int
}

// kill sends SIGKILL to the process group of the outer process. In bwrap
// mode its death takes the whole pid namespace with it (die-with-parent,
// then the kernel kills every process of a namespace whose init is gone).
func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed = true
	p.killInit()
	if p.cmd != nil && p.cmd.Process != nil {
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// run runs j to completion, timeout or cancellation. An error means the
// process could not be started at all.
func (s *Sandbox) run(ctx context.Context, j *job) (*outcome, error) {
	begin := time.Now()
	p := &process{sess: j.sess, done: make(chan struct{}), initFD: -1}
	defer close(p.done)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	s.running[p] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, p)
		s.mu.Unlock()
		s.wg.Done()
	}()

	var (
		cmd     *exec.Cmd
		cleanup []func()
	)
	defer func() {
		for _, f := range cleanup {
			f()
		}
	}()
	limits, err := s.limitArgs()
	if err != nil {
		return nil, err
	}
	var (
		pipes bwrapPipes
		cg    *callCgroup
	)
	if s.cfg.Mode == ModeBwrap {
		if s.cg != nil {
			// The cgroup's pids.max leaves room for bwrap's init on top
			// of the call's own RLIMIT_NPROC.
			cg, err = s.cg.newCall(s.cfg.MemoryBytes, s.cfg.Procs+4)
			if err != nil {
				return nil, &startError{err}
			}
			cleanup = append(cleanup, func() { cg.remove() })
			j.block = true
		}
		var closers []func()
		cmd, closers, pipes, err = s.bwrapCommand(j, limits)
		cleanup = append(cleanup, closers...)
		cleanup = append(cleanup, pipes.close)
		if err != nil {
			return nil, err
		}
	} else {
		scratch, err := os.MkdirTemp(filepath.Join(s.root, "run"), "r-")
		if err != nil {
			return nil, fmt.Errorf("sandbox: make scratch dir: %w", err)
		}
		cleanup = append(cleanup, func() { removeTree(scratch) })
		if s.cred != nil {
			if err := os.Chown(scratch, s.uid, s.gid); err != nil {
				return nil, fmt.Errorf("sandbox: make scratch dir: %w", err)
			}
		}
		argv := append([]string(nil), j.argv...)
		for inside, data := range j.files {
			real := filepath.Join(scratch, filepath.Base(inside))
			if err := os.WriteFile(real, data, 0o444); err != nil {
				return nil, fmt.Errorf("sandbox: write %s: %w", inside, err)
			}
			for i, a := range argv {
				if a == inside {
					argv[i] = real
				}
			}
		}
		tmp := filepath.Join(scratch, "tmp")
		if err := os.Mkdir(tmp, 0o700); err != nil {
			return nil, fmt.Errorf("sandbox: make scratch dir: %w", err)
		}
		if s.cred != nil {
			_ = os.Chown(tmp, s.uid, s.gid)
		}
		all := append(append([]string{}, limits...), argv...)
		cmd = exec.Command(all[0], all[1:]...)
		cmd.Dir = j.ws.dir
		cmd.Env = sandboxEnv(j.ws.dir, tmp)
	}
	cred := s.cred
	if s.selfExe != "" {
		cred = nil // the limits helper drops to s.cred itself, once the limits are set
	}
	cmd.SysProcAttr = sysProcAttr(cred)
	if j.stdin != nil {
		cmd.Stdin = strings.NewReader(*j.stdin)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("sandbox: pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	// Our own timer, not the context, so that a timeout can be told from a
	// cancellation.
	cmd.WaitDelay = time.Second

	o := &outcome{}
	o.stdout.limit, o.stderr.limit = s.cfg.OutputBytes, s.cfg.OutputBytes

	p.mu.Lock()
	if p.killed {
		p.mu.Unlock()
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return nil, errClosed
	}
	p.cmd = cmd
	markInheritedCloexec()
	start := time.Now()
	err = cmd.Start()
	o.began, o.started = begin, time.Since(begin)
	p.mu.Unlock()
	outW.Close()
	errW.Close()
	for _, f := range cmd.ExtraFiles {
		f.Close() // bwrap has its copies
	}
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, &startError{fmt.Errorf("start %s: %w", cmd.Path, err)}
	}
	var qw *quotaWatch
	var startUsage usage
	if j.ws.owned {
		startUsage = j.ws.lastUsage()
		qw = s.watchQuota(j.ws, startUsage, p)
	}
	infoDone := make(chan struct{})
	var joinErr error
	if pipes.info != nil {
		pid := p.readInit(pipes.info)
		if cg != nil && pid > 0 {
			// The init waits on the block pipe: join it to the call's
			// cgroup before it starts the command, so that nothing of the
			// call runs outside it. If that fails, the call never starts.
			if joinErr = cg.join(pid); joinErr != nil {
				p.kill()
			} else {
				_, joinErr = pipes.block.Write([]byte{1})
			}
		}
		go func() { defer close(infoDone); p.drainInfo(pipes.info) }()
	} else {
		close(infoDone)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); o.stdout.readFrom(outR) }()
	go func() { defer readers.Done(); o.stderr.readFrom(errR) }()

	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	timer := time.NewTimer(j.timeout)
	defer timer.Stop()
	select {
	case err = <-waitErr:
	case <-timer.C:
		o.timedOut = true
		p.kill()
		err = <-waitErr
	case <-ctx.Done():
		o.cancelled = true
		p.kill()
		err = <-waitErr
	}
	o.dur = time.Since(start)
	// bwrap is gone, so the info pipe ends (bwrap never hands it to the
	// sandboxed command); then make sure the sandbox itself is gone.
	select {
	case <-infoDone:
	case <-time.After(time.Second):
		pipes.info.Close()
		<-infoDone
	}
	p.waitInit()
	if cg != nil {
		o.oomKilled = cg.oomKills() > 0
		if err := cg.remove(); err != nil {
			s.log.Warn("sandbox: remove cgroup", "err", err)
		}
	}
	// Anything left in the process group (rlimit mode) goes too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(time.Second):
		// A process outside our reach (rlimit mode: one that left the
		// process group) still holds the pipes. Stop reading.
		outR.Close()
		errR.Close()
		<-readersDone
	}
	outR.Close()
	errR.Close()

	if qw != nil {
		o.quota = qw.end()
		u := measureUsage(j.ws.dir, s.quotaLimit())
		j.ws.setUsage(u)
		if why := s.over(u); o.quota == "" && why != "" && (u.bytes > startUsage.bytes || u.files > startUsage.files) {
			o.quotaAfter = why
		}
	}
	p.mu.Lock()
	killed := p.killed
	p.mu.Unlock()
	if killed && !o.timedOut && o.quota == "" {
		o.cancelled = true
	}
	if joinErr != nil {
		return nil, &startError{fmt.Errorf("sandbox: put the call in its cgroup: %w", joinErr)}
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
	case errors.Is(err, exec.ErrWaitDelay):
	default:
		return nil, fmt.Errorf("sandbox: wait: %w", err)
	}
	if ps := cmd.ProcessState; ps != nil {
		o.exitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.signal = ws.Signal()
			o.exitCode = 128 + int(o.signal)
		}
	}
	if !o.timedOut && !o.cancelled && s.cfg.Mode == ModeBwrap && o.exitCode == 1 && len(o.stdout.buf) == 0 &&
		strings.HasPrefix(string(o.stderr.buf), "bwrap: ") {
		o.setupErr = strings.TrimSpace(string(o.stderr.buf))
	}
	return o, nil
}

// limitArgs is the prlimit command line that sets every rlimit just before
// the command starts: inside the sandbox's own user namespace, where
// RLIMIT_NPROC counts only that sandbox's processes. In rlimit mode without
// prlimit it is membrane's own limits helper instead.
func (s *Sandbox) limitArgs() ([]string, error) {
	if s.prlimitErr != nil {
		return nil, s.prlimitErr
	}
	nproc := s.cfg.Procs
	if s.cfg.Mode == ModeRlimit {
		// No user namespace: the kernel counts every process of the uid,
		// so the cap is what the uid runs now plus the call's share.
		nproc += countProcs(s.uid)
	}
	if s.selfExe != "" {
		return selfLimitArgs(s.selfExe, s.cfg.CPUSeconds, s.cfg.MemoryBytes, s.cfg.FileSizeBytes, s.cfg.OpenFiles, nproc, s.cred), nil
	}
	return []string{
		s.prlimit,
		"--cpu=" + strconv.Itoa(s.cfg.CPUSeconds),
		"--as=" + strconv.FormatInt(s.cfg.MemoryBytes, 10),
		"--fsize=" + strconv.FormatInt(s.cfg.FileSizeBytes, 10),
		"--nofile=" + strconv.Itoa(s.cfg.OpenFiles),
		"--nproc=" + strconv.Itoa(nproc),
		"--core=0",
		"--",
	}, nil
}

// sandboxEnv is the whole environment of a sandboxed process: nothing of
// membrane's own.
func sandboxEnv(home, tmp string) []string {
	return []string{
		"PATH=" + sandboxPATH,
		"HOME=" + home,
		"TMPDIR=" + tmp,
		"LANG=" + sandboxLANG,
		"USER=sandbox",
		"LOGNAME=sandbox",
		"SHELL=/bin/sh",
		"TERM=dumb",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
	}
}

// capture keeps the first limit bytes of a stream and counts the rest. Past
// a generous multiple of the limit it stops reading and closes the pipe, so
// that a flood ends (EPIPE or SIGPIPE) instead of burning CPU until the
// timeout.
type capture struct {
	limit int64
	buf   []byte
	total int64
	// cut is set when the pipe was closed before the writer finished.
	cut bool
}

func (c *capture) readFrom(r io.ReadCloser) {
	discardAfter := max(8*c.limit, 8<<20)
	b := make([]byte, 32<<10)
	for {
		n, err := r.Read(b)
		if n > 0 {
			if room := c.limit - int64(len(c.buf)); room > 0 {
				c.buf = append(c.buf, b[:min(int64(n), room)]...)
			}
			c.total += int64(n)
			if c.total > discardAfter {
				c.cut = true
				r.Close()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// shown is how many of the captured bytes the result carries: the longest
// prefix whose JSON encoding fits in limit bytes. A byte that JSON escapes
// (a control byte takes six) counts as its escape, so that what goes on the
// wire, not what came out of the process, is capped.
func (c *capture) shown() int { return encodedPrefix(c.buf, c.limit) }

func (c *capture) truncated() bool { return c.total > int64(c.shown()) }

// text returns the captured output as valid UTF-8, with a marker when it was
// truncated.
func (c *capture) text(name string) string {
	n := c.shown()
	s := calls.ValidUTF8(string(c.buf[:n]))
	if c.truncated() {
		more := "of " + strconv.FormatInt(c.total, 10)
		if c.cut {
			more = "of more than " + strconv.FormatInt(c.total, 10) + " (the pipe was closed to stop the flood)"
		}
		s += fmt.Sprintf("\n[membrane: %s truncated: showing the first %d bytes %s; write large output to a file in %s instead]", name, n, more, WorkspaceDir)
	}
	return s
}

// startError is a process that could not be started at all (a missing or
// unreachable binary): a tool error that says so, not a protocol error.
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }
