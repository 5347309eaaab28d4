package calls

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"time"
)

// WorkspaceEntry is one entry of a workspace listing.
type WorkspaceEntry struct {
	// Path is relative to the workspace, with slashes.
	Path string `json:"path"`
	// Type is "file", "dir", "symlink" or "other" (a FIFO, socket or
	// device).
	Type string `json:"type"`
	// Size is the size in bytes (of a file; the link text of a symlink).
	Size int64 `json:"size"`
	// ModTime is the time of the last change of its contents.
	ModTime time.Time `json:"mtime"`
}

// ListOptions bounds ListWorkspace. The zero value lists the whole
// workspace, 1000 entries at most.
type ListOptions struct {
	// Under is a directory inside the workspace to list instead of all of
	// it, named as ReadWorkspaceFile takes names. Empty means all.
	Under string
	// Skip leaves out the first Skip entries (in the walk's order), for a
	// listing in pages.
	Skip int
	// Max is the most entries returned. Zero means 1000.
	Max int
	// Depth, when above zero, lists only entries at most Depth levels
	// below Under (1: its own entries).
	Depth int
	// Filter, when set, keeps an entry only when it returns true. A
	// directory it refuses is still walked.
	Filter func(WorkspaceEntry) bool
}

// ListWorkspace lists the workspace directory dir in lexical order, never
// following a symbolic link (a link is listed as one, and a directory
// swapped for a link while the walk runs is not entered: every step goes
// through os.Root). It returns at most opts.Max entries, and whether more
// follow. ctx is checked between entries. Errors are *WorkspaceFileError.
func ListWorkspace(ctx context.Context, dir string, opts ListOptions) ([]WorkspaceEntry, bool, error) {
	max := opts.Max
	if max <= 0 {
		max = 1000
	}
	under := opts.Under
	if under == "" {
		under = "."
	}
	fail := func(err error) ([]WorkspaceEntry, bool, error) {
		return nil, false, &WorkspaceFileError{Path: opts.Under, Err: err, Op: "listed"}
	}
	root, rel, err := openWorkspace(dir, under)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	if fi, err := root.Stat(rel); err != nil {
		return fail(openError(err))
	} else if !fi.IsDir() {
		return fail(errors.New("not a directory"))
	}
	var (
		out     []WorkspaceEntry
		more    bool
		skipped int
	)
	base := filepath.ToSlash(rel)
	err = fs.WalkDir(root.FS(), base, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil || p == base {
			return nil // unreadable: skip it
		}
		if opts.Depth > 0 && depthBelow(base, p) > opts.Depth {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := root.Lstat(p)
		if err != nil {
			return nil // gone meanwhile
		}
		e := WorkspaceEntry{Path: p, Size: fi.Size(), ModTime: fi.ModTime().UTC(), Type: entryType(fi.Mode())}
		if opts.Filter != nil && !opts.Filter(e) {
			return nil
		}
		if skipped < opts.Skip {
			skipped++
			return nil
		}
		if len(out) == max {
			more = true
			return fs.SkipAll
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return out, more, nil
}

func depthBelow(base, p string) int {
	n := 1
	for d := path.Dir(p); d != base && d != "." && d != "/"; d = path.Dir(d) {
		n++
	}
	return n
}

func entryType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "other"
}

// StatWorkspaceFile returns what name is, by the rules of
// ReadWorkspaceFile (inside dir only, opened without blocking, no link
// out), without reading it: only a regular file is accepted. Errors are
// *WorkspaceFileError.
func StatWorkspaceFile(dir, name string) (fs.FileInfo, error) {
	f, st, err := openRegular(dir, name)
	if err != nil {
		return nil, &WorkspaceFileError{Path: name, Err: err}
	}
	f.Close()
	return st, nil
}

// WorkspaceRel returns name (relative to the workspace, or absolute under
// WorkspaceDir, or absolute under dir) as a local path relative to dir, or
// false when it lies outside lexically.
func WorkspaceRel(dir, name string) (string, bool) { return workspaceRel(dir, name) }
