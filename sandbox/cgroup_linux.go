//go:build linux

package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// cgroups makes one cgroup per call, under a directory of its own made
// inside membrane's own cgroup, so that whatever caps membrane caps its
// sandboxes too. It is safe for concurrent use.
type cgroups struct {
	kind MemoryCap
	// base holds the per-call cgroups: one directory for v2; for v1, the
	// memory hierarchy's and (when there is one) the pids hierarchy's.
	mem, pids string
	// limitsPids is set when each call's cgroup carries pids.max, and so
	// counts the forks it refused (pids.events).
	limitsPids bool
	seq        atomic.Uint64
}

// cgroupPrefix names membrane's directories in a cgroup hierarchy; the pid
// of the membrane that made one follows it.
const cgroupPrefix = "membrane-"

// setupCgroups finds a cgroup hierarchy membrane may make cgroups in and
// makes its base directory there. It returns why not when none can be had:
// cgroup v2 without the memory controller delegated, or cgroup v1 without
// write access (not root).
func setupCgroups() (*cgroups, error) {
	own, mounts, err := readCgroupSelf()
	if err != nil {
		return nil, err
	}
	var why []string
	if m, ok := mounts["cgroup2"]; ok {
		c, err := setupCgroup2(filepath.Join(m, own[""]))
		if err == nil {
			return c, nil
		}
		why = append(why, "cgroup v2: "+err.Error())
	}
	if m, ok := mounts["memory"]; ok {
		c, err := setupCgroup1(filepath.Join(m, own["memory"]), mounts["pids"], own["pids"])
		if err == nil {
			return c, nil
		}
		why = append(why, "cgroup v1: "+err.Error())
	}
	if len(why) == 0 {
		return nil, errors.New("no cgroup hierarchy with a memory controller is mounted")
	}
	return nil, errors.New(strings.Join(why, "; "))
}

// readCgroupSelf returns membrane's own cgroup path by controller ("" for
// cgroup v2) and the mount point of each controller's hierarchy ("cgroup2"
// for v2).
func readCgroupSelf() (own, mounts map[string]string, err error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	own = map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, ctl := range strings.Split(f[1], ",") {
			own[ctl] = f[2]
		}
	}
	mf, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	defer mf.Close()
	mounts = map[string]string{}
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		switch qf[0] {
		case "cgroup2":
			if _, dup := mounts["cgroup2"]; !dup {
				mounts["cgroup2"] = pf[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(qf[2], ",") {
				if opt == "memory" || opt == "pids" {
					if _, dup := mounts[opt]; !dup {
						mounts[opt] = pf[4]
					}
				}
			}
		}
	}
	return own, mounts, nil
}

// setupCgroup2 makes the base under dir, membrane's own v2 cgroup. The
// controllers must reach the base: dir must list memory in
// cgroup.controllers, and enable it in cgroup.subtree_control, which the
// kernel refuses while dir holds processes (unless it is the root). When
// membrane is the only process there, as in a delegated systemd scope or a
// container, it moves itself into a leaf first.
func setupCgroup2(dir string) (*cgroups, error) {
	ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	have := strings.Fields(string(ctl))
	if !slices.Contains(have, "memory") {
		return nil, fmt.Errorf("the memory controller is not delegated to %s (it has: %q)", dir, strings.Join(have, " "))
	}
	want := []string{"memory"}
	if slices.Contains(have, "pids") {
		want = append(want, "pids")
	}
	sweepStaleCgroups(dir)
	if err := enableControllers(dir, want); err != nil {
		if !errors.Is(err, syscall.EBUSY) {
			return nil, err
		}
		// dir holds processes. If membrane is the only one, move it into
		// a leaf of its own and try again.
		leaf := filepath.Join(dir, fmt.Sprintf("%s%d-self", cgroupPrefix, os.Getpid()))
		if err := os.Mkdir(leaf, 0o755); err != nil && !os.IsExist(err) {
			return nil, err
		}
		if err := writeCgroupFile(leaf, "cgroup.procs", strconv.Itoa(os.Getpid())); err != nil {
			os.Remove(leaf)
			return nil, err
		}
		if err := enableControllers(dir, want); err != nil {
			// Others share the cgroup: go back.
			_ = writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(os.Getpid()))
			os.Remove(leaf)
			return nil, fmt.Errorf("%s holds other processes besides membrane, so it cannot give cgroups of their own to calls; "+
				"run membrane in a cgroup of its own (systemd-run --scope -p Delegate=yes, or a container with a writable cgroup)", dir)
		}
	}
	base, err := os.MkdirTemp(dir, fmt.Sprintf("%s%d-", cgroupPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	if err := enableControllers(base, want); err != nil {
		os.Remove(base)
		return nil, err
	}
	return &cgroups{kind: MemoryCgroup2, mem: base, limitsPids: slices.Contains(want, "pids")}, nil
}

func enableControllers(dir string, want []string) error {
	for _, c := range want {
		if err := writeCgroupFile(dir, "cgroup.subtree_control", "+"+c); err != nil {
			return err
		}
	}
	return nil
}

// setupCgroup1 makes a base in the v1 memory hierarchy at memDir (and in the
// pids hierarchy, when it is mounted and writable).
func setupCgroup1(memDir, pidsMount, pidsOwn string) (*cgroups, error) {
	sweepStaleCgroups(memDir)
	base, err := os.MkdirTemp(memDir, fmt.Sprintf("%s%d-", cgroupPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("cannot make a cgroup in %s: %w", memDir, err)
	}
	// Limits of a child must be checked against the parent's.
	if b, err := os.ReadFile(filepath.Join(base, "memory.use_hierarchy")); err == nil && strings.TrimSpace(string(b)) != "1" {
		if err := writeCgroupFile(base, "memory.use_hierarchy", "1"); err != nil {
			os.Remove(base)
			return nil, fmt.Errorf("memory.use_hierarchy is off in %s", memDir)
		}
	}
	c := &cgroups{kind: MemoryCgroup1, mem: base}
	if pidsMount != "" {
		pd := filepath.Join(pidsMount, pidsOwn)
		sweepStaleCgroups(pd)
		if pb, err := os.MkdirTemp(pd, fmt.Sprintf("%s%d-", cgroupPrefix, os.Getpid())); err == nil {
			c.pids, c.limitsPids = pb, true
		}
	}
	return c, nil
}

// sweepStaleCgroups removes the bases (and their empty call cgroups) that a
// membrane killed before it could clean up left in dir.
func sweepStaleCgroups(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // alive
		}
		sub, _ := os.ReadDir(filepath.Join(dir, e.Name()))
		for _, s := range sub {
			if s.IsDir() {
				os.Remove(filepath.Join(dir, e.Name(), s.Name()))
			}
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

func writeCgroupFile(dir, name, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s to %s: %w", value, filepath.Join(dir, name), err)
	}
	return nil
}

// close removes the base directories. Every call cgroup must be gone.
func (c *cgroups) close() error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, d := range []string{c.mem, c.pids} {
		if d != "" {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// callCgroup is the cgroup of one call.
type callCgroup struct {
	kind      MemoryCap
	mem, pids string
}

// newCall makes a cgroup for one call, capped at memBytes of memory (no
// swap) and procs tasks.
func (c *cgroups) newCall(memBytes int64, procs int) (*callCgroup, error) {
	name := "c-" + strconv.FormatUint(c.seq.Add(1), 10)
	cc := &callCgroup{kind: c.kind, mem: filepath.Join(c.mem, name)}
	if err := os.Mkdir(cc.mem, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: make cgroup: %w", err)
	}
	mem := strconv.FormatInt(memBytes, 10)
	var err error
	switch c.kind {
	case MemoryCgroup2:
		err = writeCgroupFile(cc.mem, "memory.max", mem)
		if err == nil {
			err = writeOptional(cc.mem, "memory.swap.max", "0")
		}
		if err == nil {
			// An OOM kill takes the whole call, not one process of it.
			err = writeOptional(cc.mem, "memory.oom.group", "1")
		}
		if err == nil {
			err = writeOptional(cc.mem, "pids.max", strconv.Itoa(procs))
		}
	default:
		err = writeCgroupFile(cc.mem, "memory.limit_in_bytes", mem)
		if err == nil {
			err = writeOptional(cc.mem, "memory.memsw.limit_in_bytes", mem)
		}
		if err == nil && c.pids != "" {
			cc.pids = filepath.Join(c.pids, name)
			if err = os.Mkdir(cc.pids, 0o755); err != nil {
				cc.pids = ""
			} else {
				err = writeCgroupFile(cc.pids, "pids.max", strconv.Itoa(procs))
			}
		}
	}
	if err != nil {
		cc.remove()
		return nil, fmt.Errorf("sandbox: set up cgroup: %w", err)
	}
	return cc, nil
}

// writeOptional writes a control file that an older kernel (or a kernel
// without swap accounting) may lack.
func writeOptional(dir, name, value string) error {
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		return nil
	}
	return writeCgroupFile(dir, name, value)
}

// join moves the process pid (and so everything it starts later) into the
// call's cgroup.
func (cc *callCgroup) join(pid int) error {
	p := strconv.Itoa(pid)
	if err := writeCgroupFile(cc.mem, "cgroup.procs", p); err != nil {
		return err
	}
	if cc.pids != "" {
		return writeCgroupFile(cc.pids, "cgroup.procs", p)
	}
	return nil
}

// oomKills returns how many processes the kernel killed for passing the
// memory cap.
func (cc *callCgroup) oomKills() int {
	file := "memory.oom_control"
	if cc.kind == MemoryCgroup2 {
		file = "memory.events"
	}
	return readCounter(filepath.Join(cc.mem, file), "oom_kill")
}

// pidsHits returns how many forks and clones of the call's processes the
// kernel refused because the cgroup already held pids.max tasks: the "max"
// count of pids.events (cgroup v1 and v2 alike). Zero without a pids
// controller.
func (cc *callCgroup) pidsHits() int {
	dir := cc.mem
	if cc.kind != MemoryCgroup2 {
		dir = cc.pids
	}
	if dir == "" {
		return 0
	}
	return readCounter(filepath.Join(dir, "pids.events"), "max")
}

// readCounter returns the count on the line "key N" of a cgroup's events
// file, or 0.
func readCounter(path, key string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// remove kills whatever is still in the cgroup and removes it. Processes of
// a sandbox whose init has died may take a moment to leave.
func (cc *callCgroup) remove() error {
	var errs []error
	for _, d := range []string{cc.mem, cc.pids} {
		if d == "" {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for wait := 100 * time.Microsecond; ; wait = min(2*wait, 50*time.Millisecond) {
			err := os.Remove(d)
			if err == nil || os.IsNotExist(err) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, err)
				break
			}
			killCgroupProcs(d)
			time.Sleep(wait)
		}
	}
	return errors.Join(errs...)
}

func killCgroupProcs(dir string) {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
