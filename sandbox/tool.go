package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// runArgs are the arguments sh and python_run share.
type runArgs struct {
	TimeoutS  *float64 `json:"timeout_s,omitempty"`
	Stdin     *string  `json:"stdin,omitempty"`
	Workspace string   `json:"workspace,omitempty"`
	// Files names workspace files to return with the result, besides
	// those the call made or changed in out/.
	Files []string `json:"files,omitempty"`
}

// timeout returns the call's wall-clock limit and, when the request asked for
// more than MaxTimeout, a note saying it was clamped.
func (s *Sandbox) timeout(a runArgs) (time.Duration, string, error) {
	if a.TimeoutS == nil {
		return s.cfg.Timeout, "", nil
	}
	t := *a.TimeoutS
	if math.IsNaN(t) || t <= 0 {
		return 0, "", fmt.Errorf("timeout_s must be a positive number of seconds (got %v); leave it out for the default of %s", t, s.cfg.Timeout)
	}
	if t >= s.cfg.MaxTimeout.Seconds() {
		if t > s.cfg.MaxTimeout.Seconds() {
			return s.cfg.MaxTimeout, fmt.Sprintf("timeout_s %v was clamped to the maximum, %s", t, s.cfg.MaxTimeout), nil
		}
		return s.cfg.MaxTimeout, "", nil
	}
	return max(time.Duration(t*float64(time.Second)), time.Millisecond), "", nil
}

// execute is the common path of sh and python_run once the arguments are
// decoded: find the session's workspace, run, and describe the outcome.
func (s *Sandbox) execute(ctx context.Context, req *calls.Request, a runArgs, j *job) (*calls.Result, error) {
	if r := s.unavailable(); r != nil {
		return r, nil
	}
	timeout, note, err := s.timeout(a)
	if err != nil {
		return argError(req, err), nil
	}
	rw, err := calls.ResolveWorkspace(req, a.Workspace)
	if err != nil {
		return calls.Errorf("%s: not run: %v", req.Call.Name, err), nil
	}
	defer rw.Release()
	ws, err := s.workspaceFor(rw.Session)
	if err != nil {
		if errors.Is(err, errClosed) || errors.Is(err, errSessionClosed) {
			return calls.Errorf("%s: not run: %v", req.Call.Name, err), nil
		}
		return nil, err
	}
	if len(a.Files) > maxReturnedFiles {
		return argError(req, fmt.Errorf("files names %d files; at most %d come back with one call", len(a.Files), maxReturnedFiles)), nil
	}
	j.timeout, j.stdin, j.ws, j.sess = timeout, a.Stdin, ws, rw.Session
	before := snapshotOut(ctx, ws.dir)
	stop := s.reportProgress(ctx, req, timeout)
	o, err := s.run(ctx, j)
	stop()
	if errors.Is(err, errClosed) {
		return calls.Errorf("%s: not run: %v", req.Call.Name, err), nil
	}
	if se := (*startError)(nil); errors.As(err, &se) {
		return calls.Errorf("sandbox could not start: %v.\n%s", se, setupFix(se.Error())), nil
	}
	if err != nil {
		return nil, err
	}
	s.log.Debug("sandbox run", "call", req.Call.Name, "session", req.Session.ID(), "exit_code", o.exitCode,
		"dur", o.dur, "timed_out", o.timedOut, "cancelled", o.cancelled)
	r := s.result(o, timeout, note)
	if o.setupErr == "" && !o.cancelled {
		s.addFiles(ctx, uriHandle(rw), r, ws, a.Files, before)
	}
	return withHandle(r, rw.Handle), nil
}

// uriHandle is the name of a resolved workspace in workspace:// URIs: its
// handle, or for a session's own workspace the session's random name.
func uriHandle(rw *calls.ResolvedWorkspace) string {
	if rw.Handle != "" {
		return rw.Handle
	}
	return rw.Session.WorkspaceHandle()
}

// addFiles puts the files a call returns into its result: images and
// resource links after the text, a list of them in the text, and the same
// list in the structured content.
func (s *Sandbox) addFiles(ctx context.Context, handle string, r *calls.Result, ws *workspace, named []string, before map[string]outStamp) {
	content, files := s.collectFiles(ctx, handle, ws, named, before)
	if st, ok := r.Structured.(map[string]any); ok {
		if files == nil {
			files = []returnedFile{}
		}
		st["files"] = files
	}
	if len(files) == 0 {
		return
	}
	if len(r.Content) > 0 && r.Content[0].Type == calls.ContentText {
		r.Content[0].Text += "\n" + strings.TrimSuffix(filesText(files), "\n")
	}
	r.Content = append(r.Content, content...)
}

// withHandle names the workspace handle in a result, in the structured
// content and in the text, so that a model can carry it to the next call.
func withHandle(r *calls.Result, handle string) *calls.Result {
	if handle == "" {
		return r
	}
	if st, ok := r.Structured.(map[string]any); ok {
		st[calls.WorkspaceArg] = handle
	}
	line := fmt.Sprintf("workspace: %s (pass \"workspace\": %q to later calls to keep these files)", handle, handle)
	for i := range r.Content {
		if r.Content[i].Type == calls.ContentText {
			r.Content[i].Text += "\n" + line
			return r
		}
	}
	r.Content = append(r.Content, calls.Content{Type: calls.ContentText, Text: line})
	return r
}

// argError is the tool error for bad arguments: what was wrong and what the
// call expects.
func argError(req *calls.Request, err error) *calls.Result {
	usage := "{\"cmd\": string, \"timeout_s\"?: number, \"stdin\"?: string, \"workspace\"?: string, \"files\"?: [string]}"
	if req.Call.Name == pythonName {
		usage = "{\"code\": string, \"timeout_s\"?: number, \"stdin\"?: string, \"workspace\"?: string, \"files\"?: [string]}"
	}
	return calls.Errorf("%s: %v. It takes %s.", req.Call.Name, err, usage)
}

// Isolation describes how a call was isolated. It is part of every result.
type Isolation struct {
	// Mode is "bwrap" or "rlimit".
	Mode Mode `json:"mode"`
	// Namespaces lists the Linux namespaces the process had of its own.
	Namespaces []string `json:"namespaces"`
	// Network is "none" (loopback only) or "host".
	Network string `json:"network"`
	// Seccomp says whether the syscall filter was loaded.
	Seccomp bool `json:"seccomp"`
	// Memory says what caps the call's memory: "cgroup2" or "cgroup1" (a
	// cgroup over the whole process tree), "rlimit" (RLIMIT_AS per process,
	// with memfd and System V shared memory refused) or "rlimit-memfd"
	// (RLIMIT_AS only, which memfds get past).
	Memory MemoryCap `json:"memory"`
	// MemoryLimit says the same in words, with the numbers.
	MemoryLimit string `json:"memory_limit"`
	// Summary says all of it in a sentence.
	Summary string `json:"summary"`
}

// isolation describes what the Sandbox's configuration achieves.
func (s *Sandbox) isolation() Isolation {
	if s.cfg.Mode == ModeRlimit {
		mem := memorySummary(s.memCap, s.cfg.MemoryBytes, s.cfg.Procs)
		return Isolation{
			Mode:        ModeRlimit,
			Namespaces:  []string{},
			Network:     "host",
			Memory:      s.memCap,
			MemoryLimit: mem,
			Summary: "rlimit only (weak): no namespaces, so the code can read the host's files, see its processes and use its network; " +
				"the time, CPU, memory, process, file-size and output limits apply" + rlimitCaveat + "; memory: " + mem,
		}
	}
	iso := Isolation{
		Mode:        ModeBwrap,
		Namespaces:  []string{"user", "pid", "ipc", "uts", "cgroup", "mount"},
		Network:     "none",
		Seccomp:     len(s.seccomp) > 0,
		Memory:      s.memCap,
		MemoryLimit: memorySummary(s.memCap, s.cfg.MemoryBytes, s.cfg.Procs),
	}
	if s.cfg.Network {
		iso.Network = "host"
	} else {
		iso.Namespaces = append(iso.Namespaces, "net")
	}
	var b strings.Builder
	b.WriteString("bubblewrap: own user, pid, ipc, uts, cgroup and mount namespaces")
	if s.cfg.Network {
		b.WriteString("; host network (sandbox network is on)")
	} else {
		b.WriteString("; no network (loopback only)")
	}
	b.WriteString("; read-only system, private /tmp and /dev, writable " + WorkspaceDir)
	fmt.Fprintf(&b, "; unprivileged uid %d, no new privileges", SandboxUID)
	if iso.Seccomp {
		b.WriteString(", seccomp filter (no socket families but unix, inet, inet6 and netlink)")
	}
	b.WriteString("; memory: " + iso.MemoryLimit)
	iso.Summary = b.String()
	return iso
}

// structuredOutputBytes is how much of stdout and stderr together the
// structured content repeats. The text content always carries the output
// (it is what a model reads); the structured content carries it too only
// when it is this small, so that a large output never travels twice.
const structuredOutputBytes = 16 << 10

// result turns an outcome into the call's result: a text the model reads,
// with the whole (capped) output, and structured content with the same
// facts as fields.
//
// Its encoded size is bounded: stdout and stderr each take at most
// OutputBytes in JSON (escapes counted), the text carries them once, the
// structured content only when they are under structuredOutputBytes
// together, and the rest is a few KiB of status, markers and the
// isolation summary: 2*OutputBytes + 64 KiB in all (see maxResultBytes).
func (s *Sandbox) result(o *outcome, timeout time.Duration, note string) *calls.Result {
	iso := s.isolation()
	if o.setupErr != "" {
		r := calls.Errorf("sandbox could not start: %s\n%s", o.setupErr, setupFix(o.setupErr))
		r.Structured = map[string]any{"setup_error": o.setupErr, "isolation": iso}
		return r
	}
	stdout, stderr := o.stdout.text("stdout"), o.stderr.text("stderr")
	var status string
	switch {
	case o.timedOut:
		status = fmt.Sprintf("timed out after %s; the whole process tree was killed", timeout)
	case o.quota != "":
		status = "killed: " + o.quota + "; the whole process tree was killed. Delete files in " + WorkspaceDir + " to make room"
	case o.cancelled:
		status = "cancelled; the whole process tree was killed"
	case o.oomKilled:
		status = fmt.Sprintf("killed by the memory cap: the call's processes together used more than %s (%s), so the kernel killed them (exit code %d)",
			bytesText(s.cfg.MemoryBytes), s.memCap, o.exitCode)
	case o.signal != 0:
		status = fmt.Sprintf("killed by signal %d (%s)", o.signal, signalName(o.signal))
	case o.exitCode > 128 && o.exitCode < 160:
		status = fmt.Sprintf("exit code %d (killed by %s)", o.exitCode, signalName(syscallSignal(o.exitCode-128)))
	default:
		status = fmt.Sprintf("exit code %d", o.exitCode)
	}
	var b strings.Builder
	b.WriteString(status)
	if o.exitCode == 137 && !o.timedOut && !o.cancelled && !o.oomKilled && o.quota == "" {
		b.WriteString(" (perhaps a memory, process or CPU limit)")
	}
	b.WriteString("\n")
	if note != "" {
		b.WriteString("note: " + note + "\n")
	}
	if o.procsHits > 0 {
		fmt.Fprintf(&b, "note: the process limit (%d at once) refused %d forks; the processes that asked got an error (EAGAIN) and nothing was killed for it\n",
			s.cfg.Procs, o.procsHits)
	}
	if o.quotaAfter != "" {
		b.WriteString("note: " + o.quotaAfter + "; the next call that adds to it is killed. Delete files in " + WorkspaceDir + " to make room\n")
	}
	if stdout != "" {
		b.WriteString("stdout:\n" + stdout)
		if !strings.HasSuffix(stdout, "\n") {
			b.WriteString("\n")
		}
	}
	if stderr != "" {
		b.WriteString("stderr:\n" + stderr)
		if !strings.HasSuffix(stderr, "\n") {
			b.WriteString("\n")
		}
	}
	if stdout == "" && stderr == "" {
		b.WriteString("(no output)\n")
	}
	fmt.Fprintf(&b, "duration: %s; isolation: %s", o.dur.Round(time.Millisecond), iso.Summary)
	r := calls.Text(b.String())
	r.IsError = o.exitCode != 0 || o.timedOut || o.cancelled || o.oomKilled || o.quota != ""
	sig := ""
	if o.signal != 0 {
		sig = signalName(o.signal)
	}
	st := map[string]any{
		"exit_code":          o.exitCode,
		"stdout_bytes":       o.stdout.total,
		"stderr_bytes":       o.stderr.total,
		"stdout_truncated":   o.stdout.truncated(),
		"stderr_truncated":   o.stderr.truncated(),
		"duration_ms":        o.dur.Milliseconds(),
		"timeout_s":          timeout.Seconds(),
		"timed_out":          o.timedOut,
		"killed":             o.timedOut || o.cancelled || o.signal != 0 || o.oomKilled || o.quota != "",
		"cancelled":          o.cancelled,
		"oom_killed":         o.oomKilled,
		"process_limit_hits": o.procsHits,
		"signal":             sig,
		"isolation":          iso,
	}
	if o.quota != "" {
		st["quota_exceeded"] = o.quota
	} else if o.quotaAfter != "" {
		st["quota_exceeded"] = o.quotaAfter
	}
	if jsonLen([]byte(stdout))+jsonLen([]byte(stderr)) <= structuredOutputBytes {
		st["stdout"], st["stderr"] = stdout, stderr
	} else {
		// Too large to send twice: the text content has it.
		st["output_in_text"] = true
	}
	r.Structured = st
	r.Info = &calls.Info{Run: &calls.RunInfo{
		ExitCode: o.exitCode, Signal: sig, Isolation: string(iso.Mode),
		StdoutBytes: o.stdout.total, StderrBytes: o.stderr.total, Start: o.started,
		Began: o.began, Wall: o.started + o.dur, Limits: o.limits(),
	}}
	switch {
	case o.timedOut:
		r.Outcome, r.Info.Run.Killed = calls.OutcomeTimeout, "timeout"
	case o.cancelled:
		r.Outcome, r.Info.Run.Killed = calls.OutcomeCancelled, "cancel"
	case o.oomKilled:
		r.Info.Run.Killed = "memory"
	case o.quota != "":
		r.Info.Run.Killed = "quota"
	}
	return r
}

// limits names the limits the call ran into without being killed for them
// (calls.RunInfo.Limits).
func (o *outcome) limits() []string {
	var l []string
	if o.stdout.truncated() || o.stderr.truncated() {
		l = append(l, calls.LimitOutput)
	}
	if o.procsHits > 0 {
		l = append(l, calls.LimitProcesses)
	}
	return l
}

// maxResultBytes bounds the JSON encoding of any sh or python_run result
// (its content and structured content, not the JSON-RPC envelope around
// them) for an output cap of outputBytes: the two streams once each, plus
// 64 KiB for the status, markers, the structured fields and the small
// outputs repeated there.
func maxResultBytes(outputBytes int64) int64 { return 2*outputBytes + 64<<10 }

// setupFix says what to do about bwrap's own error message.
func setupFix(msg string) string {
	m := strings.ToLower(msg)
	for _, k := range []string{"namespace", "uid map", "setting up uid", "operation not permitted", "permission denied", "mount proc", "proc on"} {
		if strings.Contains(m, k) {
			return fixNamespaces
		}
	}
	return "Fix: see bubblewrap's message above; `membrane doctor` starts the same sandbox and explains what it needs. " +
		"To accept weaker isolation meanwhile, run membrane with the rlimit sandbox."
}

// progressEvery is how often a running call reports progress to a client
// that asked for it (some clients reset their request timeout on each).
var progressEvery = 5 * time.Second

// reportProgress reports the time a call has been running, against its
// timeout, until the returned function is called.
func (s *Sandbox) reportProgress(ctx context.Context, req *calls.Request, timeout time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				el := time.Since(start)
				req.Progress.Report(ctx, el.Seconds(), timeout.Seconds(),
					fmt.Sprintf("%s running for %s of at most %s", req.Call.Name, el.Round(100*time.Millisecond), timeout))
			}
		}
	}()
	return func() { close(done); <-finished }
}
