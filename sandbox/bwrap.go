package sandbox

// bwrapFeatures says which newer options the installed bwrap knows.
type bwrapFeatures struct {
	disableUserns bool // 0.8: no nested user namespaces
	size          bool // 0.7: a size cap on --tmpfs
}

// etcFiles are the entries of the host's /etc a sandbox sees (a copy, see
// etcSnapshot), when they exist: what the dynamic loader, name resolution,
// TLS and Python need. passwd and group are synthetic. Everything else in
// /etc, membrane's own config included, is absent.
var etcFiles = []string{
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "host.conf", "hosts",
	"resolv.conf", "gai.conf", "services", "protocols", "localtime", "timezone",
	"ssl", "ca-certificates", "ca-certificates.conf", "pki", "crypto-policies",
	"alternatives", "mime.types", "magic", "os-release", "debian_version",
	"locale.alias", "locale.conf", "profile", "inputrc", "terminfo",
	"python3", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14",
}

// runDir is where files handed to a sandbox (python_run's code) appear.
const runDir = "/run/membrane"

// bwrapFallbacks are tried when bwrap is not on PATH (a service started
// with a bare PATH).
var bwrapFallbacks = []string{"/usr/bin/bwrap"}

// maskedProc are the /proc entries a sandbox sees empty: host facts a
// program has no need of (the kernel's command line, its disks, modules,
// interrupts, timers and memory map, the keyrings), after runc's
// maskedPaths and a little more. Files become /dev/null, directories an
// empty read-only directory. bwrap already makes /proc/sys, /proc/irq,
// /proc/bus and /proc/sysrq-trigger read-only, and /sys is absent.
// Everything of the sandbox's own processes (/proc/self, /proc/PID) and
// the system-wide counters programs read (/proc/meminfo, /proc/stat,
// /proc/cpuinfo, /proc/loadavg, /proc/uptime) stay.
var maskedProc = []string{
	"acpi", "asound", "buddyinfo", "cmdline", "config.gz", "consoles", "crypto", "devices", "diskstats",
	"dma", "driver", "execdomains", "fb", "fs", "interrupts", "iomem", "ioports", "kallsyms", "kcore",
	"key-users", "keys", "kmsg", "kpagecgroup", "kpagecount", "kpageflags", "latency_stats", "mdstat",
	"misc", "modules", "mtrr", "pagetypeinfo", "partitions", "sched_debug", "schedstat", "scsi",
	"slabinfo", "softirqs", "swaps", "sysrq-trigger", "timer_list", "timer_stats", "tty", "vmallocinfo",
	"zoneinfo",
}
