package sandbox

import (
	"os"
	"os/exec"
	"testing"
)

// TestBuildsForOtherSystems cross-compiles membrane and vets this package
// (tests included) for macOS and FreeBSD, where only rlimit mode runs: the
// Linux-only code must stay behind its build tags. Nothing here can run
// those binaries; TestRlimitModeWithoutPrlimit runs their limits path on
// Linux.
func TestBuildsForOtherSystems(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles membrane; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("MEMBRANE_REQUIRE_E2E") == "1" {
			t.Fatalf("MEMBRANE_REQUIRE_E2E=1 but no go command on PATH: %v", err)
		}
		t.Skipf("no go command on PATH: %v", err)
	}
	for _, tg := range []struct{ goos, goarch string }{
		{"darwin", "arm64"}, {"darwin", "amd64"}, {"freebsd", "amd64"},
	} {
		t.Run(tg.goos+"_"+tg.goarch, func(t *testing.T) {
			for _, args := range [][]string{
				{"vet", "."},
				{"build", "-o", os.DevNull, "../cmd/membrane"},
			} {
				cmd := exec.Command(gobin, args...)
				cmd.Env = append(os.Environ(), "GOOS="+tg.goos, "GOARCH="+tg.goarch, "CGO_ENABLED=0")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("GOOS=%s GOARCH=%s go %v: %v\n%s", tg.goos, tg.goarch, args, err, out)
				}
			}
		})
	}
}
