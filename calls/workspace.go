package calls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WorkspaceDir is where a sandboxed program sees its session's workspace.
// A path that a model copies from a sandbox result starts with it.
const WorkspaceDir = "/workspace"

// Errors of ReadWorkspaceFile, matched with errors.Is. A *WorkspaceFileError
// carries one of them.
var (
	// ErrNoWorkspace: the session has no workspace yet.
	ErrNoWorkspace = errors.New("the session has no workspace")
	// ErrOutsideWorkspace: the path, or a symbolic link on it, leads out of
	// the workspace.
	ErrOutsideWorkspace = errors.New("the path leads outside the workspace")
	// ErrNotRegular: the path names a directory, a FIFO, a socket, a device
	// or anything else that is not a regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrFileTooLarge: the file is larger than the caller's limit.
	ErrFileTooLarge = errors.New("the file is too large")
)

// WorkspaceFileError is the error of ReadWorkspaceFile. Its text names the
// path as the caller gave it and never the host directory behind the
// workspace, so it can go back to a model as it is.
type WorkspaceFileError struct {
	// Path is the path as given.
	Path string
	// Err is one of the Err* values above, fs.ErrNotExist, or the error of
	// the read.
	Err error
	// Limit is the size limit, for ErrFileTooLarge.
	Limit int64
	// Op is what was done with the path, for the error's text: "read"
	// when empty.
	Op string
}

func (e *WorkspaceFileError) Error() string {
	p := fmt.Sprintf("%q", e.Path)
	switch {
	case errors.Is(e.Err, ErrNoWorkspace):
		return p + ": this session has no workspace yet (a sandbox tool makes it on first use)"
	case errors.Is(e.Err, ErrOutsideWorkspace):
		return p + " is outside the session workspace; give a path inside " + WorkspaceDir + ", such as " + WorkspaceDir + "/name or a name relative to it"
	case errors.Is(e.Err, ErrNotRegular):
		return p + " is not a regular file (a directory, FIFO, socket or device cannot be read)"
	case errors.Is(e.Err, ErrFileTooLarge):
		return fmt.Sprintf("%s is larger than the limit of %d bytes", p, e.Limit)
	case errors.Is(e.Err, fs.ErrNotExist):
		return p + " is not a file in the session workspace"
	}
	op := e.Op
	if op == "" {
		op = "read"
	}
	return p + " cannot be " + op + ": " + e.Err.Error()
}

func (e *WorkspaceFileError) Unwrap() error { return e.Err }

// readChunk is how much ReadWorkspaceFile reads between checks of ctx.
const readChunk = 1 << 20

// ReadWorkspaceFile reads the regular file name inside the workspace
// directory dir (a session's Workspace), for a host-side reader such as a
// vision call that takes an image path from a model. name is relative to
// the workspace, or absolute under WorkspaceDir (the path the sandbox
// shows), or absolute under dir itself.
//
// It is safe against what a sandboxed program can leave in its workspace:
// the path is resolved inside dir only (os.Root: no "..", no symbolic link
// out), the file is opened without blocking (a FIFO does not wait for a
// writer) and without following a final link out, its type is checked on
// the open descriptor (only a regular file is read), at most max bytes are
// read (max <= 0 means no limit), and ctx is checked between chunks.
//
// Every error is a *WorkspaceFileError whose text does not reveal dir.
func ReadWorkspaceFile(ctx context.Context, dir, name string, max int64) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, &WorkspaceFileError{Path: name, Err: err, Limit: max}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	f, st, err := openRegular(dir, name)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	if max > 0 && st.Size() > max {
		return fail(ErrFileTooLarge)
	}
	var b []byte
	if st.Size() > 0 {
		b = make([]byte, 0, st.Size())
	}
	r := io.Reader(f)
	if max > 0 {
		r = io.LimitReader(f, max+1) // a file that grows while read
	}
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, err := io.CopyN(writerTo{&b}, r, readChunk)
		if max > 0 && int64(len(b)) > max {
			return fail(ErrFileTooLarge)
		}
		if errors.Is(err, io.EOF) || err == nil && n < readChunk {
			return b, nil
		}
		if err != nil {
			return fail(errors.New("the read failed"))
		}
	}
}

// openWorkspace opens dir as a root and turns name into a path inside
// it, by the rules of ReadWorkspaceFile. The caller closes the root.
func openWorkspace(dir, name string) (*os.Root, string, error) {
	if dir == "" {
		return nil, "", ErrNoWorkspace
	}
	rel, ok := workspaceRel(dir, name)
	if !ok {
		return nil, "", ErrOutsideWorkspace
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, "", errors.New("the session workspace cannot be opened")
	}
	return root, rel, nil
}

// openRegular opens the regular file name inside dir without blocking
// and without a link out, and checks its type on the open descriptor.
// The caller closes the file.
func openRegular(dir, name string) (*os.File, fs.FileInfo, error) {
	root, rel, err := openWorkspace(dir, name)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(rel, os.O_RDONLY|openNoBlock, 0)
	if err != nil {
		return nil, nil, openError(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, errors.New("the file cannot be inspected")
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, ErrNotRegular
	}
	return f, st, nil
}

type writerTo struct{ b *[]byte }

func (w writerTo) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

// workspaceRel turns name into a path relative to dir, or reports that it
// lies outside. It is a lexical check; os.Root then refuses links out.
func workspaceRel(dir, name string) (string, bool) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", false
	}
	rel := name
	switch {
	case name == WorkspaceDir || strings.HasPrefix(name, WorkspaceDir+"/"):
		rel = strings.TrimLeft(strings.TrimPrefix(name, WorkspaceDir), "/")
	case filepath.IsAbs(name):
		r, err := filepath.Rel(dir, name)
		if err != nil {
			return "", false
		}
		rel = r
	}
	if rel == "" {
		rel = "."
	}
	if !filepath.IsLocal(rel) {
		return "", false
	}
	return filepath.Clean(rel), true
}

// openError maps an os.Root open error to a reason without host paths.
func openError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fs.ErrNotExist
	case isEscape(err):
		return ErrOutsideWorkspace
	case errors.Is(err, fs.ErrPermission):
		return fs.ErrPermission
	}
	return errors.New("the open failed")
}

// isEscape reports os.Root's refusal of a path that leaves the root (its
// error has no exported value; the text "path escapes from parent" is
// pinned by a test).
func isEscape(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes")
}
