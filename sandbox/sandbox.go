package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/membrane-mcp/membrane/calls"
)

// Inside a bubblewrap sandbox the process runs as this uid and gid, with
// the home and working directory WorkspaceDir.
const (
	SandboxUID   = 1000
	SandboxGID   = 1000
	WorkspaceDir = "/workspace"
)

// RootRunAsUID is the host uid (and gid) sandboxed processes run as when
// membrane itself runs as root and the workspace does not belong to another
// unprivileged user. The kernel does not apply RLIMIT_NPROC to host uid 0,
// even inside a user namespace, so a sandbox running as root could
// fork-bomb the host; 65534 ("nobody") exists on every distribution and is
// mapped in user-namespaced containers.
const RootRunAsUID = 65534

// Sandbox runs the sh and python_run calls. It is safe for concurrent use.
type Sandbox struct {
	cfg Config
	log *slog.Logger

	bwrap      string // path of bwrap; "" when missing
	bwrapErr   error  // why bwrap mode cannot run (missing, too old)
	bwrapFeat  bwrapFeatures
	prlimit    string
	prlimitErr error
	// selfExe is membrane's own executable, which sets the rlimits itself
	// (see limitsHelperArg) in ModeRlimit where prlimit is missing; "" when
	// prlimit does it.
	selfExe    string
	python     string // the real interpreter; "" when none was found
	pythonErr  error
	extraBinds []string // host dirs bound read-only at the same path (a Python prefix outside /usr)
	hide       []hidden

	root    string // private dir: the sandbox's /etc, per-session workspaces, rlimit-mode scratch
	etc     *etcSnapshot
	cred    *syscall.Credential
	uid     int // host uid the sandbox runs as
	gid     int
	seccomp []byte
	// cg makes each call's cgroup; nil when there is none, and cgErr
	// says why. memCap says what caps a call's memory.
	cg     *cgroups
	cgErr  error
	memCap MemoryCap
	// procMasks are the /proc entries a sandbox does not see.
	procMasks []hidden
	// pool holds warm sandboxes (Config.Warm); nil when there is none.
	pool *warmPool

	mu         sync.Mutex
	closed     bool
	workspaces map[*calls.Session]*workspace
	running    map[*process]struct{}
	wg         sync.WaitGroup // running processes
	bg         sync.WaitGroup // the start-up probe
	stopProbe  func()         // cancels the start-up probe; Close calls it first
}

// New checks cfg, finds bwrap (prlimit in rlimit mode) and a Python interpreter, and
// returns a Sandbox. It does not fail because bubblewrap is missing or
// cannot create namespaces: the calls then return a tool error that says
// how to fix it, and Diagnose explains the same. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Sandbox, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sandbox{
		cfg:        cfg,
		log:        log,
		workspaces: map[*calls.Session]*workspace{},
		running:    map[*process]struct{}{},
		uid:        os.Geteuid(),
		gid:        os.Getegid(),
	}
	if cfg.Workspace != "" {
		ws, err := filepath.Abs(cfg.Workspace)
		if err == nil {
			ws, err = filepath.EvalSymlinks(ws)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: workspace %s: %v", ErrConfig, cfg.Workspace, err)
		}
		fi, err := os.Stat(ws)
		if err != nil {
			return nil, fmt.Errorf("%w: workspace: %v", ErrConfig, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%w: workspace %s is not a directory", ErrConfig, ws)
		}
		s.cfg.Workspace = ws
	}
	if os.Geteuid() == 0 {
		// Run as an unprivileged host uid, so that RLIMIT_NPROC holds and a
		// sandbox escape lands as nobody rather than root.
		s.uid, s.gid = RootRunAsUID, RootRunAsUID
		if s.cfg.Workspace != "" {
			if st, ok := statOwner(s.cfg.Workspace); ok && st.Uid != 0 {
				s.uid, s.gid = int(st.Uid), int(st.Gid)
			}
			if err := reachable(s.cfg.Workspace, s.uid, s.gid, true); err != nil {
				return nil, fmt.Errorf("%w: workspace %s: %v. membrane runs as root, so sandboxes run as the unprivileged uid %d: "+
					"give that uid the directory (chown -R %d:%d %s), pick a directory an unprivileged user owns, or run membrane as a non-root user",
					ErrConfig, s.cfg.Workspace, err, s.uid, s.uid, s.gid, s.cfg.Workspace)
			}
		}
		s.cred = &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid), Groups: []uint32{}}
	}

	s.bwrap, s.bwrapFeat, s.bwrapErr = findBwrap()
	if cfg.Mode == ModeRlimit {
		// In bwrap mode membrane sets the rlimits on the sandbox's init
		// itself (limitInit); without namespaces prlimit sets them.
		s.prlimit, s.prlimitErr = findPrlimit()
	}
	if cfg.Mode == ModeRlimit && s.prlimitErr != nil {
		// No prlimit (macOS, or a Linux without util-linux): with no
		// namespace to enter first, membrane can set the limits itself.
		if exe, err := os.Executable(); err == nil {
			s.prlimit, s.selfExe, s.prlimitErr = "", exe, nil
		} else {
			s.prlimitErr = fmt.Errorf("%v, and membrane cannot find its own executable to set the limits itself: %v", s.prlimitErr, err)
		}
	}
	// As root, sandboxes run as another uid, which must reach the
	// interpreter.
	usable := func(p string) error {
		if s.cred == nil {
			return nil
		}
		if err := reachable(filepath.Dir(p), s.uid, s.gid, false); err != nil {
			return fmt.Errorf("%s is out of reach of uid %d, which sandboxes run as because membrane runs as root: %v; "+
				"use an interpreter outside root's home (such as /usr/bin/python3)", p, s.uid, err)
		}
		return nil
	}
	if cfg.Python != "" {
		s.python, s.pythonErr = resolvePython(cfg.Python)
		if s.pythonErr == nil {
			s.pythonErr = usable(s.python)
		}
		if s.pythonErr != nil {
			return nil, fmt.Errorf("%w: python %s: %v", ErrConfig, cfg.Python, s.pythonErr)
		}
	} else {
		s.python, s.pythonErr = findPython(usable)
	}
	if s.python != "" && !underSystemDirs(s.python) {
		// An interpreter outside /usr (pyenv, a venv's base): bind its
		// installation prefix read-only at the same path.
		s.extraBinds = append(s.extraBinds, filepath.Dir(filepath.Dir(s.python)))
	}
	for _, h := range cfg.Hide {
		p, err := filepath.Abs(h)
		if err == nil {
			p, err = filepath.EvalSymlinks(p)
		}
		if err != nil {
			continue // absent: nothing to hide
		}
		visible := underSystemDirs(p)
		for _, d := range s.extraBinds {
			visible = visible || p == d || strings.HasPrefix(p, d+"/")
		}
		if !visible {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		s.hide = append(s.hide, hidden{path: p, dir: fi.IsDir()})
	}
	s.memCap = MemoryRlimitLeaky
	switch {
	case cfg.Mode != ModeBwrap:
		s.cgErr = errors.New("rlimit mode runs processes without a cgroup of their own")
	case cfg.NoCgroup:
		s.cgErr = errors.New("cgroups are turned off (NoCgroup)")
	default:
		s.cg, s.cgErr = setupCgroups()
	}
	if s.cg != nil {
		s.memCap = s.cg.kind
	} else if cfg.Mode == ModeBwrap && !cfg.AllowMemfd {
		s.memCap = MemoryRlimit
	}
	s.seccomp = seccompProgram(seccompOptions{denyUnaccountedMemory: s.memCap == MemoryRlimit})
	if s.seccomp == nil && s.memCap == MemoryRlimit {
		s.memCap = MemoryRlimitLeaky
	}
	s.procMasks = procMasks()

	if err := s.makeRoot(); err != nil {
		s.cg.close()
		return nil, err
	}
	if cfg.Mode == ModeBwrap && s.bwrapErr == nil && cfg.Warm > 0 {
		s.pool = newWarmPool(cfg.Warm)
	}
	if cfg.Mode == ModeBwrap && s.bwrapErr == nil {
		// In the background: the calls are listed at once, and the first
		// one runs as soon as the /etc copy is made, probe or not.
		// A probe that Close cuts short says nothing about bubblewrap, so
		// its failure is not reported.
		ctx, cancel := context.WithCancel(context.Background())
		s.stopProbe = cancel
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			defer cancel()
			if err := s.probe(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, errClosed) {
				log.Warn("sandbox: bubblewrap cannot create a sandbox here; sh and python_run will fail until this is fixed", "err", err)
			}
		}()
	}
	if s.pythonErr != nil {
		log.Warn("sandbox: no Python interpreter; python_run will fail", "err", s.pythonErr)
	}
	log.Debug("sandbox ready", "mode", cfg.Mode, "bwrap", s.bwrap, "python", s.python, "uid", s.uid, "network", cfg.Network)
	return s, nil
}

// makeRoot creates the private directory, traversable (not listable) by the
// uid sandboxes run as: the sandbox's /etc, per-session workspaces and
// scratch space.
func (s *Sandbox) makeRoot() error {
	sweepStale()
	root, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", rootPrefix, os.Getpid()))
	if err != nil {
		return fmt.Errorf("sandbox: make private dir: %w", err)
	}
	s.root = root
	if err := os.Chmod(root, 0o711); err != nil {
		os.RemoveAll(root)
		return fmt.Errorf("sandbox: make private dir: %w", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:%d:%d:sandbox:%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		SandboxUID, SandboxGID, WorkspaceDir)
	group := fmt.Sprintf("root:x:0:\nsandbox:x:%d:\nnogroup:x:65534:\n", SandboxGID)
	err = errors.Join(
		os.Mkdir(filepath.Join(root, "ws"), 0o711),
		os.Mkdir(filepath.Join(root, "run"), 0o711),
		os.Mkdir(filepath.Join(root, "empty"), 0o555),
	)
	if err != nil {
		os.RemoveAll(root)
		return fmt.Errorf("sandbox: make private dir: %w", err)
	}
	s.etc = &etcSnapshot{src: "/etc", root: etcRoot(root), passwd: []byte(passwd), group: []byte(group)}
	s.etc.start()
	return nil
}

// Calls returns the sh and python_run calls and the file tools
// (write_file, read_file, list_files), in the group "sandbox".
func (s *Sandbox) Calls() []calls.Call {
	return append([]calls.Call{s.shCall(), s.pythonCall()}, s.fileCalls()...)
}

// Prewarm prepares, in the background, a spare workspace with a warm
// sandbox for each of sh and python_run in it (as many as Config.Warm has
// room for), so that the first session's first call is served warm, as
// every later session's is once a call has shown the pool its form. The
// sandboxes are made exactly as after a call, under the same limits and
// isolation, and count against Config.Warm like any others; a call of the
// session that adopts the spare which comes before they are ready waits
// for them rather than making another. Without a warm pool (ModeRlimit,
// Warm zero, bubblewrap missing) and for a workspace Config.Workspace
// names, it does nothing. A server calls it once, before it takes its
// first call and after its own start-up work.
func (s *Sandbox) Prewarm() {
	if s.pool == nil {
		return
	}
	forms := []*warmForm{shJob("").warm}
	if s.python != "" {
		forms = append(forms, s.pythonJob("").warm)
	}
	s.pool.seed(s, forms)
}

// Close kills every process still running, waits for them, and removes the
// per-session workspaces and every temporary directory. Calls made after
// Close return a tool error. Closing twice does nothing.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.stopProbe != nil {
		s.stopProbe()
	}
	for p := range s.running {
		p.kill()
	}
	wss := s.workspaces
	s.workspaces = map[*calls.Session]*workspace{}
	s.mu.Unlock()
	s.bg.Wait()
	s.pool.close(s)
	s.wg.Wait()
	s.etc.wait()
	var errs []error
	for _, ws := range wss {
		if ws.owned {
			errs = append(errs, removeTree(ws.dir))
		}
	}
	if s.etc.root != s.root {
		errs = append(errs, removeTree(s.etc.root))
	}
	errs = append(errs, removeTree(s.root), s.cg.close())
	return errors.Join(errs...)
}

// MemoryCap says what caps the memory of a call's processes.
func (s *Sandbox) MemoryCap() MemoryCap { return s.memCap }

// unavailable returns the tool error for a sandbox that cannot run at all,
// or nil when it can.
func (s *Sandbox) unavailable() *calls.Result {
	if s.cfg.Mode == ModeBwrap && s.bwrapErr != nil {
		return calls.Errorf("sandbox unavailable: %v.\n%s", s.bwrapErr, fixBwrapMissing)
	}
	if s.cfg.Mode == ModeRlimit && s.prlimitErr != nil {
		return calls.Errorf("sandbox unavailable: %v.\n%s", s.prlimitErr, fixPrlimit)
	}
	return nil
}

const (
	fixNamespaces = "Fix: let unprivileged users create user namespaces (sysctl user.max_user_namespaces=15000; on Debian kernels also kernel.unprivileged_userns_clone=1; " +
		"on Ubuntu 23.10+ kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap). " +
		"In a container, run it with --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined " +
		"(compose: security_opt), or set membrane's sandbox mode to rlimit and let the container be the boundary. `membrane doctor` explains more."
	fixPrlimit = "Fix: install util-linux, which provides prlimit (Debian/Ubuntu: apt-get install util-linux; Alpine: apk add util-linux). `membrane doctor` explains more."
)

// prlimitFallbacks are tried when prlimit is not on PATH.
var prlimitFallbacks = []string{"/usr/bin/prlimit", "/bin/prlimit"}

// findPrlimit looks for util-linux's prlimit, which sets the rlimits inside
// the sandbox just before the command starts.
func findPrlimit() (string, error) {
	path, err := exec.LookPath("prlimit")
	if err != nil {
		for _, p := range prlimitFallbacks {
			if _, serr := os.Stat(p); serr == nil {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return "", errors.New("prlimit (from util-linux) is not installed or not on PATH; the sandbox needs it to apply its limits")
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path, nil
}

// systemDirs are bound read-only (or recreated as the same symlinks) in
// every bubblewrap sandbox.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

func underSystemDirs(path string) bool {
	for _, d := range systemDirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// rootPrefix names the private directories in os.TempDir; the pid of the
// membrane that made one follows it.
const rootPrefix = "membrane-sandbox-"

// sweepStale removes private directories left by a membrane that was killed
// (SIGKILL leaves no chance to clean up): those whose pid is gone, or now
// belongs to a process that is not a membrane sandbox owner of the same uid.
func sweepStale() {
	sweepStaleIn(os.TempDir())
	if shmDir != os.TempDir() {
		sweepStaleIn(shmDir) // the /etc copies (etcRoot)
	}
}

func sweepStaleIn(parent string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), rootPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
			continue // alive
		}
		dir := filepath.Join(parent, e.Name())
		if st, ok := statOwner(dir); !ok || int(st.Uid) != os.Geteuid() {
			continue
		}
		_ = removeTree(dir)
	}
}

// hidden is a host path masked in every sandbox.
type hidden struct {
	path string
	dir  bool
}
