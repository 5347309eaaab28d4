package sandbox

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The workspace quota is enforced by watching: while a call runs, a
// goroutine measures the session's workspace (disk blocks allocated, hard
// links counted once, and entries) every quotaEvery, or every four scan
// durations when the tree is large (at most quotaEveryMax), and kills the
// call when the workspace holds more than the quota and more than it did
// when the call started; the workspace is measured once more when the call
// ends. A call can overshoot by what it writes between two scans (at disk
// speed, some hundreds of MB); RLIMIT_FSIZE caps each single file
// meanwhile, fallocate(2) is refused so that space is only taken at the
// speed of writing, and the result says the call was killed and why.
// Kernel project quotas would be exact, but are rarely set up where
// membrane runs.
var (
	quotaEvery    = 200 * time.Millisecond
	quotaEveryMax = time.Second
)

// usage is what a workspace holds.
type usage struct {
	bytes int64 // disk blocks allocated, in bytes
	files int   // entries: files, directories, links
}

// measureUsage walks dir without following links. It counts the bytes of
// a hard-linked file once, so that links do not inflate the size, and stops
// as soon as the count passes limit (when limit is not zero): the cost of a
// scan is bounded by the quota, not by what a call made.
func measureUsage(dir string, limit usage) usage {
	var u usage
	seen := map[[2]uint64]bool{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return nil
		}
		if limit != (usage{}) && (u.files > limit.files || u.bytes > limit.bytes) {
			return filepath.SkipAll
		}
		u.files++
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			u.bytes += fi.Size()
			return nil
		}
		if !d.IsDir() && st.Nlink > 1 {
			k := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		u.bytes += int64(st.Blocks) * 512
		return nil
	})
	return u
}

// quotaWatch watches one workspace while a call runs.
type quotaWatch struct {
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	reason string
}

// quotaLimit is the quota as a usage.
func (s *Sandbox) quotaLimit() usage {
	return usage{bytes: s.cfg.WorkspaceBytes, files: s.cfg.WorkspaceFiles}
}

// over says how u passes the quota, if it does.
func (s *Sandbox) over(u usage) string {
	switch {
	case u.bytes > s.cfg.WorkspaceBytes:
		return fmt.Sprintf("the workspace passed its quota of %s (it holds at least %s)", bytesText(s.cfg.WorkspaceBytes), bytesText(u.bytes))
	case u.files > s.cfg.WorkspaceFiles:
		return fmt.Sprintf("the workspace passed its quota of %d files and directories (it holds at least %d)", s.cfg.WorkspaceFiles, u.files)
	}
	return ""
}

// watchLimit is where a scan during a call that started at start may stop:
// past the quota, and past start. A scan stops as soon as one count passes
// its limit, and counts taken by walks in different orders cannot be
// compared; but a count past start is more than start held, whatever the
// order. start must be a whole count when it is over the quota (see
// startUsage).
func (s *Sandbox) watchLimit(start usage) usage {
	q := s.quotaLimit()
	return usage{bytes: max(q.bytes, start.bytes), files: max(q.files, start.files)}
}

// startUsage is what ws held when a call starts. The last scan stopped at
// the quota; when that is where it stopped, the workspace is counted whole,
// once, so that a call that only deletes (rm -rf in a workspace over its
// quota) is never taken for one that grows it.
func (s *Sandbox) startUsage(ws *workspace) usage {
	u := ws.lastUsage()
	if s.over(u) != "" {
		u = measureUsage(ws.dir, usage{})
	}
	return u
}

// watchQuota starts watching ws for the call p. It kills p when the
// workspace passes the quota and holds more than start.
func (s *Sandbox) watchQuota(ws *workspace, start usage, p *process) *quotaWatch {
	w := &quotaWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		wait := quotaEvery
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			t0 := time.Now()
			u := measureUsage(ws.dir, s.watchLimit(start))
			if why := s.over(u); why != "" && (u.bytes > start.bytes || u.files > start.files) {
				w.mu.Lock()
				w.reason = why
				w.mu.Unlock()
				p.kill()
				return
			}
			t.Reset(min(max(quotaEvery, 4*time.Since(t0)), quotaEveryMax))
		}
	}()
	return w
}

// end stops the watch and returns why it killed the call, if it did.
func (w *quotaWatch) end() string {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}
