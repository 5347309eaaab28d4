package sandbox

import (
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// etcRecheck is how often the host's /etc is checked for changes that the
// sandbox's copy must follow (resolv.conf after a network change,
// ld.so.cache after a package install).
const etcRecheck = 5 * time.Second

// etcSnapshot is the sandbox's /etc: a copy of the world-readable parts of
// the entries in etcFiles plus a synthetic passwd and group, bound as one
// directory. One bind costs a fraction of binding thirty entries one by one,
// which was most of a sandbox's start-up time.
type etcSnapshot struct {
	src           string // "/etc"
	root          string // where snapshots are made
	passwd, group []byte

	mu      sync.Mutex
	dir     string
	sig     uint64
	checked time.Time
	n       int
}

// current returns the directory to bind at /etc, rebuilding it when the
// host's entries changed since the last check.
func (e *etcSnapshot) current() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dir != "" && time.Since(e.checked) < etcRecheck {
		return e.dir, nil
	}
	sig := etcSignature(e.src)
	e.checked = time.Now()
	if e.dir != "" && sig == e.sig {
		return e.dir, nil
	}
	dir := filepath.Join(e.root, fmt.Sprintf("etc-%d", e.n))
	e.n++
	if err := e.build(dir); err != nil {
		removeTree(dir)
		if e.dir != "" {
			return e.dir, nil // keep the last good copy
		}
		return "", fmt.Errorf("sandbox: copy /etc: %w", err)
	}
	// Older copies stay until Close: a running sandbox may have one bound.
	e.dir, e.sig = dir, sig
	return dir, nil
}

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
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
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
