package sandbox

import "encoding/json"

// runOutputSchema is the output schema of sh and python_run: the
// structured content of every result they give once a process ran, or
// could not start.
var runOutputSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "exit_code": {"type": "integer", "description": "The process's exit code; 128+N when signal N killed it."},
    "stdout": {"type": "string", "description": "Standard output (capped), when stdout and stderr together are small; otherwise only the text content carries them."},
    "stderr": {"type": "string"},
    "output_in_text": {"type": "boolean", "description": "True when stdout and stderr are left out here because they are large: the text content has them."},
    "stdout_bytes": {"type": "integer", "minimum": 0, "description": "How many bytes the process wrote, shown or not."},
    "stderr_bytes": {"type": "integer", "minimum": 0},
    "stdout_truncated": {"type": "boolean"},
    "stderr_truncated": {"type": "boolean"},
    "duration_ms": {"type": "integer", "minimum": 0},
    "timeout_s": {"type": "number"},
    "timed_out": {"type": "boolean"},
    "killed": {"type": "boolean"},
    "cancelled": {"type": "boolean"},
    "oom_killed": {"type": "boolean"},
    "signal": {"type": "string", "description": "The signal that killed the process (SIGKILL), or empty."},
    "quota_exceeded": {"type": "string", "description": "Set when the workspace passed its quota, saying how."},
    "setup_error": {"type": "string", "description": "Set when the sandbox could not start: what bubblewrap said."},
    "workspace": {"type": "string", "description": "The workspace handle the call used, when it used one (always for a client without a session): pass it as workspace to later calls to keep the files."},
    "isolation": {
      "type": "object",
      "properties": {
        "mode": {"type": "string", "enum": ["bwrap", "rlimit"]},
        "namespaces": {"type": "array", "items": {"type": "string"}},
        "network": {"type": "string", "enum": ["none", "host"]},
        "seccomp": {"type": "boolean"},
        "memory": {"type": "string"},
        "memory_limit": {"type": "string"},
        "summary": {"type": "string"}
      },
      "required": ["mode", "namespaces", "network", "seccomp", "memory", "summary"]
    },
    "files": {
      "type": "array",
      "description": "The files that came back: those named in files, then those the call made or changed under /workspace/out/.",
      "items": {
        "type": "object",
        "properties": {
          "path": {"type": "string", "description": "Relative to /workspace."},
          "uri": {"type": "string", "description": "The file as a workspace:// resource (resources/read)."},
          "bytes": {"type": "integer", "minimum": -1},
          "mime_type": {"type": "string"},
          "as": {"type": "string", "enum": ["image", "link", "none"], "description": "image: inline image content; link: a resource link; none: not returned (error says why)."},
          "error": {"type": "string"}
        },
        "required": ["path", "bytes", "as"]
      }
    }
  },
  "required": ["isolation"],
  "anyOf": [
    {"required": ["exit_code", "stdout_bytes", "stderr_bytes", "duration_ms", "timed_out", "killed", "files"]},
    {"required": ["setup_error"]}
  ]
}`)
