package sandbox

import (
	"errors"
	"fmt"
	"time"
)

// Mode says how a sandboxed process is isolated.
type Mode string

const (
	// ModeBwrap runs every process in a bubblewrap sandbox: new user, pid,
	// network, ipc, uts and cgroup namespaces, a read-only system, a private
	// /tmp and /dev, and the rlimits of the Config. It is the default.
	ModeBwrap Mode = "bwrap"
	// ModeRlimit runs every process with the rlimits, the timeout and the
	// output caps of the Config, but without namespaces: the process sees the
	// host's files (read and write, as membrane's user or, when membrane is
	// root, as an unprivileged uid), its processes and its network. Use it
	// only where something else is the boundary, such as a container.
	ModeRlimit Mode = "rlimit"
)

// Defaults, as DefaultConfig sets them.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultMaxTimeout    = 5 * time.Minute
	DefaultCPUSeconds    = 300
	DefaultMemoryBytes   = 1 << 30
	DefaultFileSizeBytes = 64 << 20
	DefaultOutputBytes   = 1 << 20
	DefaultTmpBytes      = 64 << 20
	DefaultProcs         = 128
	DefaultOpenFiles     = 256
	DefaultConcurrency   = 8
	// MaxWarm bounds Config.Warm.
	MaxWarm = 64
	// DefaultWorkspaceBytes and DefaultWorkspaceFiles are the quota of a
	// per-session workspace.
	DefaultWorkspaceBytes = 1 << 30
	DefaultWorkspaceFiles = 100_000
	// MaxOutputBytes is the largest OutputBytes: it keeps the largest
	// result well under the 16 MiB frame that MCP clients such as go-sdk's
	// CommandTransport accept.
	MaxOutputBytes = 4 << 20
)

// Config says how the sandbox runs processes. Zero fields take the value
// DefaultConfig gives them, so Config{} and DefaultConfig() behave the same.
type Config struct {
	// Mode is ModeBwrap or ModeRlimit. Empty means ModeBwrap.
	Mode Mode
	// Network gives sandboxed processes the host's network. False (the
	// default) leaves them a loopback interface of their own and nothing
	// else. Only meaningful with ModeBwrap: ModeRlimit cannot take the
	// network away.
	Network bool
	// Workspace is a host directory bound read-write at /workspace in every
	// sandbox and shared by all sessions. Empty means each MCP session gets a
	// fresh private directory, removed when the session ends.
	Workspace string
	// Python is the interpreter python_run runs. Empty means the first real
	// python3 binary found on PATH (symlinks followed, shims such as pyenv's
	// skipped), then /usr/bin/python3 and /usr/local/bin/python3. It is
	// resolved once, in New.
	Python string
	// Hide lists host paths that must not be visible in a sandbox even when
	// they lie under a directory it sees read-only (such as a config or
	// token file under /usr/local/etc): each is masked by an empty file or
	// directory. Paths outside what a sandbox sees are invisible anyway.
	Hide []string

	// Timeout is the wall-clock limit of a call that does not ask for one.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxTimeout caps the timeout_s a call may ask for. Zero means
	// DefaultMaxTimeout.
	MaxTimeout time.Duration
	// CPUSeconds is RLIMIT_CPU of each process. Zero means
	// DefaultCPUSeconds.
	CPUSeconds int
	// MemoryBytes is RLIMIT_AS (address space) of each process. Zero means
	// DefaultMemoryBytes.
	MemoryBytes int64
	// FileSizeBytes is RLIMIT_FSIZE: the largest file a process may write.
	// Zero means DefaultFileSizeBytes.
	FileSizeBytes int64
	// OutputBytes caps what a call returns of stdout, and separately of
	// stderr, counted as the bytes they take in the JSON result (a control
	// byte counts as the six of its \u escape); the rest is cut with a
	// visible marker. Zero means DefaultOutputBytes; at most MaxOutputBytes.
	OutputBytes int64
	// TmpBytes is the size of the private /tmp (ModeBwrap). Zero means
	// DefaultTmpBytes.
	TmpBytes int64
	// Procs is how many processes (tasks) one call may run at once: the
	// pids.max of its cgroup where it has one (with RLIMIT_NPROC a few
	// above as a backstop), RLIMIT_NPROC otherwise. A fork past it fails
	// (EAGAIN); with a cgroup the result counts those failures. Zero means
	// DefaultProcs.
	Procs int
	// OpenFiles is RLIMIT_NOFILE of each process. Zero means
	// DefaultOpenFiles.
	OpenFiles int
	// Concurrency is how many calls of each tool may run at once; one more
	// gets a fast "busy" tool error. Zero means DefaultConcurrency.
	Concurrency int

	// Warm is how many pre-started sandboxes (ModeBwrap) may wait for the
	// next sh or python_run call of a workspace: each is made after a call
	// of that workspace, in the background, with its namespaces, mounts,
	// limits and cgroup in place, and serves exactly one call. A call that
	// finds none starts a fresh one as usual. Zero (the default) keeps
	// none; MaxWarm bounds it.
	Warm int

	// NoCgroup stops the sandbox from giving each call a cgroup of its own
	// (ModeBwrap). By default, where membrane may make cgroups (cgroup v2
	// with the memory controller delegated, or cgroup v1 as root), each
	// call's whole process tree is capped at MemoryBytes of memory, without
	// swap, and at Procs tasks; where it may not, or with NoCgroup, memory
	// is capped by RLIMIT_AS per process only.
	NoCgroup bool
	// AllowMemfd lets sandboxed code call memfd_create and use System V
	// shared memory and message queues even where no cgroup caps a call's
	// memory. Their pages do not count against RLIMIT_AS, so with it a
	// process can hold more memory than MemoryBytes. False (the default)
	// refuses them (EPERM) when there is no cgroup; with a cgroup they are
	// always allowed, since the cgroup counts them.
	AllowMemfd bool
	// WorkspaceBytes is the quota of each per-session workspace: the disk
	// space its files may take. A call that passes it is killed. Zero means
	// DefaultWorkspaceBytes. It does not apply to a shared Workspace.
	WorkspaceBytes int64
	// WorkspaceFiles is the most files and directories a per-session
	// workspace may hold. Zero means DefaultWorkspaceFiles.
	WorkspaceFiles int

	// ImageBytes is the largest image (PNG, JPEG, SVG, WebP, GIF) that
	// comes back inline with a result; a larger one comes back as a
	// resource link. Zero means DefaultImageBytes.
	ImageBytes int64
	// FileBytes is the largest file write_file writes and read_file
	// returns. Zero means DefaultFileBytes.
	FileBytes int64
}

// DefaultConfig returns the defaults: bubblewrap, no network, a workspace
// per session, 30 s timeouts (at most 5 min), 300 CPU seconds, 1 GiB of
// address space, 64 MiB files, 1 MiB of output per stream, a 64 MiB /tmp,
// 128 processes, 256 open files and 8 concurrent calls per tool.
func DefaultConfig() Config {
	return Config{
		Mode:          ModeBwrap,
		Timeout:       DefaultTimeout,
		MaxTimeout:    DefaultMaxTimeout,
		CPUSeconds:    DefaultCPUSeconds,
		MemoryBytes:   DefaultMemoryBytes,
		FileSizeBytes: DefaultFileSizeBytes,
		OutputBytes:   DefaultOutputBytes,
		TmpBytes:      DefaultTmpBytes,
		Procs:         DefaultProcs,
		OpenFiles:     DefaultOpenFiles,
		Concurrency:   DefaultConcurrency,

		WorkspaceBytes: DefaultWorkspaceBytes,
		WorkspaceFiles: DefaultWorkspaceFiles,
	}
}

// ErrConfig is wrapped by the errors New returns for a bad Config.
var ErrConfig = errors.New("sandbox: invalid config")

// normalize fills zero fields with defaults and rejects values that cannot
// work, naming the field.
func (c Config) normalize() (Config, error) {
	d := DefaultConfig()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.Mode != ModeBwrap && c.Mode != ModeRlimit {
		return c, fmt.Errorf("%w: mode %q: use %q or %q", ErrConfig, c.Mode, ModeBwrap, ModeRlimit)
	}
	var bad []error
	neg := func(name string, v int64) {
		if v < 0 {
			bad = append(bad, fmt.Errorf("%w: %s is %d; it must be positive (or 0 for the default)", ErrConfig, name, v))
		}
	}
	neg("Timeout", int64(c.Timeout))
	neg("MaxTimeout", int64(c.MaxTimeout))
	neg("CPUSeconds", int64(c.CPUSeconds))
	neg("MemoryBytes", c.MemoryBytes)
	neg("FileSizeBytes", c.FileSizeBytes)
	neg("OutputBytes", c.OutputBytes)
	neg("TmpBytes", c.TmpBytes)
	neg("Procs", int64(c.Procs))
	neg("OpenFiles", int64(c.OpenFiles))
	neg("Concurrency", int64(c.Concurrency))
	neg("Warm", int64(c.Warm))
	neg("WorkspaceBytes", c.WorkspaceBytes)
	neg("WorkspaceFiles", int64(c.WorkspaceFiles))
	neg("ImageBytes", c.ImageBytes)
	neg("FileBytes", c.FileBytes)
	if len(bad) > 0 {
		return c, errors.Join(bad...)
	}
	set := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = max(d.MaxTimeout, c.Timeout)
	}
	seti(&c.CPUSeconds, d.CPUSeconds)
	set(&c.MemoryBytes, d.MemoryBytes)
	set(&c.FileSizeBytes, d.FileSizeBytes)
	set(&c.OutputBytes, d.OutputBytes)
	set(&c.TmpBytes, d.TmpBytes)
	seti(&c.Procs, d.Procs)
	seti(&c.OpenFiles, d.OpenFiles)
	seti(&c.Concurrency, d.Concurrency)
	set(&c.WorkspaceBytes, d.WorkspaceBytes)
	seti(&c.WorkspaceFiles, d.WorkspaceFiles)
	if c.Warm > MaxWarm {
		return c, fmt.Errorf("%w: Warm %d is more than %d pre-started sandboxes", ErrConfig, c.Warm, MaxWarm)
	}
	if c.Timeout > c.MaxTimeout {
		return c, fmt.Errorf("%w: Timeout %s is longer than MaxTimeout %s", ErrConfig, c.Timeout, c.MaxTimeout)
	}
	if c.OpenFiles < 16 {
		return c, fmt.Errorf("%w: OpenFiles %d is too few for a shell or Python to start; use at least 16", ErrConfig, c.OpenFiles)
	}
	if c.Procs < 4 {
		return c, fmt.Errorf("%w: Procs %d is too few for a shell pipeline; use at least 4", ErrConfig, c.Procs)
	}
	if c.OutputBytes > MaxOutputBytes {
		return c, fmt.Errorf("%w: OutputBytes %d is more than %d (4 MiB): a larger result could pass the 16 MiB message limit of MCP clients", ErrConfig, c.OutputBytes, MaxOutputBytes)
	}
	if c.MemoryBytes < 64<<20 {
		return c, fmt.Errorf("%w: MemoryBytes %d is too little for Python to start; use at least 64 MiB", ErrConfig, c.MemoryBytes)
	}
	return c, nil
}
