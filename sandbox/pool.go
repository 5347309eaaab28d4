package sandbox

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The warm pool (Config.Warm) hides a bubblewrap sandbox's set-up, most of
// a short call's time, behind the previous call; for python_run, the
// interpreter's start-up too. After a call of some workspace, a sandbox
// for that workspace's next call of the same kind is prepared in the
// background: bwrap is started with the call's whole command line,
// namespaces, mounts, /etc, seccomp filter, rlimits and cgroup, and its
// init waits on the block pipe before the command exists. The next such
// call takes it, writes its code into the files bound read-only at the
// job's file paths and its stdin into the stdin pipe, and releases the
// init. Nothing ran in that sandbox before, and nothing runs in it after:
// each serves exactly one call, so a call sees nothing of another.
//
// python_run's sandbox goes one step further (see prestart): its init is
// released as soon as the limits and cgroup are in place, and the
// interpreter, started up under them, blocks reading its script from a
// FIFO at the script's path, having read nothing of any call. The call's
// script arrives down the FIFO, and the interpreter runs it as it runs a
// script file: no code of ours runs in it, and what the script sees
// (argv, __file__, globals, sys.modules, sys.path, tracebacks, stdin,
// fds, limits, mounts, exit codes and signals) is a fresh run's, as
// TestWarmPythonMatchesFresh checks. Its timeout counts from the call.
// Scripts that declare a non-UTF-8 source encoding run fresh
// (foreignCoding).
//
// What differs from a fresh sandbox, and why it is the same to the code:
// sh runs its command as a script file (/bin/sh /run/membrane/cmd.sh, the
// form a long command always takes), so $0 is that path. A warm
// interpreter's process started before the call (its start time in
// /proc/self/stat). stdin is a pipe in both, empty when the call gives
// none.
//
// The refill starts when a call served warm ends, so that on a small
// machine it does not compete with the call for CPU.
//
// A session's first call is warm too, the first session's included: the
// pool keeps one spare workspace,
// an empty owned directory made as a session's is, with a sandbox
// prepared for it for each form of call (sh, python_run) the pool has
// seen, or has been taught before any call (Sandbox.Prewarm). A new
// session adopts the spare in place of a new directory
// (workspaceFor), the sandboxes waiting for it with it, and the pool makes
// the next spare in the background. A spare is adopted by one session at
// most, never handed back: once adopted it is that session's workspace,
// quota-watched and removed when the session ends like any other. Spare
// sandboxes count against Config.Warm and only fill room nothing else
// wants: a session's next call takes precedence and may evict them. A
// workspace the configuration names (Config.Workspace) has no spare.
//
// The pool is bounded (Config.Warm sandboxes, waiting or being made),
// throws away a sandbox whose /etc copy is no longer current or whose
// process died, drops a workspace's sandboxes when its session ends, and
// is emptied by Close, which removes the spare too.
type warmPool struct {
	max int

	mu      sync.Mutex
	closed  bool
	idle    []*prepared // oldest first
	filling int
	wg      sync.WaitGroup // fills and discards in flight

	// forms are the forms of call seen so far (file contents dropped),
	// which a spare workspace's sandboxes are prepared for.
	forms []warmForm
	// spare is the spare workspace's directory, "" when there is none;
	// adopting holds spares handed to a session that has not registered
	// them yet; inflight counts the fills in flight by key.
	spare    string
	adopting map[string]bool
	inflight map[warmKey]int
	// noSpare turns spare workspaces off (tests of the per-session refill).
	noSpare atomic.Bool
	// filled is closed, and replaced, each time a fill in flight ends
	// (take waits on it); nil while nothing waits.
	filled chan struct{}

	hits, discards atomic.Int64 // for tests and the log
}

// maxForms bounds warmPool.forms; sh and python_run make two.
const maxForms = 4

// warmKey is what a warm sandbox was made for: a workspace and a command
// line with its file paths.
type warmKey struct {
	ws    string
	argv  string // NUL-joined
	files string // NUL-joined sorted paths
}

// warmForm is the form of a job a warm sandbox can run: the command line
// and files it is prepared with. Jobs without one always get a fresh
// sandbox.
type warmForm struct {
	argv  []string
	files map[string][]byte
	// script, when set, is the one file (directly in runDir) that argv's
	// interpreter runs: a warm sandbox then starts the interpreter at
	// once, and it waits, started up, for the script (see prestart).
	script string
	// cold says the job must not take a pre-started interpreter (its
	// script declares a source encoding that an interpreter reading it
	// from a pipe cannot honour); it still refills the pool.
	cold bool
}

func keyOf(ws string, f *warmForm) warmKey {
	return warmKey{
		ws:    ws,
		argv:  strings.Join(f.argv, "\x00"),
		files: strings.Join(slices.Sorted(maps.Keys(f.files)), "\x00"),
	}
}

func newWarmPool(n int) *warmPool { return &warmPool{max: n} }

// learn records the form of j's call for spare workspaces. Call with
// wp.mu held.
func (wp *warmPool) learn(f *warmForm) {
	names := map[string][]byte{}
	for name := range f.files {
		names[name] = nil
	}
	form := warmForm{argv: f.argv, files: names, script: f.script}
	k := keyOf("", &form)
	if len(wp.forms) >= maxForms || slices.ContainsFunc(wp.forms, func(g warmForm) bool { return keyOf("", &g) == k }) {
		return
	}
	wp.forms = append(wp.forms, form)
}

// seed teaches the pool forms before any call has shown them, and starts
// preparing the spare workspace's sandboxes for them (see Prewarm).
func (wp *warmPool) seed(s *Sandbox, forms []*warmForm) {
	if wp == nil {
		return
	}
	wp.mu.Lock()
	for _, f := range forms {
		wp.learn(f)
	}
	wp.mu.Unlock()
	wp.fillSpare(s)
}

// fillSpare makes a spare workspace if there is none and starts preparing
// its sandboxes, one for each known form it has none for yet, while the
// pool has room (it never evicts).
func (wp *warmPool) fillSpare(s *Sandbox) {
	if wp == nil || wp.max == 0 || wp.noSpare.Load() || s.cfg.Workspace != "" {
		return
	}
	etc := s.etc.latest()
	var stale []*prepared
	defer func() {
		for _, pr := range stale {
			wp.discard(s, pr)
		}
	}()
	wp.mu.Lock()
	defer wp.mu.Unlock()
	if wp.closed || len(wp.forms) == 0 {
		return
	}
	// Spare sandboxes made before /etc changed make way for current ones.
	wp.idle = slices.DeleteFunc(wp.idle, func(pr *prepared) bool {
		if pr.key.ws == wp.spare && pr.etc != etc {
			stale = append(stale, pr)
			return true
		}
		return false
	})
	if len(wp.idle)+wp.filling >= wp.max {
		return
	}
	if wp.spare == "" {
		dir, err := s.makeWorkspaceDir()
		if err != nil {
			s.log.Warn("sandbox: spare workspace not made", "err", err)
			return
		}
		wp.spare = dir
	}
	for i := range wp.forms {
		if len(wp.idle)+wp.filling >= wp.max {
			return
		}
		f := &wp.forms[i]
		key := keyOf(wp.spare, f)
		if wp.inflight[key] == 0 && !slices.ContainsFunc(wp.idle, func(pr *prepared) bool { return pr.key == key }) {
			tmpl := &job{argv: f.argv, files: f.files, ws: &workspace{dir: wp.spare, owned: true}, warm: &warmForm{script: f.script}}
			wp.startFill(s, tmpl, key)
		}
	}
}

// adopt hands the spare workspace's directory to a new session, or returns
// "" when there is none. The session must then call adopted.
func (wp *warmPool) adopt(s *Sandbox) string {
	if wp == nil {
		return ""
	}
	wp.mu.Lock()
	dir := wp.spare
	if dir != "" {
		wp.spare = ""
		if wp.adopting == nil {
			wp.adopting = map[string]bool{}
		}
		wp.adopting[dir] = true
	}
	wp.mu.Unlock()
	return dir
}

// adopted ends an adoption: used says whether the session made dir its
// workspace; if not (it had one already, or ended), dir and its sandboxes
// go. Either way the next spare is started.
func (wp *warmPool) adopted(s *Sandbox, dir string, used bool) {
	wp.mu.Lock()
	delete(wp.adopting, dir)
	wp.mu.Unlock()
	if !used {
		wp.drop(s, dir)
		if err := removeTree(dir); err != nil {
			s.log.Warn("sandbox: remove spare workspace", "dir", dir, "err", err)
		}
	}
	wp.fillSpare(s)
}

// live says whether sandboxes for workspace ws may wait: a live session's,
// the spare, or a spare being adopted. Call with wp.mu held.
func (wp *warmPool) live(s *Sandbox, ws string) bool {
	return ws == wp.spare || wp.adopting[ws] || s.hasWorkspace(ws)
}

// take returns a warm sandbox ready to run j, with j's files written and
// j's session its owner, or nil when there is none. When one for j is
// being made (a spare's, say, for a session's first call that came at
// once), take waits for it, until ctx ends: it was started before the
// call, so it is ready no later than a fresh one started now would be, and
// a fresh one would only compete with it for the CPU.
func (wp *warmPool) take(ctx context.Context, s *Sandbox, j *job) *prepared {
	if wp == nil || wp.max == 0 || j.warm == nil || j.ws == nil || j.warm.cold {
		return nil
	}
	key := keyOf(j.ws.dir, j.warm)
	for {
		wp.mu.Lock()
		i := slices.IndexFunc(wp.idle, func(pr *prepared) bool { return pr.key == key })
		if i < 0 {
			if wp.inflight[key] == 0 || wp.closed {
				wp.mu.Unlock()
				return nil
			}
			if wp.filled == nil {
				wp.filled = make(chan struct{})
			}
			filled := wp.filled
			wp.mu.Unlock()
			select {
			case <-filled:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		pr := wp.idle[i]
		wp.idle = slices.Delete(wp.idle, i, i+1)
		wp.mu.Unlock()
		// The newest /etc copy, read now: one made before the first copy
		// was ready (a spare's, say) has it, and so does the call.
		if pr.joinErr != nil || pr.initPID == 0 || pr.etc != s.etc.latest() || !pr.p.initAlive() {
			// Made before /etc changed, or broken: never used.
			wp.discard(s, pr)
			continue
		}
		if err := pr.write(s, j.warm.files); err != nil {
			s.log.Warn("sandbox: warm sandbox not used", "err", err)
			wp.discard(s, pr)
			return nil
		}
		s.mu.Lock()
		pr.p.sess = j.sess
		s.mu.Unlock()
		j.argv, j.files = j.warm.argv, j.warm.files
		wp.hits.Add(1)
		return pr
	}
}

// refill prepares, in the background, a sandbox for the next call like j,
// if the pool has room: if it is full, the oldest waiting sandbox of
// another workspace or command makes way.
func (wp *warmPool) refill(s *Sandbox, j *job) {
	if wp == nil || wp.max == 0 || j.warm == nil || j.ws == nil {
		return
	}
	key := keyOf(j.ws.dir, j.warm)
	names := map[string][]byte{}
	for name := range j.warm.files {
		names[name] = nil
	}
	tmpl := &job{argv: j.warm.argv, files: names, ws: j.ws, warm: &warmForm{script: j.warm.script}}
	wp.mu.Lock()
	if wp.closed {
		wp.mu.Unlock()
		return
	}
	wp.learn(j.warm)
	var evict *prepared
	if len(wp.idle)+wp.filling >= wp.max {
		i := slices.IndexFunc(wp.idle, func(pr *prepared) bool { return pr.key != key })
		if i < 0 {
			wp.mu.Unlock()
			return
		}
		evict = wp.idle[i]
		wp.idle = slices.Delete(wp.idle, i, i+1)
	}
	wp.startFill(s, tmpl, key)
	wp.mu.Unlock()
	if evict != nil {
		wp.discard(s, evict)
	}
	wp.fillSpare(s)
}

// startFill prepares tmpl's sandbox in the background and adds it to the
// pool if its workspace is still live then. Call with wp.mu held, room
// made.
func (wp *warmPool) startFill(s *Sandbox, tmpl *job, key warmKey) {
	wp.filling++
	if wp.inflight == nil {
		wp.inflight = map[warmKey]int{}
	}
	wp.inflight[key]++
	wp.wg.Add(1)
	go func() {
		defer wp.wg.Done()
		pr, err := s.prepare(context.Background(), tmpl, &key)
		wp.mu.Lock()
		wp.filling--
		if wp.inflight[key]--; wp.inflight[key] == 0 {
			delete(wp.inflight, key)
		}
		keep := err == nil && !wp.closed && wp.live(s, key.ws)
		if keep {
			wp.idle = append(wp.idle, pr)
		}
		if wp.filled != nil {
			close(wp.filled)
			wp.filled = nil
		}
		wp.mu.Unlock()
		if err == nil && !keep {
			wp.kill(s, pr)
		}
	}()
}

// drop throws away the waiting sandboxes of workspace ws (its session
// ended).
func (wp *warmPool) drop(s *Sandbox, ws string) {
	if wp == nil {
		return
	}
	wp.mu.Lock()
	var out []*prepared
	wp.idle = slices.DeleteFunc(wp.idle, func(pr *prepared) bool {
		if pr.key.ws == ws {
			out = append(out, pr)
			return true
		}
		return false
	})
	wp.mu.Unlock()
	for _, pr := range out {
		wp.discard(s, pr)
	}
	if len(out) > 0 {
		wp.fillSpare(s) // room was made
	}
}

// close empties the pool and waits for fills and discards in flight.
func (wp *warmPool) close(s *Sandbox) {
	if wp == nil {
		return
	}
	wp.mu.Lock()
	wp.closed = true
	out := wp.idle
	wp.idle = nil
	spare := wp.spare
	wp.spare = ""
	wp.mu.Unlock()
	for _, pr := range out {
		wp.discard(s, pr)
	}
	wp.wg.Wait()
	if spare != "" {
		if err := removeTree(spare); err != nil {
			s.log.Warn("sandbox: remove spare workspace", "dir", spare, "err", err)
		}
	}
}

// size returns how many warm sandboxes wait or are being made, for tests.
func (wp *warmPool) size() int {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	return len(wp.idle) + wp.filling
}

// waiting returns how many warm sandboxes wait, for tests.
func (wp *warmPool) waiting() int {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	return len(wp.idle)
}

// discard kills a warm sandbox that will serve no call: in the
// background, or at once once the pool is closed (Close is waiting).
func (wp *warmPool) discard(s *Sandbox, pr *prepared) {
	wp.discards.Add(1)
	wp.mu.Lock()
	if wp.closed {
		wp.mu.Unlock()
		wp.kill(s, pr)
		return
	}
	wp.wg.Add(1)
	wp.mu.Unlock()
	go func() {
		defer wp.wg.Done()
		wp.kill(s, pr)
	}()
}

func (wp *warmPool) kill(s *Sandbox, pr *prepared) {
	pr.p.kill()
	_ = pr.cmd.Wait()
	<-pr.infoDone
	pr.p.waitInit()
	pr.release(s)
}

// warmFiles makes the host files a warm sandbox binds read-only at j's
// file paths, empty until a call takes it, in a directory of their own;
// j's files are then bound from them instead of copied in. For an
// interpreter that starts at once (warmForm.script) it makes prestart's
// directory instead.
func (s *Sandbox) warmFiles(pr *prepared, j *job) error {
	if j.warm != nil && j.warm.script != "" {
		return s.prestart(pr, j)
	}
	dir, err := os.MkdirTemp(filepath.Join(s.root, "run"), "w-")
	if err != nil {
		return fmt.Errorf("sandbox: make warm dir: %w", err)
	}
	pr.cleanup = append(pr.cleanup, func() { removeTree(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("sandbox: make warm dir: %w", err)
	}
	pr.files = map[string]*os.File{}
	j.binds = map[string]string{}
	for name := range j.files {
		host := filepath.Join(dir, filepath.Base(name))
		// Readable by the uid sandboxes run as, and by no other.
		f, err := os.OpenFile(host, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("sandbox: make warm file: %w", err)
		}
		pr.cleanup = append(pr.cleanup, func() { f.Close() })
		if s.cred != nil {
			if err := f.Chown(s.uid, s.gid); err != nil {
				return fmt.Errorf("sandbox: make warm file: %w", err)
			}
		}
		pr.files[name] = f
		j.binds[name] = host
	}
	j.files = nil
	return nil
}

// prestart readies a warm sandbox whose interpreter starts at once and
// waits, started up, for the call's script, hiding its start-up as well
// as the sandbox's set-up. runDir is bound read-only from a host
// directory of the warm sandbox's own, owned (mode 0755) by the uid
// sandboxes run as, as bwrap makes runDir in a fresh sandbox; in it, at
// the script's name, is a FIFO the host holds open. The interpreter runs
// the script's path, as a fresh one does; having started up, it opens the
// FIFO and blocks reading it, having read nothing of the call.
//
// When a call takes the sandbox (write), its script goes into a regular
// file (mode 0600, as bwrap's --ro-bind-data makes it) renamed over the
// FIFO; when the call starts (finish), the same bytes go down the FIFO and
// the host closes its end. The interpreter compiles what it read under the
// script's path and runs it as __main__, exactly as it runs a script file;
// anything that opens the path later (a traceback's source lines,
// inspect, the code itself) finds the regular file with the same bytes.
// So sys.argv, sys.orig_argv, /proc/self/cmdline, __file__, tracebacks,
// sys.path, sys.modules and __main__'s globals are a fresh run's: no
// bootstrap code of ours ever runs in the interpreter.
func (s *Sandbox) prestart(pr *prepared, j *job) error {
	dir, name, err := s.scriptDir(pr, j)
	if err != nil {
		return err
	}
	fifo := filepath.Join(dir, name)
	err = syscall.Mkfifo(fifo, 0o600)
	if err == nil && s.cred != nil {
		err = os.Chown(fifo, s.uid, s.gid)
	}
	if err != nil {
		return fmt.Errorf("sandbox: make warm script: %w", err)
	}
	// Read-write, so that opening it never blocks and the interpreter's
	// open never does either: it blocks in read until the host's end
	// closes.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sandbox: open warm script: %w", err)
	}
	pr.cleanup = append(pr.cleanup, func() { f.Close() })
	pr.fifo, pr.runHost = f, dir
	return nil
}

// scriptDir makes the host directory bound read-only at runDir for a job
// whose one file is an interpreter's script (warmForm.script), in a fresh
// sandbox as in a warm one, so that both look the same from inside: owned
// by the uid sandboxes run as, mode 0755 (as bwrap makes a directory). It
// returns the directory and the script's name in it; j binds it in place
// of its files.
func (s *Sandbox) scriptDir(pr *prepared, j *job) (dir, name string, err error) {
	script := j.warm.script
	if filepath.Dir(script) != runDir || len(j.files) != 1 || !slices.Contains(slices.Collect(maps.Keys(j.files)), script) {
		return "", "", fmt.Errorf("sandbox: an interpreter's script dir takes one script in %s, not %v", runDir, slices.Sorted(maps.Keys(j.files)))
	}
	dir, err = os.MkdirTemp(filepath.Join(s.root, "run"), "p-")
	if err != nil {
		return "", "", fmt.Errorf("sandbox: make script dir: %w", err)
	}
	pr.cleanup = append(pr.cleanup, func() { removeTree(dir) })
	err = os.Chmod(dir, 0o755)
	if err == nil && s.cred != nil {
		err = os.Chown(dir, s.uid, s.gid)
	}
	if err != nil {
		return "", "", fmt.Errorf("sandbox: make script dir: %w", err)
	}
	j.binds = map[string]string{runDir: dir}
	j.files = nil
	return dir, filepath.Base(script), nil
}

// writeScript puts an interpreter's script into dir, readable by the uid
// sandboxes run as only (mode 0600, as bwrap's --ro-bind-data makes a
// file), renamed into place so that a reader sees all of it or none.
func (s *Sandbox) writeScript(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name)
	err := os.WriteFile(tmp, data, 0o600)
	if err == nil && s.cred != nil {
		err = os.Chown(tmp, s.uid, s.gid)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		return fmt.Errorf("sandbox: write %s: %w", name, err)
	}
	return nil
}

// write puts a call's file contents into a warm sandbox's bound files (for
// a pre-started interpreter: the script file prestart describes, whose
// bytes finish then sends).
func (pr *prepared) write(s *Sandbox, files map[string][]byte) error {
	if pr.fifo != nil {
		name := filepath.Base(pr.fifo.Name())
		data, ok := files[filepath.Join(runDir, name)]
		if len(files) != 1 || !ok {
			return fmt.Errorf("sandbox: a pre-started interpreter takes its script %s only, not %v", name, slices.Sorted(maps.Keys(files)))
		}
		if err := s.writeScript(pr.runHost, name, data); err != nil {
			return err
		}
		pr.script = data
		return nil
	}
	if len(files) != len(pr.files) {
		return fmt.Errorf("sandbox: warm sandbox has %d files, the call %d", len(pr.files), len(files))
	}
	for name, data := range files {
		f, ok := pr.files[name]
		if !ok {
			return fmt.Errorf("sandbox: warm sandbox has no file %s", name)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			return fmt.Errorf("sandbox: write %s: %w", name, err)
		}
	}
	return nil
}

// hasWorkspace says whether a live session has the workspace dir.
func (s *Sandbox) hasWorkspace(dir string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for _, ws := range s.workspaces {
		if ws.dir == dir {
			return true
		}
	}
	return false
}

// sendScript writes a pre-started interpreter's script down its FIFO f
// (the host's read-write end) and closes f once the interpreter has read
// every byte: it then holds the FIFO open, and the close is its end of
// file. A close before it opened the FIFO would lose the bytes and leave
// it blocked in open. Had it opened the path only after write's rename,
// it reads the regular file instead, and f is closed when done is (the
// call is over).
func sendScript(f *os.File, script []byte, done <-chan struct{}) {
	_, err := f.Write(script)
	for d := 20 * time.Microsecond; err == nil && unread(f) > 0; d = min(2*d, 2*time.Millisecond) {
		select {
		case <-done:
			return
		case <-time.After(d):
		}
	}
	f.Close()
}
