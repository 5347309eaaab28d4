package sandbox

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls"
)

// The file tools: a client puts files into the session's workspace, reads
// them back and lists them, host-side, without starting a sandbox. Paths
// follow the sandbox's rules: relative to /workspace, or absolute under it;
// nothing outside it, and no symbolic link out (every step goes through
// os.Root).
const (
	writeFileName = "write_file"
	readFileName  = "read_file"
	listFilesName = "list_files"
)

// OutDir is the workspace directory whose new and changed files come back
// with the result of the sh or python_run call that wrote them.
const OutDir = "out"

// Bounds of the files that come back with a call, and of the file tools.
const (
	// DefaultImageBytes is the largest image returned inline.
	DefaultImageBytes = 2 << 20
	// DefaultFileBytes is the largest file write_file writes or read_file
	// returns.
	DefaultFileBytes = 4 << 20
	// maxReturnedFiles is how many files one result returns.
	maxReturnedFiles = 16
	// maxInlineBytes bounds the images of one result together.
	maxInlineBytes = 4 << 20
	// maxOutScan bounds the entries of out/ compared before and after a
	// call.
	maxOutScan = 2000
	// maxListEntries bounds one list_files page.
	maxListEntries = 1000
)

var writeFileSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "Where to write, relative to /workspace (or absolute under it). Missing directories are made."},
    "content": {"type": "string", "description": "What to write: text, or base64 when encoding is \"base64\"."},
    "encoding": {"type": "string", "enum": ["text", "base64"], "description": "How content is given. Default text."},
    "workspace": ` + calls.WorkspaceArgSchema + `
  },
  "required": ["path", "content"],
  "additionalProperties": false
}`)

var writeFileOutput = json.RawMessage(`{
  "type": "object",
  "properties": {
    "path": {"type": "string", "description": "The file written, relative to /workspace."},
    "uri": {"type": "string", "description": "The file as a workspace:// resource."},
    "bytes": {"type": "integer", "minimum": 0, "description": "Bytes written."},
    "workspace": {"type": "string", "description": "The workspace handle the call used, when it used one: pass it as workspace to later calls."}
  },
  "required": ["path", "uri", "bytes"]
}`)

var readFileSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "The file to read, relative to /workspace (or absolute under it)."},
    "encoding": {"type": "string", "enum": ["auto", "text", "base64"], "description": "auto (the default): an image comes back as an image, UTF-8 text as text, anything else as base64."},
    "workspace": ` + calls.WorkspaceArgSchema + `
  },
  "required": ["path"],
  "additionalProperties": false
}`)

var readFileOutput = json.RawMessage(`{
  "type": "object",
  "properties": {
    "path": {"type": "string"},
    "uri": {"type": "string"},
    "bytes": {"type": "integer", "minimum": 0},
    "mime_type": {"type": "string"},
    "encoding": {"type": "string", "enum": ["text", "base64", "image"], "description": "How the content came back."},
    "content": {"type": "string", "description": "The content, when it is small; otherwise only the text (or image) content carries it."},
    "content_in_text": {"type": "boolean", "description": "True when content is left out here because it is large."},
    "workspace": {"type": "string", "description": "The workspace handle the call used, when it used one."}
  },
  "required": ["path", "uri", "bytes", "mime_type", "encoding"]
}`)

var listFilesSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "path": {"type": "string", "description": "The directory to list, relative to /workspace. Default the whole workspace."},
    "depth": {"type": "integer", "minimum": 1, "description": "List only this many levels down (1: the directory's own entries). Default all."},
    "offset": {"type": "integer", "minimum": 0, "description": "Skip this many entries: pass next_offset of the previous page."},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "At most this many entries. Default 200."},
    "workspace": ` + calls.WorkspaceArgSchema + `
  },
  "additionalProperties": false
}`)

var listFilesOutput = json.RawMessage(`{
  "type": "object",
  "properties": {
    "path": {"type": "string"},
    "entries": {"type": "array", "items": {
      "type": "object",
      "properties": {
        "path": {"type": "string"},
        "type": {"type": "string", "enum": ["file", "dir", "symlink", "other"]},
        "size": {"type": "integer"},
        "mtime": {"type": "string", "format": "date-time"}
      },
      "required": ["path", "type", "size", "mtime"]
    }},
    "next_offset": {"type": "integer", "description": "Set when more entries follow: the offset of the next page."},
    "workspace": {"type": "string", "description": "The workspace handle the call used, when it used one."}
  },
  "required": ["path", "entries"]
}`)

func (s *Sandbox) fileCalls() []calls.Call {
	return []calls.Call{
		{
			Name:  writeFileName,
			Title: "Write a file into the workspace",
			Description: fmt.Sprintf("Write text or base64 content to a file in the session workspace %s, which sh and python_run then see. "+
				"Missing directories are made; an existing file is replaced. At most %s. "+calls.WorkspaceHint, WorkspaceDir, bytesText(s.fileBytes())),
			InputSchema:  writeFileSchema,
			OutputSchema: writeFileOutput,
			Kind:         calls.KindTool,
			Group:        "sandbox",
			Destructive:  true,
			Handler:      calls.HandlerFunc(s.handleWriteFile),
		},
		{
			Name:  readFileName,
			Title: "Read a file from the workspace",
			Description: fmt.Sprintf("Read a file of the session workspace %s: an image comes back as an image, text as text, anything else as base64. At most %s. "+calls.WorkspaceHint,
				WorkspaceDir, bytesText(s.fileBytes())),
			InputSchema:  readFileSchema,
			OutputSchema: readFileOutput,
			Kind:         calls.KindTool,
			Group:        "sandbox",
			ReadOnly:     true,
			Handler:      calls.HandlerFunc(s.handleReadFile),
		},
		{
			Name:         listFilesName,
			Title:        "List the files of the workspace",
			Description:  fmt.Sprintf("List the files and directories of the session workspace %s (or of a directory in it), with their sizes and times, in pages. "+calls.WorkspaceHint, WorkspaceDir),
			InputSchema:  listFilesSchema,
			OutputSchema: listFilesOutput,
			Kind:         calls.KindTool,
			Group:        "sandbox",
			ReadOnly:     true,
			Handler:      calls.HandlerFunc(s.handleListFiles),
		},
	}
}

func (s *Sandbox) fileBytes() int64 {
	if s.cfg.FileBytes > 0 {
		return s.cfg.FileBytes
	}
	return DefaultFileBytes
}

func (s *Sandbox) imageBytes() int64 {
	if s.cfg.ImageBytes > 0 {
		return s.cfg.ImageBytes
	}
	return DefaultImageBytes
}

// fileWorkspace is the workspace of a file tool's request (the session's,
// or the handle's; see calls.ResolveWorkspace), made on first use as sh
// makes it. The caller releases rw when done.
func (s *Sandbox) fileWorkspace(req *calls.Request, handle string) (ws *workspace, rw *calls.ResolvedWorkspace, _ *calls.Result, _ error) {
	rw, err := calls.ResolveWorkspace(req, handle)
	if err != nil {
		return nil, nil, calls.Errorf("%s: not done: %v", req.Call.Name, err), nil
	}
	ws, err = s.workspaceFor(rw.Session)
	if err != nil {
		rw.Release()
		if errors.Is(err, errClosed) || errors.Is(err, errSessionClosed) {
			return nil, nil, calls.Errorf("%s: not done: %v", req.Call.Name, err), nil
		}
		return nil, nil, nil, err
	}
	return ws, rw, nil, nil
}

// fileError is the tool error for a workspace path that cannot be used.
func fileError(req *calls.Request, err error) *calls.Result {
	return calls.Errorf("%s: %v", req.Call.Name, err)
}

func (s *Sandbox) handleWriteFile(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	var a struct {
		Path      string `json:"path"`
		Content   string `json:"content"`
		Encoding  string `json:"encoding"`
		Workspace string `json:"workspace"`
	}
	if err := calls.DecodeArgs(req.Arguments, &a); err != nil {
		return calls.Errorf("%s: %v. It takes {\"path\": string, \"content\": string, \"encoding\"?: \"text\"|\"base64\"}.", req.Call.Name, err), nil
	}
	data := []byte(a.Content)
	switch a.Encoding {
	case "", "text":
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Content))
		if err != nil {
			return calls.Errorf("%s: content is not valid base64 (%v); give standard base64, or encoding \"text\"", req.Call.Name, err), nil
		}
		data = b
	default:
		return calls.Errorf("%s: encoding must be \"text\" or \"base64\", not %q", req.Call.Name, a.Encoding), nil
	}
	if int64(len(data)) > s.fileBytes() {
		return calls.Errorf("%s: the content is %s, over the limit of %s; write it in parts with sh, or make it smaller", req.Call.Name, bytesText(int64(len(data))), bytesText(s.fileBytes())), nil
	}
	ws, rw, res, err := s.fileWorkspace(req, a.Workspace)
	if ws == nil {
		return res, err
	}
	defer rw.Release()
	rel, ok := calls.WorkspaceRel(ws.dir, a.Path)
	if !ok || rel == "." {
		return fileError(req, &calls.WorkspaceFileError{Path: a.Path, Err: calls.ErrOutsideWorkspace}), nil
	}
	if ws.owned {
		u := ws.lastUsage()
		if quota := s.quotaLimit(); u.bytes+int64(len(data)) > quota.bytes || u.files+1 > quota.files {
			return calls.Errorf("%s: the workspace would pass its quota of %s and %d files (it holds %s in %d); delete files in %s to make room",
				req.Call.Name, bytesText(quota.bytes), quota.files, bytesText(u.bytes), u.files, WorkspaceDir), nil
		}
	}
	if err := s.writeWorkspaceFile(ws.dir, rel, data); err != nil {
		return fileError(req, &calls.WorkspaceFileError{Path: a.Path, Err: err, Op: "written"}), nil
	}
	if ws.owned {
		ws.setUsage(measureUsage(ws.dir, s.quotaLimit()))
	}
	p := filepath.ToSlash(rel)
	uri := calls.WorkspaceURI(uriHandle(rw), p)
	r := calls.Text(fmt.Sprintf("wrote %s to %s/%s (%s)", bytesText(int64(len(data))), WorkspaceDir, p, uri))
	r.Structured = map[string]any{"path": p, "uri": uri, "bytes": len(data)}
	return withHandle(r, rw.Handle), nil
}

// writeWorkspaceFile writes data to rel inside dir, making its missing
// directories, all owned by the uid sandboxes run as. Only a regular file
// with one link is replaced: a FIFO, a device, a directory or a hard link
// that a sandboxed program left there is refused, and a link out of the
// workspace is not followed.
func (s *Sandbox) writeWorkspaceFile(dir, rel string, data []byte) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return errors.New("the session workspace cannot be opened")
	}
	defer root.Close()
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i := 1; i < len(parts); i++ {
		d := strings.Join(parts[:i], "/")
		err := root.Mkdir(d, 0o755)
		switch {
		case err == nil:
			if s.cred != nil {
				if err := root.Lchown(d, s.uid, s.gid); err != nil {
					return errors.New("a directory could not be given to the sandbox user")
				}
			}
		case errors.Is(err, fs.ErrExist):
			fi, err := root.Stat(d)
			if err != nil {
				return pathError(err)
			}
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
		default:
			return pathError(err)
		}
	}
	if fi, err := root.Lstat(rel); err == nil && !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
		return calls.ErrNotRegular // a FIFO is not opened at all
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0o644)
	if err != nil {
		return pathError(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return errors.New("the file cannot be inspected")
	}
	if !st.Mode().IsRegular() {
		return calls.ErrNotRegular
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Nlink > 1 {
		return errors.New("the file has other hard links; remove it first")
	}
	if err := f.Truncate(0); err != nil {
		return errors.New("the file could not be truncated")
	}
	if _, err := f.Write(data); err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return errors.New("no space left for it")
		}
		return errors.New("the write failed")
	}
	if s.cred != nil {
		if err := f.Chown(s.uid, s.gid); err != nil {
			return errors.New("the file could not be given to the sandbox user")
		}
	}
	return f.Close()
}

// pathError says what went wrong with a path without naming host paths.
func pathError(err error) error {
	var pe *os.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fs.ErrNotExist
	case errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes"):
		return calls.ErrOutsideWorkspace
	case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENOTDIR):
		return calls.ErrOutsideWorkspace
	case errors.Is(err, fs.ErrPermission):
		return fs.ErrPermission
	case errors.Is(err, syscall.EISDIR):
		return calls.ErrNotRegular
	}
	return errors.New("the path cannot be used")
}

func (s *Sandbox) handleReadFile(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	var a struct {
		Path      string `json:"path"`
		Encoding  string `json:"encoding"`
		Workspace string `json:"workspace"`
	}
	if err := calls.DecodeArgs(req.Arguments, &a); err != nil {
		return calls.Errorf("%s: %v. It takes {\"path\": string, \"encoding\"?: \"auto\"|\"text\"|\"base64\"}.", req.Call.Name, err), nil
	}
	if !slices.Contains([]string{"", "auto", "text", "base64"}, a.Encoding) {
		return calls.Errorf("%s: encoding must be \"auto\", \"text\" or \"base64\", not %q", req.Call.Name, a.Encoding), nil
	}
	ws, rw, res, err := s.fileWorkspace(req, a.Workspace)
	if ws == nil {
		return res, err
	}
	defer rw.Release()
	data, err := calls.ReadWorkspaceFile(ctx, ws.dir, a.Path, s.fileBytes())
	if err != nil {
		if errors.Is(err, calls.ErrFileTooLarge) {
			return calls.Errorf("%s: %v; read a part of it with sh (head -c, tail -c, dd), or return it as a file from sh or python_run (it comes back as a resource link)", req.Call.Name, err), nil
		}
		return fileError(req, err), nil
	}
	rel, _ := calls.WorkspaceRel(ws.dir, a.Path)
	p := filepath.ToSlash(rel)
	uri := calls.WorkspaceURI(uriHandle(rw), p)
	mt := calls.SniffMIME(p, data)
	st := map[string]any{"path": p, "uri": uri, "bytes": len(data), "mime_type": mt}
	var r *calls.Result
	switch {
	case (a.Encoding == "" || a.Encoding == "auto") && calls.IsImageMIME(mt) && int64(len(data)) <= s.imageBytes():
		st["encoding"] = "image"
		r = &calls.Result{Content: []calls.Content{
			{Type: calls.ContentText, Text: fmt.Sprintf("%s/%s: %s, %s (the image follows)", WorkspaceDir, p, mt, bytesText(int64(len(data))))},
			{Type: calls.ContentImage, Data: data, MIMEType: mt},
		}}
	case a.Encoding == "text" || (a.Encoding != "base64" && utf8.Valid(data)):
		text := calls.ValidUTF8(string(data))
		st["encoding"] = "text"
		if jsonLen(data) <= structuredOutputBytes {
			st["content"] = text
		} else {
			st["content_in_text"] = true
		}
		r = calls.Text(text)
	default:
		b64 := base64.StdEncoding.EncodeToString(data)
		st["encoding"] = "base64"
		if len(b64) <= structuredOutputBytes {
			st["content"] = b64
		} else {
			st["content_in_text"] = true
		}
		r = calls.Text(b64)
	}
	r.Structured = st
	return withHandle(r, rw.Handle), nil
}

func (s *Sandbox) handleListFiles(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	var a struct {
		Path      string `json:"path"`
		Depth     int    `json:"depth"`
		Offset    int    `json:"offset"`
		Limit     int    `json:"limit"`
		Workspace string `json:"workspace"`
	}
	if err := calls.DecodeArgs(req.Arguments, &a); err != nil {
		return calls.Errorf("%s: %v. It takes {\"path\"?: string, \"depth\"?: integer, \"offset\"?: integer, \"limit\"?: integer}.", req.Call.Name, err), nil
	}
	if a.Depth < 0 || a.Offset < 0 || a.Limit < 0 || a.Limit > maxListEntries {
		return calls.Errorf("%s: depth and offset must be at least 0, and limit from 1 to %d", req.Call.Name, maxListEntries), nil
	}
	if a.Limit == 0 {
		a.Limit = 200
	}
	ws, rw, res, err := s.fileWorkspace(req, a.Workspace)
	if ws == nil {
		return res, err
	}
	defer rw.Release()
	if a.Offset > s.cfg.WorkspaceFiles+maxListEntries {
		return calls.Errorf("%s: offset %d is past any workspace's end", req.Call.Name, a.Offset), nil
	}
	ents, more, err := calls.ListWorkspace(ctx, ws.dir, calls.ListOptions{Under: a.Path, Skip: a.Offset, Max: a.Limit, Depth: a.Depth})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return fileError(req, err), nil
	}
	under := "."
	if a.Path != "" {
		rel, _ := calls.WorkspaceRel(ws.dir, a.Path)
		under = filepath.ToSlash(rel)
	}
	if ents == nil {
		ents = []calls.WorkspaceEntry{}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d entries", path.Join(WorkspaceDir, under), len(ents))
	if a.Offset > 0 {
		fmt.Fprintf(&b, " from entry %d", a.Offset)
	}
	b.WriteString("\n")
	for _, e := range ents {
		switch e.Type {
		case "dir":
			fmt.Fprintf(&b, "%s/\n", e.Path)
		case "file":
			fmt.Fprintf(&b, "%s (%s)\n", e.Path, bytesText(e.Size))
		default:
			fmt.Fprintf(&b, "%s (%s)\n", e.Path, e.Type)
		}
	}
	st := map[string]any{"path": under, "entries": ents}
	if more {
		st["next_offset"] = a.Offset + len(ents)
		fmt.Fprintf(&b, "[more entries follow: call again with offset %d]\n", a.Offset+len(ents))
	}
	if len(ents) == 0 {
		b.WriteString("(empty)\n")
	}
	r := calls.Text(strings.TrimSuffix(b.String(), "\n"))
	r.Structured = st
	return withHandle(r, rw.Handle), nil
}

// outStamp is what a file of out/ looked like.
type outStamp struct {
	size  int64
	mtime int64
}

// snapshotOut records the files of out/ before a call, to tell afterwards
// which the call made or changed. A missing out/ is an empty snapshot.
func snapshotOut(ctx context.Context, dir string) map[string]outStamp {
	ents, _, err := calls.ListWorkspace(ctx, dir, calls.ListOptions{Under: OutDir, Max: maxOutScan,
		Filter: func(e calls.WorkspaceEntry) bool { return e.Type == "file" }})
	if err != nil {
		return nil
	}
	m := make(map[string]outStamp, len(ents))
	for _, e := range ents {
		m[e.Path] = outStamp{e.Size, e.ModTime.UnixNano()}
	}
	return m
}

// returnedFile is one file that comes back with a call's result.
type returnedFile struct {
	Path     string `json:"path"`
	URI      string `json:"uri,omitempty"`
	Bytes    int64  `json:"bytes"`
	MIMEType string `json:"mime_type,omitempty"`
	// As is "image" (inline image content), "link" (a resource link) or
	// "none" (not returned; Error says why).
	As    string `json:"as"`
	Error string `json:"error,omitempty"`
}

// collectFiles returns the files a call asked for by name, then those it
// made or changed in out/, as image contents and resource links, with a
// line for the text.
func (s *Sandbox) collectFiles(ctx context.Context, handle string, ws *workspace, named []string, before map[string]outStamp) ([]calls.Content, []returnedFile) {
	var want []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			want = append(want, p)
		}
	}
	for _, n := range named {
		add(n)
	}
	var changed []string
	for p, st := range snapshotOut(ctx, ws.dir) {
		if old, ok := before[p]; !ok || old != st {
			changed = append(changed, p)
		}
	}
	slices.Sort(changed)
	for _, p := range changed {
		if rel, ok := calls.WorkspaceRel(ws.dir, p); ok && !seen[filepath.ToSlash(rel)] {
			add(p)
		}
	}
	var (
		content []calls.Content
		files   []returnedFile
		inline  int64
	)
	for i, name := range want {
		if i == maxReturnedFiles {
			files = append(files, returnedFile{Path: fmt.Sprintf("(%d more)", len(want)-i), As: "none",
				Error: fmt.Sprintf("at most %d files come back with one call; list_files shows them all", maxReturnedFiles)})
			break
		}
		f := returnedFile{Path: name, As: "none", Bytes: -1}
		rel, ok := calls.WorkspaceRel(ws.dir, name)
		if ok {
			f.Path = filepath.ToSlash(rel)
		}
		fi, err := calls.StatWorkspaceFile(ws.dir, name)
		if err != nil {
			f.Error = err.Error()
			files = append(files, f)
			continue
		}
		f.Bytes, f.URI = fi.Size(), calls.WorkspaceURI(handle, f.Path)
		f.MIMEType = calls.MIMEByName(f.Path)
		if calls.IsImageMIME(f.MIMEType) && fi.Size() <= s.imageBytes() && inline+fi.Size() <= maxInlineBytes {
			data, err := calls.ReadWorkspaceFile(ctx, ws.dir, name, s.imageBytes())
			if err == nil {
				if mt := calls.SniffMIME(f.Path, data); calls.IsImageMIME(mt) {
					f.MIMEType, f.As, f.Bytes = mt, "image", int64(len(data))
					inline += int64(len(data))
					content = append(content, calls.Content{Type: calls.ContentImage, Data: data, MIMEType: mt})
					files = append(files, f)
					continue
				}
			}
		}
		f.As = "link"
		content = append(content, calls.Content{Type: calls.ContentLink, URI: f.URI, Name: f.Path, MIMEType: f.MIMEType, Size: f.Bytes})
		files = append(files, f)
	}
	return content, files
}

// filesText is the line of a result's text that lists its files.
func filesText(files []returnedFile) string {
	if len(files) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("files:\n")
	for _, f := range files {
		switch f.As {
		case "image":
			fmt.Fprintf(&b, "  %s/%s (%s, %s): returned as an image\n", WorkspaceDir, f.Path, f.MIMEType, bytesText(f.Bytes))
		case "link":
			fmt.Fprintf(&b, "  %s/%s (%s, %s): returned as the resource %s\n", WorkspaceDir, f.Path, f.MIMEType, bytesText(f.Bytes), f.URI)
		default:
			fmt.Fprintf(&b, "  %s: not returned: %s\n", f.Path, f.Error)
		}
	}
	return b.String()
}
