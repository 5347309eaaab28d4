// Package sandbox runs untrusted code for models: the sh and python_run
// calls, each process isolated, limited, timed and cleaned up.
//
// # What a call gets
//
// sh runs {cmd, timeout_s?, stdin?} as /bin/sh -c CMD. python_run runs
// {code, timeout_s?, stdin?} with a real Python interpreter resolved once by
// New (symlinks followed, pyenv-style shims skipped); the code reaches the
// interpreter as a read-only file, never through a shell or an argument.
// A result holds the exit code, stdout and stderr (each capped at
// Config.OutputBytes with a visible marker, always valid UTF-8), the
// duration, whether the run timed out or was killed, and the isolation
// achieved, as text and as structured content. A non-zero exit, a timeout
// or a sandbox that cannot start is a tool error (calls.Result.IsError),
// never a Go error.
//
// # Isolation (ModeBwrap, the default)
//
// Every call runs in a fresh bubblewrap sandbox with its own user, pid,
// network, ipc, uts, cgroup and mount namespaces. Inside: uid 1000 with no
// capabilities and no_new_privs; only a loopback network (unless
// Config.Network); /usr and the other system directories read-only; a
// copy of a handful of world-readable /etc entries (loader cache, name
// resolution, TLS roots, Python's config; rebuilt within 5 s of a change on
// the host), with a synthetic passwd and group and nothing else of /etc, so
// no membrane config;
// no host home, no /root, no host processes; a size-capped private /tmp, a
// minimal /dev, a fresh /proc; a clean fixed environment; fds 0-2 only; a
// seccomp filter that denies io_uring, ptrace, mount, unshare, keyctl, bpf
// and similar, refuses every socket family but AF_UNIX, AF_INET, AF_INET6
// and AF_NETLINK with EAFNOSUPPORT (no vsock to the hypervisor, no raw
// packets) and fallocate with EOPNOTSUPP; host facts in /proc (cmdline,
// partitions, kcore, keys, timers, modules ...) masked, as runc masks them;
// nested user namespaces disabled (bwrap 0.8+). The sandbox
// dies with membrane (--die-with-parent plus Pdeathsig) and starts a new
// terminal session, so it cannot reach membrane's stdio or terminal.
//
// Limits are rlimits: CPU seconds, address space, file size, open files and
// processes. membrane sets them with prlimit(2) on the sandbox's init while
// it waits on a pipe (--block-fd), inside the sandbox's own user namespace
// and before the command exists, so they cost no extra process per call.
// Setting them there, and not on bwrap, matters: the kernel checks RLIMIT_NPROC against the count of the
// uid's processes in the task's own user namespace, and checks the parent
// namespaces against the limit the namespace was created under. Set inside,
// the cap holds one call's processes whatever else the user runs (measured:
// with 100 processes of the user running, a sandbox capped at 64 still
// starts 40); set on bwrap, the user's other processes count against it and
// bwrap cannot even create its namespace. The
// kernel never applies RLIMIT_NPROC to host uid 0, even inside a user
// namespace, so when membrane runs as root the sandbox runs as host uid
// 65534 (or as the owner of a non-root Config.Workspace). A wall-clock
// timer kills the whole process tree; so do a cancelled context, the end of
// the MCP session, and Close.
//
// # Memory
//
// RLIMIT_AS does not count memfd pages or System V shared memory, so where
// membrane may make cgroups (cgroup v2 with the memory controller
// delegated, or cgroup v1 as root) each call gets one of its own, inside
// membrane's own cgroup, capping its whole process tree at MemoryBytes (no
// swap) and Procs tasks (bwrap's init included), with RLIMIT_NPROC a few
// above as a backstop: the cgroup refuses the fork first and counts it
// (pids.events), which the result reports as the process limit hit. bwrap's init waits on a pipe (--block-fd) until
// membrane has moved it into the cgroup, so nothing of the call runs
// outside it; the cgroup is removed when the call ends, and an OOM kill is
// reported as such. Where no cgroup can be had, the seccomp filter refuses
// memfd_create, memfd_secret, shmget and msgget instead (unless
// Config.AllowMemfd). Isolation.Memory and Diagnose say which case applies.
//
// # Workspaces
//
// Each calls.Session gets its own directory, made on its first call and
// bound at /workspace; sh and python_run share it, and it is removed when
// the session closes (after its running processes are killed). A
// Config.Workspace is bound instead and shared by every session, never
// removed. A per-session workspace has a quota (Config.WorkspaceBytes and
// WorkspaceFiles), watched while a call runs: see quota.go for how and how
// closely. Symlinks and hard links cannot lead out of it: inside the sandbox
// they resolve in the sandbox's own mount namespace (where the system is
// read-only and the host's files are absent), and membrane's own cleanup
// never follows a link.
//
// # Warm sandboxes
//
// With Config.Warm, a call's sandbox may have been prepared in the
// background after the session's previous call of the same tool, or, for
// a session's first call, for the spare empty workspace the session
// adopts: bwrap started with everything in place, its init waiting on its
// block pipe before the command exists. Prewarm makes the first spare at
// start-up, so that the very first session's first call is warm too. Each
// serves exactly one call, and a spare workspace one session; see pool.go
// for
// what it changes (nothing a call can see of another) and when one is
// thrown away. The private /etc copy is made in the background too, so New
// returns at once; a call waits for the first copy only.
//
// # ModeRlimit
//
// Where bubblewrap is missing or cannot create namespaces, sh and python_run
// return a tool error that says to install bubblewrap or to run with
// --sandbox=rlimit. There is no silent fallback. In ModeRlimit processes run
// with the same rlimits, timeout and output caps, a clean environment and
// the workspace as their directory, but see the host's files, processes and
// network; every result says so. Processes are killed by process group, so a
// child that calls setsid may outlive its call: use rlimit mode only where
// something else, such as a container, is the boundary.
//
// Where util-linux prlimit is missing, rlimit mode sets the limits itself:
// membrane runs its own executable with a private first argument
// (limitsHelperArg), which calls setrlimit(2), drops to the sandbox uid when
// membrane is root, and execs the command.
//
// # macOS and other systems
//
// bubblewrap is Linux-only. Elsewhere the package builds (the Linux-only
// parts live in _linux.go files, with portable versions in _other.go), the
// default bwrap mode answers every call with a tool error that says to run
// with --sandbox=rlimit or to run membrane in a Linux VM or container, and
// Diagnose says the same. rlimit mode works there as on Linux, with the
// limits helper above, and with two gaps its results name: macOS does not
// enforce RLIMIT_AS, so the memory limit does not hold there; and there is
// no parent-death signal, so a call's processes die at its timeout, its
// cancellation, the end of its session and a normal shutdown, but not when
// membrane itself is killed with SIGKILL. python_run accepts Mach-O
// interpreters, prefers Homebrew's, and skips /usr/bin/python3 on a Mac
// without developer tools (there it only offers to install them).
//
// # Containers
//
// Docker's defaults forbid what bubblewrap needs: its seccomp profile denies
// unshare and clone with namespace flags, AppArmor's docker-default profile
// denies mount, and the container's masked /proc paths make the kernel
// refuse a fresh /proc ("Can't mount proc on /newroot/proc: Operation not
// permitted"; dmesg: "VFS: Mount too revealing"). A container that should
// run bubblewrap sandboxes needs
//
//	security_opt:
//	  - seccomp=unconfined
//	  - apparmor=unconfined
//	  - systempaths=unconfined
//
// (docker run --security-opt ...; Podman: --security-opt unmask=ALL instead
// of systempaths, and label=type:spc_t on SELinux hosts), and neither
// --privileged nor extra capabilities. The host kernel must allow
// unprivileged user namespaces (Ubuntu 23.10+:
// kernel.apparmor_restrict_unprivileged_userns=0 or a bwrap profile).
// Without those options, run membrane with --sandbox=rlimit and treat the
// container as the boundary: results and `membrane doctor` then report
// rlimit isolation. Diagnose detects a container and says the same.
package sandbox
