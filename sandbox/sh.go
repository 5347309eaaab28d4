package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/membrane-mcp/membrane/calls"
)

const shName = "sh"

var shSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "cmd": {"type": "string", "minLength": 1, "description": "The shell command, run as /bin/sh -c CMD in the workspace directory."},
    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "description": "Wall-clock limit in seconds; the whole process tree is killed when it passes."},
    "stdin": {"type": "string", "description": "Text given to the command on standard input; empty input when left out."},
    "files": {"type": "array", "maxItems": 16, "items": {"type": "string", "minLength": 1}, "description": "Workspace files to return with the result (images inline, other files as resource links), besides those written under /workspace/out/."},
    "workspace": ` + calls.WorkspaceArgSchema + `
  },
  "required": ["cmd"],
  "additionalProperties": false
}`)

type shArgs struct {
	Cmd string `json:"cmd"`
	runArgs
}

// decodeShArgs decodes and checks sh's arguments strictly.
func decodeShArgs(raw json.RawMessage) (shArgs, error) {
	var a shArgs
	if err := calls.DecodeArgs(raw, &a); err != nil {
		return a, err
	}
	if strings.TrimSpace(a.Cmd) == "" {
		return a, errors.New("cmd is required and must not be blank")
	}
	if strings.IndexByte(a.Cmd, 0) >= 0 {
		return a, errors.New("cmd must not contain NUL bytes")
	}
	return a, nil
}

func (s *Sandbox) shCall() calls.Call {
	return calls.Call{
		Name:  shName,
		Title: "Run a shell command in a sandbox",
		Description: fmt.Sprintf("Run a command with /bin/sh -c in an isolated sandbox and return its exit code, stdout and stderr. "+
			"The working directory %s belongs to this session, or to the workspace handle given, and lasts across calls (sh, python_run and the file tools share it). "+calls.WorkspaceHint+" "+
			"Files it writes under %s/%s/ come back with the result (images inline, others as resource links), as do those named in files. "+
			"Nothing else is writable except /tmp. %s. Default timeout %s, at most %s.",
			WorkspaceDir, WorkspaceDir, OutDir, s.networkSentence(), s.cfg.Timeout, s.cfg.MaxTimeout),
		InputSchema:  shSchema,
		OutputSchema: runOutputSchema,
		Kind:         calls.KindTool,
		Group:        "sandbox",
		Timeout:      s.cfg.MaxTimeout + callGrace,
		Concurrency:  s.cfg.Concurrency,
		Destructive:  true,
		Handler:      calls.HandlerFunc(s.handleSh),
	}
}

func (s *Sandbox) handleSh(ctx context.Context, req *calls.Request) (*calls.Result, error) {
	a, err := decodeShArgs(req.Arguments)
	if err != nil {
		return argError(req, err), nil
	}
	return s.execute(ctx, req, a.runArgs, shJob(a.Cmd))
}

// shJob is the job of an sh call of cmd, with the form a warm sandbox
// runs it in (the command as a script file).
func shJob(cmd string) *job {
	script := &warmForm{argv: []string{"/bin/sh", shScriptPath}, files: map[string][]byte{shScriptPath: []byte(cmd)}}
	if len(cmd) > maxArgBytes {
		// Past what one exec argument may hold (128 KiB on Linux): the
		// same shell reads it from a file instead.
		return &job{argv: script.argv, files: script.files, warm: script}
	}
	return &job{argv: []string{"/bin/sh", "-c", cmd}, warm: script}
}

const (
	maxArgBytes  = 64 << 10
	shScriptPath = runDir + "/cmd.sh"
)

func (s *Sandbox) networkSentence() string {
	switch {
	case s.cfg.Mode == ModeRlimit:
		return "Isolation is weak (rlimit mode): limits and timeouts only"
	case s.cfg.Network:
		return "The network is available"
	}
	return "There is no network"
}
