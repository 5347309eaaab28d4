package sandbox

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// etcRecheck is how often the host's /etc is checked for changes that the
// sandbox's copy must follow (resolv.conf after a network change,
// ld.so.cache after a package install).
const etcRecheck = 5 * time.Second

// etcSnapshot is the sandbox's /etc: a copy of the world-readable parts of
// the entries in etcFiles plus a synthetic passwd and group, bound as one
// directory. One bind costs a fraction of binding thirty entries one by one,
// which was most of a sandbox's start-up time.
//
// The copy is made off the call path: start builds the first one in the
// background (so that New, and a client's tools/list, need not wait for
// it), and a call that finds the last check older than etcRecheck starts a
// recheck in the background and goes on with the copy it has. A call waits
// only for the very first copy; it never builds one, and it takes no lock.
// The copies live in root, on tmpfs where the host has one (see etcRoot).
type etcSnapshot struct {
	src           string // "/etc"
	root          string // where snapshots are made
	passwd, group []byte

	cur     atomic.Pointer[etcCopy]
	checked atomic.Int64 // unix nanoseconds of the last check
	busy    atomic.Bool  // a build or a check is running
	first   chan struct{}
	wg      sync.WaitGroup
	n       int // copies made; only the running build touches it
}

// etcCopy is one snapshot: its directory and the signature of the host
// entries it was made from, or the error of the first build.
type etcCopy struct {
	dir string
	sig uint64
	err error
}

// start builds the first copy in the background.
func (e *etcSnapshot) start() {
	e.first = make(chan struct{})
	e.busy.Store(true)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(e.first)
		e.refresh()
	}()
}

// current returns the directory to bind at /etc: the newest copy, waiting
// only for the first to be made (or ctx to end). When the last check is
// older than etcRecheck it starts another, in the background.
func (e *etcSnapshot) current(ctx context.Context) (string, error) {
	select {
	case <-e.first:
	default:
		select {
		case <-e.first:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	c := e.cur.Load()
	if time.Since(time.Unix(0, e.checked.Load())) >= etcRecheck && e.busy.CompareAndSwap(false, true) {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.refresh()
		}()
	}
	if c.dir == "" {
		return "", c.err
	}
	return c.dir, nil
}

// refresh checks the host's entries and makes a new copy when they changed
// (or when there is none). The caller has set busy; refresh clears it.
func (e *etcSnapshot) refresh() {
	defer e.busy.Store(false)
	sig := etcSignature(e.src)
	e.checked.Store(time.Now().UnixNano())
	old := e.cur.Load()
	if old != nil && old.dir != "" && sig == old.sig {
		return
	}
	dir := filepath.Join(e.root, fmt.Sprintf("etc-%d", e.n))
	e.n++
	if err := e.build(dir); err != nil {
		removeTree(dir)
		if old == nil || old.dir == "" {
			e.cur.Store(&etcCopy{err: fmt.Errorf("sandbox: copy /etc: %w", err)})
		}
		return // keep the last good copy
	}
	// Older copies stay until Close: a running sandbox may have one bound.
	e.cur.Store(&etcCopy{dir: dir, sig: sig})
}

// latest returns the newest copy's directory without waiting for one or
// starting a check: "" before the first.
func (e *etcSnapshot) latest() string {
	if c := e.cur.Load(); c != nil {
		return c.dir
	}
	return ""
}

// wait waits for a build or check in progress.
func (e *etcSnapshot) wait() { e.wg.Wait() }

// etcRoot makes the directory the /etc copies go in: under /dev/shm where
// the host has it (tmpfs: the copy costs a tenth of one on a disk-backed
// /tmp), else in fallback. Its name starts like the private root's, so that
// sweepStale removes one a killed membrane left.
func etcRoot(fallback string) string {
	if fi, err := os.Stat(shmDir); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp(shmDir, fmt.Sprintf("%s%d-etc-", rootPrefix, os.Getpid())); err == nil {
			if os.Chmod(dir, 0o711) == nil {
				return dir
			}
			os.Remove(dir)
		}
	}
	return fallback
}

// shmDir is the host's tmpfs for etcRoot.
const shmDir = "/dev/shm"

func (e *etcSnapshot) build(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), e.passwd, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "group"), e.group, 0o644); err != nil {
		return err
	}
	for _, name := range etcFiles {
		if err := copyEtcEntry(filepath.Join(e.src, name), filepath.Join(dir, name), 0); err != nil {
			return err
		}
	}
	return nil
}

// copyEtcEntry copies src to dst: a top-level symlink is followed (its
// target may be outside the sandbox, as /etc/resolv.conf's often is); deeper
// symlinks are copied as links (they point into /usr, which the sandbox
// has). Only what any user may read is copied: a file without the
// world-read bit or a directory without world-read-and-search (such as
// /etc/ssl/private) is left out.
func copyEtcEntry(src, dst string, depth int) error {
	if depth > 8 {
		return nil
	}
	stat := os.Lstat
	if depth == 0 {
		stat = os.Stat
	}
	fi, err := stat(src)
	if err != nil {
		return nil // absent here
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return nil
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if fi.Mode().Perm()&0o005 != 0o005 {
			return nil
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return nil
		}
		for _, ent := range ents {
			if err := copyEtcEntry(filepath.Join(src, ent.Name()), filepath.Join(dst, ent.Name()), depth+1); err != nil {
				return err
			}
		}
		return nil
	case fi.Mode().IsRegular():
		if fi.Mode().Perm()&0o004 == 0 || fi.Size() > 16<<20 {
			return nil
		}
		in, err := os.Open(src)
		if err != nil {
			return nil
		}
		defer in.Close()
		return calls.WriteNewFile(dst, in, 0o644)
	}
	return nil
}

// etcSignature hashes the names, sizes, modes and times of everything
// copyEtcEntry would read, so that any change shows.
func etcSignature(dir string) uint64 {
	h := fnv.New64a()
	for _, name := range etcFiles {
		src := filepath.Join(dir, name)
		fi, err := os.Stat(src)
		if err != nil {
			fmt.Fprintf(h, "%s:-\n", name)
			continue
		}
		sign := func(path string, fi fs.FileInfo) {
			fmt.Fprintf(h, "%s:%d:%o:%d\n", path, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		}
		sign(src, fi)
		if fi.IsDir() {
			_ = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
				if err != nil || path == src {
					return nil
				}
				if info, err := d.Info(); err == nil {
					sign(path, info)
				}
				return nil
			})
		}
	}
	return h.Sum64()
}
