package sandbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

const pythonName = "python_run"

// callGrace is added to MaxTimeout for the router's own deadline, so that
// the sandbox's timeout, which says what happened, always fires first.
const callGrace = 10 * time.Second

var pythonSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "code": {"type": "string", "minLength": 1, "description": "A Python 3 program, run as a script file in the workspace directory. Print what you want to see."},
    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "description": "Wall-clock limit in seconds; the whole process tree is killed when it passes."},
    "stdin": {"type": "string", "description": "Text given to the program on standard input; empty input when left out."},
    "files": {"type": "array", "maxItems": 16, "items": {"type": "string", "minLength": 1}, "description": "Workspace files to return with the result (images inline, other files as resource links), besides those written under /workspace/out/."},
    "workspace": ` + calls.WorkspaceArgSchema + `
  },
  "required": ["code"],
  "additionalProperties": false
}`)

type pythonArgs struct {
	Code string `json:"code"`
	runArgs
}

// decodePythonArgs decodes and checks python_run's arguments strictly.
func decodePythonArgs(raw json.RawMessage) (pythonArgs, error) {
	var a pythonArgs
	if err := calls.DecodeArgs(raw, &a); err != nil {
		return a, err
	}
	if strings.TrimSpace(a.Code) == "" {
		return a, errors.New("code is required and must not be blank")
	}
	return a, nil
}

// scriptPath is where python_run's code appears in a bubblewrap sandbox.
const scriptPath = runDir + "/main.py"

func (s *Sandbox) pythonCall() calls.Call {
	return calls.Call{
		Name:  pythonName,
		Title: "Run Python code in a sandbox",
		Description: fmt.Sprintf("Run a Python 3 program in an isolated sandbox and return its exit code, stdout and stderr. "+
			"The working directory %s belongs to this session, or to the workspace handle given, and lasts across calls (sh, python_run and the file tools share it). "+calls.WorkspaceHint+" "+
			"Files it writes under %s/%s/ come back with the result (images inline, others as resource links), as do those named in files. "+
			"Only the standard library and the system's installed packages are available. %s. Default timeout %s, at most %s.",
			WorkspaceDir, WorkspaceDir, OutDir, s.networkSentence(), s.cfg.Timeout, s.cfg.MaxTimeout),
		InputSchema:  pythonSchema,
		OutputSchema: runOutputSchema,
		Kind:         calls.KindTool,
		Group:        "sandbox",
		Timeout:      s.cfg.MaxTimeout + callGrace,
		Concurrency:  s.cfg.Concurrency,
		Destructive:  true,
		Handler:      calls.HandlerFunc(s.handlePython),
	}
}

func (s *Sandbox) handlePython(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	a, err := decodePythonArgs(req.Arguments)
	if err != nil {
		return argError(req, err), nil
	}
	if s.python == "" {
		return calls.Errorf("python_run unavailable: %v. Fix: install Python 3 (Debian/Ubuntu: apt-get install python3) or point membrane's python setting at a real python3 (`membrane doctor` shows which).", s.pythonErr), nil
	}
	return s.execute(ctx, req, a.runArgs, s.pythonJob(a.Code))
}

// pythonJob is the job of a python_run call of code, with the form a warm
// sandbox runs it in.
func (s *Sandbox) pythonJob(code string) *job {
	// The code travels as a file, never through a shell or an argument.
	j := &job{
		argv:  []string{s.python, scriptPath},
		files: map[string][]byte{scriptPath: []byte(code)},
	}
	j.warm = &warmForm{argv: j.argv, files: j.files, script: scriptPath, cold: foreignCoding(code)}
	return j
}

// codingDecl is a PEP 263 source encoding declaration.
var codingDecl = regexp.MustCompile(`^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)`)

// foreignCoding reports whether code may declare, in its first two lines,
// a source encoding other than UTF-8. CPython reads such a script through
// a decoder it sets up by seeking the script file, which it cannot do on a
// pre-started interpreter's FIFO (see prestart), so such code runs in a
// fresh sandbox. Like CPython, only the first 12 characters of the name,
// lowercased with '_' as '-', are compared with "utf-8" and "utf-8-".
func foreignCoding(code string) bool {
	lines := strings.SplitN(code, "\n", 3)
	for _, l := range lines[:min(2, len(lines))] {
		m := codingDecl.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		name := m[1][:min(12, len(m[1]))]
		name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if name != "utf-8" && !strings.HasPrefix(name, "utf-8-") {
			return true
		}
	}
	return false
}

// findPython returns the first real python3 binary that usable accepts (nil
// accepts any): on PATH (skipping shims such as pyenv's, which are scripts
// that cost tens of milliseconds a start and live in the user's home), then
// in the usual system places. A candidate usable refuses (an interpreter in
// root's home, out of reach of the uid sandboxes run as) is skipped with
// its reason, so that one such entry first on PATH does not hide
// /usr/bin/python3.
func findPython(usable func(string) error) (string, error) {
	var cands []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir != "" {
			cands = append(cands, filepath.Join(dir, "python3"))
		}
	}
	cands = append(cands, pythonFallbacks...)
	var skipped []string
	for _, c := range cands {
		if pythonStub(c) {
			continue
		}
		real, err := resolvePython(c)
		if err == nil && usable != nil {
			err = usable(real)
		}
		if err == nil {
			return real, nil
		}
		if !errors.Is(err, os.ErrNotExist) && !slices.Contains(skipped, err.Error()) {
			skipped = append(skipped, err.Error())
		}
	}
	if len(skipped) > 0 {
		return "", fmt.Errorf("no usable python3 binary found (skipped: %s)", strings.Join(skipped, "; "))
	}
	return "", errors.New("no python3 found on PATH or in /usr/bin, /usr/local/bin")
}

// resolvePython follows path (a name looked up on PATH, or a path) through
// its symlinks to a binary and checks that it is a real executable (ELF;
// Mach-O on macOS), not a shim script.
func resolvePython(path string) (string, error) {
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", err
		}
		path = p
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", real)
	}
	f, err := os.Open(real)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := f.Read(head); err != nil || !executableMagic(head) {
		return "", fmt.Errorf("%s is a script (a shim such as pyenv's?), not an interpreter binary; give its real path, e.g. from `pyenv which python3`", real)
	}
	return real, nil
}

// machOMagic reports whether head starts a Mach-O binary: 32- or 64-bit,
// either byte order, or universal.
func machOMagic(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	switch binary.BigEndian.Uint32(head) {
	case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe:
		return true
	}
	return false
}
