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
	// warm, when set, is the form in which a warm sandbox may run the job
	// (see pool.go); a call run from the pool runs it instead.
	warm *warmForm
	// binds are host files bound read-only at their paths inside, in place
	// of files (a warm sandbox's, written when a call takes it).
	binds map[string]string
	// etc is the /etc copy bwrapArgs bound.
	etc string
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
	procsHits      int           // forks the kernel refused at the call's cgroup pids.max
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

// pidfd returns the pidfd of the sandbox's init, or -1.
func (p *process) pidfd() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.initFD
}

// run runs j to completion, timeout or cancellation. An error means the
// process could not be started at all. In bwrap mode a warm sandbox from
// the pool (see pool.go) may take the place of a fresh one.
func (s *Sandbox) run(ctx context.Context, j *job) (*outcome, error) {
	begin := time.Now()
	if w := s.pool.take(ctx, s, j); w != nil {
		defer s.pool.refill(s, j)
		return s.finish(ctx, w, j, begin)
	}
	pr, err := s.prepare(ctx, j, nil)
	if err != nil {
		return nil, err
	}
	s.pool.refill(s, j)
	return s.finish(ctx, pr, j, begin)
}

// prepared is a started process whose command has not begun: in bwrap
// mode, a sandbox whose init waits on its block pipe with its namespaces,
// mounts, rlimits and cgroup in place. finish starts the command.
type prepared struct {
	p       *process
	cmd     *exec.Cmd
	cg      *callCgroup
	pipes   bwrapPipes
	outR    *os.File
	errR    *os.File
	cleanup []func()
	// joinErr says why the sandbox could not be readied (its init is
	// killed): the call fails with it.
	joinErr  error
	infoDone chan struct{}
	initPID  int // the sandbox's init, 0 when bwrap made none
	// For a warm sandbox: stdin is the writing end of its stdin pipe,
	// files the host files bound read-only at the job's file paths, to
	// be written when a call takes it; etc the /etc copy it has bound;
	// key what it was made for.
	stdin *os.File
	files map[string]*os.File
	etc   string
	key   warmKey
	// For a pre-started interpreter (see prestart): the host's end of the
	// script FIFO, runDir's host directory, and the call's script, sent
	// down the FIFO when the call starts. Its init was released from the
	// block pipe as soon as its limits and cgroup were in place.
	fifo     *os.File
	runHost  string
	script   []byte
	released bool
}

// release undoes prepare: the process leaves the registry, and pipes,
// files and the cgroup go. finish calls it when the call is over; the pool
// when it throws a warm sandbox away (after killing it).
func (pr *prepared) release(s *Sandbox) {
	for _, f := range pr.cleanup {
		f()
	}
	pr.cleanup = nil
	close(pr.p.done)
	s.mu.Lock()
	delete(s.running, pr.p)
	s.mu.Unlock()
	s.wg.Done()
}

// prepare starts j's process up to the point where its command would
// begin. With warm set, j's files are bound from host files written only
// when a call takes the sandbox, and stdin is a pipe: the pool's form.
func (s *Sandbox) prepare(ctx context.Context, j *job, warm *warmKey) (_ *prepared, err error) {
	p := &process{sess: j.sess, done: make(chan struct{}), initFD: -1}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	s.running[p] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	pr := &prepared{p: p, infoDone: make(chan struct{})}
	defer func() {
		if err != nil {
			p.kill()
			if pr.cmd != nil && pr.cmd.Process != nil {
				_ = pr.cmd.Wait()
			}
			pr.release(s)
		}
	}()

	var cmd *exec.Cmd
	if s.cfg.Mode == ModeBwrap {
		if s.cg != nil {
			// The cgroup's pids.max is the call's process limit where
			// it has one, so that its refusals are counted (pids.events);
			// RLIMIT_NPROC sits a little above it (nprocLimit).
			cg, err := s.cg.newCall(s.cfg.MemoryBytes, s.cfg.Procs)
			if err != nil {
				return nil, &startError{err}
			}
			pr.cg = cg
			pr.cleanup = append(pr.cleanup, func() {
				if pr.cg != nil { // finish removes it itself
					pr.cg.remove()
				}
			})
		}
		// The init waits for the rlimits (and the cgroup) before it
		// starts the command.
		j.block = true
		switch {
		case warm != nil:
			pr.key = *warm
			if err := s.warmFiles(pr, j); err != nil {
				return nil, err
			}
		case j.warm != nil && j.warm.script != "" && len(j.files) == 1:
			// The script's directory as a pre-started interpreter's
			// would be (see prestart).
			data := j.files[j.warm.script]
			dir, name, err := s.scriptDir(pr, j)
			if err == nil {
				err = s.writeScript(dir, name, data)
			}
			if err != nil {
				return nil, err
			}
		}
		c, closers, pipes, err := s.bwrapCommand(ctx, j)
		pr.cleanup = append(pr.cleanup, closers...)
		pr.cleanup = append(pr.cleanup, pipes.close)
		if err != nil {
			return nil, err
		}
		cmd, pr.pipes, pr.etc = c, pipes, j.etc
	} else {
		limits, err := s.limitArgs()
		if err != nil {
			return nil, err
		}
		scratch, err := os.MkdirTemp(filepath.Join(s.root, "run"), "r-")
		if err != nil {
			return nil, fmt.Errorf("sandbox: make scratch dir: %w", err)
		}
		pr.cleanup = append(pr.cleanup, func() { removeTree(scratch) })
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
	if warm != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("sandbox: pipe: %w", err)
		}
		cmd.Stdin, pr.stdin = r, w
		pr.cleanup = append(pr.cleanup, func() { r.Close(); w.Close() })
	} else {
		// A pipe, empty when the call gives no stdin: what a warm
		// sandbox's command has too.
		in := ""
		if j.stdin != nil {
			in = *j.stdin
		}
		cmd.Stdin = strings.NewReader(in)
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
	pr.outR, pr.errR = outR, errR
	pr.cleanup = append(pr.cleanup, func() { outR.Close(); errR.Close() })
	cmd.Stdout, cmd.Stderr = outW, errW
	// Our own timer, not the context, so that a timeout can be told from a
	// cancellation.
	cmd.WaitDelay = time.Second

	p.mu.Lock()
	if p.killed {
		p.mu.Unlock()
		outW.Close()
		errW.Close()
		return nil, errClosed
	}
	p.cmd = cmd
	markInheritedCloexec()
	err = cmd.Start()
	p.mu.Unlock()
	outW.Close()
	errW.Close()
	for _, f := range cmd.ExtraFiles {
		f.Close() // bwrap has its copies
	}
	if f, ok := cmd.Stdin.(*os.File); ok {
		f.Close() // the child has its copy
	}
	if err != nil {
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		return nil, &startError{fmt.Errorf("start %s: %w", cmd.Path, err)}
	}
	pr.cmd = cmd
	if pr.pipes.info == nil {
		close(pr.infoDone)
		return pr, nil
	}
	pid := p.readInit(pr.pipes.info)
	pr.initPID = pid
	if pid > 0 && pr.pipes.block != nil {
		// The init waits on the block pipe: set its rlimits and join it
		// to the call's cgroup before it starts the command, so that
		// nothing of the call runs unlimited or outside it. If either
		// fails, the call never starts.
		if pr.cg != nil {
			if err := pr.cg.join(pid); err != nil {
				pr.joinErr = fmt.Errorf("put the call in its cgroup: %w", err)
			}
		}
		if pr.joinErr == nil {
			asUID := -1
			if s.cred != nil {
				asUID = s.uid
			}
			if err := limitInit(pid, p.pidfd(), asUID, s.initLimits()); err != nil {
				pr.joinErr = fmt.Errorf("set the call's limits: %w", err)
			}
		}
		if pr.joinErr == nil && pr.fifo != nil {
			// A pre-started interpreter: it starts now, under the
			// call's limits, and waits on its script.
			if _, err := pr.pipes.block.Write([]byte{1}); err != nil {
				pr.joinErr = fmt.Errorf("start the interpreter: %w", err)
			}
			pr.released = true
		}
		if pr.joinErr != nil {
			p.kill()
		}
	}
	info := pr.pipes.info
	go func() { defer close(pr.infoDone); p.drainInfo(info) }()
	return pr, nil
}

// finish starts pr's command (releasing a bwrap init from its block pipe)
// and runs it to completion, timeout or cancellation.
func (s *Sandbox) finish(ctx context.Context, pr *prepared, j *job, begin time.Time) (*outcome, error) {
	defer pr.release(s)
	p, cmd, cg, pipes := pr.p, pr.cmd, pr.cg, pr.pipes
	o := &outcome{}
	o.stdout.limit, o.stderr.limit = s.cfg.OutputBytes, s.cfg.OutputBytes
	var qw *quotaWatch
	var startUsage usage
	if j.ws.owned {
		startUsage = s.startUsage(j.ws)
		qw = s.watchQuota(j.ws, startUsage, p)
	}
	joinErr := pr.joinErr
	if pr.stdin != nil {
		in := ""
		if j.stdin != nil {
			in = *j.stdin
		}
		w := pr.stdin
		pr.stdin = nil
		go func() {
			_, _ = io.WriteString(w, in)
			w.Close()
		}()
	}
	start := time.Now()
	o.began, o.started = begin, start.Sub(begin)
	switch {
	case joinErr != nil || pipes.block == nil || pr.initPID <= 0:
		// (With no init, bwrap failed before making the sandbox: its
		// message is the result.)
	case pr.fifo != nil:
		// A pre-started interpreter reads its script to the end of the
		// FIFO. (A script larger than the pipe holds is written as the
		// interpreter reads; release closes the FIFO should it die.)
		go sendScript(pr.fifo, pr.script, p.done)
	case !pr.released:
		_, joinErr = pipes.block.Write([]byte{1})
	}
	outR, errR := pr.outR, pr.errR
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); o.stdout.readFrom(outR) }()
	go func() { defer readers.Done(); o.stderr.readFrom(errR) }()

	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	timer := time.NewTimer(j.timeout)
	defer timer.Stop()
	var err error
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
	case <-pr.infoDone:
	case <-time.After(time.Second):
		pipes.info.Close()
		<-pr.infoDone
	}
	p.waitInit()
	if cg != nil {
		o.oomKilled = cg.oomKills() > 0
		o.procsHits = cg.pidsHits()
		// Removed after the result, not before it: the sandbox is gone,
		// and rmdir (retried while the kernel lets its last tasks go)
		// need not delay the call. Close waits for it (s.wg).
		pr.cg = nil
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := cg.remove(); err != nil {
				s.log.Warn("sandbox: remove cgroup", "err", err)
			}
		}()
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
		u := measureUsage(j.ws.dir, s.watchLimit(startUsage))
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
		return nil, &startError{fmt.Errorf("sandbox: %w", joinErr)}
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

// limitArgs is, in rlimit mode, the prlimit command line that sets every
// rlimit just before the command starts, or membrane's own limits helper
// where prlimit is missing. (In bwrap mode limitInit sets them on the
// sandbox's init, inside its own user namespace, where RLIMIT_NPROC counts
// only that sandbox's processes.)
func (s *Sandbox) limitArgs() ([]string, error) {
	if s.cfg.Mode == ModeBwrap {
		return nil, nil
	}
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
	return append([]string{
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
		// matplotlib keeps its font cache in the call's /tmp, not in
		// the workspace.
		"MPLCONFIGDIR=" + tmp + "/matplotlib",
	}, matplotlibEnv()...)
}

// matplotlibEnv points matplotlib at its own default settings file when
// the host has one under /usr: Debian's matplotlib looks for it in /etc,
// whose copy in the sandbox holds only what name resolution and TLS need.
func matplotlibEnv() []string {
	const rc = "/usr/share/matplotlib/mpl-data/matplotlibrc"
	if fi, err := os.Stat(rc); err == nil && fi.Mode().IsRegular() {
		return []string{"MATPLOTLIBRC=" + rc}
	}
	return nil
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
