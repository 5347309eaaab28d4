package settings

import "runtime/debug"

// Version is a program's version: stamped, when a build set it with
// -ldflags "-X main.version=..." (make build stamps `git describe`);
// otherwise the module version of a `go install pkg@version` build;
// otherwise "dev-" and the VCS revision the binary was built from, with
// "-dirty" for uncommitted changes; otherwise "dev".
func Version(stamped string) string {
	if stamped != "" {
		return stamped
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}
