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
)

// The warm pool (Config.Warm) hides a bubblewrap sandbox's set-up, most of
// a short call's time, behind the previous call. After a call of some
// workspace, a sandbox for that workspace's next call of the same kind is
// prepared in the background: bwrap is started with the call's whole
// command line, namespaces, mounts, /etc, seccomp filter, rlimits and
// cgroup, and its init waits on the block pipe before the command exists.
// The next such call takes it, writes its code into the files bound
// read-only at the job's file paths and its stdin into the stdin pipe, and
// releases the init. Nothing ran in that sandbox before, and nothing runs
// in it after: each serves exactly one call, so a call sees nothing of
// another.
//
// What differs from a fresh sandbox, and why it is the same to the code:
// sh runs its command as a script file (/bin/sh /run/membrane/cmd.sh, the
// form a long command always takes), so $0 is that path; stdin is a pipe,
// empty when the call gives none, where a fresh sandbox has /dev/null.
//
// The pool is bounded (Config.Warm sandboxes, waiting or being made),
// throws away a sandbox whose /etc copy is no longer current or whose
// process died, drops a workspace's sandboxes when its session ends, and
// is emptied by Close.
type warmPool struct {
	max int

	mu      sync.Mutex
	closed  bool
	idle    []*prepared // oldest first
	filling int
	wg      sync.WaitGroup // fills and discards in flight

	hits, discards atomic.Int64 // for tests and the log
}

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
}

func keyOf(ws string, f *warmForm) warmKey {
	return warmKey{
		ws:    ws,
		argv:  strings.Join(f.argv, "\x00"),
		files: strings.Join(slices.Sorted(maps.Keys(f.files)), "\x00"),
	}
}

func newWarmPool(n int) *warmPool { return &warmPool{max: n} }

// take returns a warm sandbox ready to run j, with j's files written and
// j's session its owner, or nil when there is none.
func (wp *warmPool) take(s *Sandbox, j *job) *prepared {
	if wp == nil || wp.max == 0 || j.warm == nil || j.ws == nil {
		return nil
	}
	key := keyOf(j.ws.dir, j.warm)
	etc := s.etc.latest()
	for {
		wp.mu.Lock()
		i := slices.IndexFunc(wp.idle, func(pr *prepared) bool { return pr.key == key })
		if i < 0 {
			wp.mu.Unlock()
			return nil
		}
		pr := wp.idle[i]
		wp.idle = slices.Delete(wp.idle, i, i+1)
		wp.mu.Unlock()
		if pr.joinErr != nil || pr.initPID == 0 || pr.etc != etc || !pr.p.initAlive() {
			// Made before /etc changed, or broken: never used.
			wp.discard(s, pr)
			continue
		}
		if err := pr.write(j.warm.files); err != nil {
			s.log.Warn("sandbox: warm sandbox not used", "err", err)
			wp.discard(s, pr)
			return nil
		}
		s.mu.Lock()
		pr.p.sess = j.sess
		s.mu.Unlock()
		j.argv, j.files = j.warm.argv, j.warm.files
		wp.hits.Add(1)
		wp.refill(s, j)
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
	wp.mu.Lock()
	if wp.closed {
		wp.mu.Unlock()
		return
	}
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
	wp.filling++
	wp.wg.Add(1)
	wp.mu.Unlock()
	if evict != nil {
		wp.discard(s, evict)
	}
	names := map[string][]byte{}
	for name := range j.warm.files {
		names[name] = nil
	}
	tmpl := &job{argv: j.warm.argv, files: names, ws: j.ws}
	go func() {
		defer wp.wg.Done()
		pr, err := s.prepare(context.Background(), tmpl, &key)
		wp.mu.Lock()
		wp.filling--
		keep := err == nil && !wp.closed && s.hasWorkspace(key.ws)
		if keep {
			wp.idle = append(wp.idle, pr)
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
	wp.mu.Unlock()
	for _, pr := range out {
		wp.discard(s, pr)
	}
	wp.wg.Wait()
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
// j's files are then bound from them instead of copied in.
func (s *Sandbox) warmFiles(pr *prepared, j *job) error {
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

// write puts a call's file contents into a warm sandbox's bound files.
func (pr *prepared) write(files map[string][]byte) error {
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
