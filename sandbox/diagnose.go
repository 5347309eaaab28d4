package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/membrane-mcp/membrane/diag"
)

// Diagnose checks what the sandbox needs under cfg and explains each
// finding for `membrane doctor`: the mode, bubblewrap and whether it can
// create a sandbox here (it runs one), prlimit, the Python interpreter, the
// uid sandboxes run as, the network setting, the workspace and whether
// membrane runs in a container.
func Diagnose(ctx context.Context, cfg Config) []diag.Check {
	var out []diag.Check
	add := func(name string, st diag.Status, detail, fix string) {
		out = append(out, diag.Check{Name: name, Status: st, Detail: detail, Fix: fix})
	}
	// about marks the last finding's fix as being about the setting with
	// this config-file key.
	about := func(key string) { out[len(out)-1].Setting = key }
	ncfg, err := cfg.normalize()
	if err != nil {
		add("sandbox config", diag.StatusFail, err.Error(), "correct the sandbox flag or setting named above")
		return out
	}
	container := inContainer()
	s, err := New(cfg, nil)
	if err != nil {
		add("sandbox", diag.StatusFail, err.Error(), "correct the setting named above")
		return out
	}
	defer s.Close()

	switch ncfg.Mode {
	case ModeRlimit:
		add("sandbox mode", diag.StatusWarn,
			"rlimit: sh and python_run run with limits (time, CPU, memory, processes, file size, output) but without namespaces: "+
				"the code sees the host's files, processes and network, and results say so",
			fixRlimitWeak)
		about("sandbox.mode")
	default:
		if errBwrapUnsupported != nil {
			add("sandbox mode", diag.StatusFail, "bwrap (the default): "+errBwrapUnsupported.Error()+", so sh and python_run will fail", fixBwrapMissing)
			about("sandbox.mode")
		} else {
			add("sandbox mode", diag.StatusOK, "bwrap: each call runs in its own bubblewrap sandbox", "")
		}
	}

	switch {
	case s.bwrapErr != nil && ncfg.Mode == ModeBwrap:
		add("bubblewrap", diag.StatusFail, s.bwrapErr.Error(), fixBwrapMissing)
		about("sandbox.mode")
	case s.bwrapErr != nil:
		add("bubblewrap", diag.StatusWarn, s.bwrapErr.Error()+" (not needed in rlimit mode)", fixBwrapForIsolation)
	default:
		ver, _ := runOutput(ctx, s.bwrap, "--version")
		detail := fmt.Sprintf("%s (%s)", s.bwrap, strings.TrimSpace(ver))
		if !s.bwrapFeat.disableUserns {
			add("bubblewrap", diag.StatusWarn, detail+": older than 0.8, so sandboxed code may create nested user namespaces (the seccomp filter still denies unshare and mount)",
				"install bubblewrap 0.8 or newer")
		} else {
			add("bubblewrap", diag.StatusOK, detail, "")
		}
		if !s.bwrapFeat.size {
			add("sandbox /tmp", diag.StatusWarn, "this bubblewrap cannot cap the size of /tmp (--size needs 0.7)", "install bubblewrap 0.7 or newer")
		}
	}
	switch {
	case ncfg.Mode == ModeBwrap && errBwrapUnsupported != nil && s.bwrapErr == errBwrapUnsupported:
	case ncfg.Mode == ModeBwrap:
		add("prlimit", diag.StatusOK, "not needed in bwrap mode: membrane sets each sandbox's rlimits itself (prlimit(2) on the sandbox's init, before the command starts)", "")
	case s.prlimitErr != nil:
		add("prlimit", diag.StatusFail, s.prlimitErr.Error(), fixPrlimit)
	case s.selfExe != "":
		add("prlimit", diag.StatusOK, "no util-linux prlimit here, so membrane sets the rlimits itself: "+
			"setrlimit(2) in each call's process, just before the command starts", "")
	default:
		add("prlimit", diag.StatusOK, s.prlimit+" sets the rlimits inside each sandbox", "")
	}

	if ncfg.Mode == ModeBwrap && s.bwrapErr == nil {
		if err := s.probe(ctx); err != nil {
			fix := fixNamespaces
			if container {
				fix = "membrane runs in a container that does not let it create namespaces. " + containerFix
			}
			add("sandbox namespaces", diag.StatusFail, "bubblewrap could not create a sandbox: "+err.Error(), fix)
			about("sandbox.mode")
		} else {
			add("sandbox namespaces", diag.StatusOK, "a test sandbox started and ran /bin/true ("+s.isolation().Summary+")", "")
		}
	}

	if s.python != "" {
		add("python", diag.StatusOK, s.python+" (resolved once at start; python_run passes code as a file)", "")
	} else {
		add("python", diag.StatusWarn, "python_run will fail: "+s.pythonErr.Error(), "install python3, or set the python setting to /path/to/python3")
		about("sandbox.python")
	}

	if os.Geteuid() == 0 {
		add("sandbox uid", diag.StatusOK, fmt.Sprintf("membrane runs as root, so sandboxes run as host uid %d: the kernel does not apply the process limit to uid 0", s.uid), "")
	} else {
		where := "inside their own user namespace"
		if ncfg.Mode == ModeRlimit {
			where = "with no user namespace (rlimit mode)"
		}
		add("sandbox uid", diag.StatusOK, fmt.Sprintf("sandboxes run as membrane's uid %d, %s", s.uid, where), "")
	}

	if ncfg.Mode == ModeBwrap || ncfg.Mode == ModeRlimit {
		mem := memorySummary(s.memCap, ncfg.MemoryBytes, ncfg.Procs)
		switch s.memCap {
		case MemoryCgroup1, MemoryCgroup2:
			add("sandbox memory", diag.StatusOK, "each call gets a cgroup of its own: "+mem, "")
		case MemoryRlimit:
			add("sandbox memory", diag.StatusOK, mem+"; no cgroup: "+s.cgErr.Error(),
				"")
		default:
			why := ""
			if s.cgErr != nil {
				why = "; no cgroup: " + s.cgErr.Error()
			}
			add("sandbox memory", diag.StatusWarn, mem+why,
				"run membrane as root (cgroup v1) or in a cgroup v2 it may delegate (systemd-run --scope -p Delegate=yes), or turn off the allow-memfd setting")
			about("sandbox.allow_memfd")
		}
	}
	if ncfg.Workspace == "" {
		add("sandbox workspace quota", diag.StatusOK, fmt.Sprintf("%s and %d files per session workspace, checked every %s while a call runs; a call that passes it is killed (it can overshoot by what it writes between two checks)",
			bytesText(ncfg.WorkspaceBytes), ncfg.WorkspaceFiles, quotaEvery), "")
	} else {
		add("sandbox workspace quota", diag.StatusOK, "none: the shared workspace "+s.cfg.Workspace+" is the operator's directory, bounded only by its file system", "")
	}

	if ncfg.Network {
		st := diag.StatusWarn
		add("sandbox network", st, "the sandbox network setting is on: sandboxed code can reach the network, including services on this host such as Ollama's unauthenticated API",
			"turn it off unless the tools need pip or curl")
		about("sandbox.network")
	} else if ncfg.Mode == ModeBwrap {
		add("sandbox network", diag.StatusOK, "off: each sandbox has only a loopback interface of its own", "")
	}

	if ncfg.Workspace != "" {
		add("sandbox workspace", diag.StatusOK, fmt.Sprintf("%s is bound at %s and shared by every session", s.cfg.Workspace, WorkspaceDir), "")
	} else {
		add("sandbox workspace", diag.StatusOK, "a fresh directory per MCP session, removed when the session ends", "")
	}

	add("sandbox limits", diag.StatusOK, fmt.Sprintf("timeout %s (max %s), CPU %d s, memory %s, processes %d, file size %s, open files %d, output %s per stream, /tmp %s, %d concurrent calls per tool",
		ncfg.Timeout, ncfg.MaxTimeout, ncfg.CPUSeconds, bytesText(ncfg.MemoryBytes), ncfg.Procs, bytesText(ncfg.FileSizeBytes),
		ncfg.OpenFiles, bytesText(ncfg.OutputBytes), bytesText(ncfg.TmpBytes), ncfg.Concurrency), "")

	if container {
		st, detail := diag.StatusOK, "membrane runs in a container"
		if ncfg.Mode == ModeRlimit {
			st, detail = diag.StatusWarn, "membrane runs in a container in rlimit mode: the container is the only boundary between sandboxed code and whatever the container can reach"
		}
		add("container", st, detail, containerFix)
		about("sandbox.mode")
	}
	return out
}

// containerFix says what a container needs for bubblewrap sandboxes.
const containerFix = "To use bubblewrap in Docker or Compose, relax the defaults that forbid creating namespaces and mounting /proc: " +
	"security_opt: [seccomp=unconfined, apparmor=unconfined, systempaths=unconfined] (docker run --security-opt ...; Podman: unmask=ALL, and label=type:spc_t under SELinux); " +
	"no extra capabilities and no --privileged are needed. Otherwise set the sandbox mode to rlimit and treat the container as the boundary " +
	"(read-only root filesystem, no secrets mounted, network as narrow as the tools allow)."

func inContainer() bool {
	for _, p := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	b, _ := os.ReadFile("/proc/1/cgroup")
	return strings.Contains(string(b), "docker") || strings.Contains(string(b), "kubepods") || strings.Contains(string(b), "containerd")
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func runOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
