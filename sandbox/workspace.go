package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/membrane-mcp/membrane/calls"
)

// workspace is the directory one session's calls share.
type workspace struct {
	dir   string
	owned bool // made by us, removed when the session ends; the quota applies

	mu       sync.Mutex
	used     usage // as measured at the end of the last call
	measured bool
}

// lastUsage returns what the workspace held at the end of its last call,
// measuring it the first time.
func (ws *workspace) lastUsage() usage {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !ws.measured {
		ws.used, ws.measured = measureUsage(ws.dir, usage{}), true
	}
	return ws.used
}

func (ws *workspace) setUsage(u usage) {
	ws.mu.Lock()
	ws.used, ws.measured = u, true
	ws.mu.Unlock()
}

// errSessionClosed is returned by workspaceFor for a session that has ended.
var errSessionClosed = errors.New("the session has ended")

// errClosed is returned when the Sandbox has been closed.
var errClosed = errors.New("the sandbox has shut down")

// workspaceFor returns the session's workspace, making it on first use. A
// made directory is removed when the session closes, after the session's
// running processes have been killed.
func (s *Sandbox) workspaceFor(sess *calls.Session) (*workspace, error) {
	// A new session adopts the pool's spare workspace, if there is one,
	// with the sandboxes waiting for it (see warmPool.adopt).
	var spare string
	if s.cfg.Workspace == "" && !s.hasSession(sess) {
		spare = s.pool.adopt(s)
	}
	ws, fresh, err := s.workspaceLocked(sess, spare)
	if spare != "" {
		s.pool.adopted(s, spare, fresh && ws.dir == spare)
	}
	if fresh {
		// On a session that closed meanwhile, OnClose runs the cleanup at
		// once, so it must be called without s.mu held.
		sess.OnClose(func() { s.endSession(sess) })
	}
	return ws, err
}

// hasSession says whether sess has a workspace already.
func (s *Sandbox) hasSession(sess *calls.Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.workspaces[sess]
	return ok
}

// makeWorkspaceDir makes an empty owned workspace directory, with out/ in
// it, owned by the uid sandboxes run as.
func (s *Sandbox) makeWorkspaceDir() (string, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.root, "ws"), "s-")
	if err != nil {
		return "", fmt.Errorf("sandbox: make workspace: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("sandbox: make workspace: %w", err)
	}
	if s.cred != nil {
		if err := os.Lchown(dir, s.uid, s.gid); err != nil {
			os.Remove(dir)
			return "", fmt.Errorf("sandbox: make workspace: %w", err)
		}
	}
	// out/ is where a call leaves the files it returns.
	out := filepath.Join(dir, OutDir)
	if err := os.Mkdir(out, 0o755); err == nil && s.cred != nil {
		_ = os.Lchown(out, s.uid, s.gid)
	}
	return dir, nil
}

// workspaceLocked returns sess's workspace, making it on first use: spare,
// when set, is an owned workspace directory the session may adopt instead
// of a new one.
func (s *Sandbox) workspaceLocked(sess *calls.Session, spare string) (_ *workspace, fresh bool, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, errClosed
	}
	if ws, ok := s.workspaces[sess]; ok {
		return ws, false, nil
	}
	if sess.Closed() {
		return nil, false, errSessionClosed
	}
	ws := &workspace{dir: s.cfg.Workspace}
	if ws.dir == "" {
		dir := spare
		if dir == "" {
			var err error
			if dir, err = s.makeWorkspaceDir(); err != nil {
				return nil, false, err
			}
		}
		ws.dir, ws.owned = dir, true
	}
	s.workspaces[sess] = ws
	sess.SetWorkspace(ws.dir)
	return ws, true, nil
}

// endSession kills the session's running processes, waits for them, and
// removes its workspace if we made it.
func (s *Sandbox) endSession(sess *calls.Session) {
	s.mu.Lock()
	ws, ok := s.workspaces[sess]
	delete(s.workspaces, sess)
	var ps []*process
	for p := range s.running {
		if p.sess == sess {
			p.kill()
			ps = append(ps, p)
		}
	}
	s.mu.Unlock()
	for _, p := range ps {
		<-p.done
	}
	if ok && ws.owned {
		s.pool.drop(s, ws.dir)
		if err := removeTree(ws.dir); err != nil {
			s.log.Warn("sandbox: remove workspace", "session", sess.ID(), "dir", ws.dir, "err", err)
		}
	}
}

// removeTree removes dir and everything under it, even directories a
// sandboxed process made unwritable. It never follows a symbolic link: a
// directory is opened with O_NOFOLLOW before its mode is changed, so a link
// planted in the workspace cannot redirect a chmod to a host file.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	// WalkDir calls the function on a directory before reading it, so the
	// chmod comes first.
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			chmodDirNoFollow(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

func statOwner(path string) (*syscall.Stat_t, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// reachable reports whether uid:gid (with no supplementary groups) can
// traverse every directory on the way to dir and, if write is set, write
// into dir itself.
func reachable(dir string, uid, gid int, write bool) error {
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(dir), "/"), "/")
	path := "/"
	for i := 0; i <= len(parts); i++ {
		if i > 0 {
			path = filepath.Join(path, parts[i-1])
		}
		st, ok := statOwner(path)
		if !ok {
			return fmt.Errorf("cannot stat %s", path)
		}
		need := uint32(1) // x
		if i == len(parts) && write {
			need = 3 // wx
		}
		var have uint32
		switch {
		case int(st.Uid) == uid:
			have = (uint32(st.Mode) >> 6) & 7
		case int(st.Gid) == gid:
			have = (uint32(st.Mode) >> 3) & 7
		default:
			have = uint32(st.Mode) & 7
		}
		if have&need != need {
			what := "enter"
			if need == 3 {
				what = "write into"
			}
			return fmt.Errorf("uid %d cannot %s %s (mode %o, owner %d:%d)", uid, what, path, st.Mode&0o777, st.Uid, st.Gid)
		}
		if parts[0] == "" {
			break
		}
	}
	return nil
}
