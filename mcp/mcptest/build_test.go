package mcptest

import (
	"os"
	"os/exec"
	"testing"
)

// A second build of an unchanged package keeps the binary there (the same
// file: nothing relinked or copied); a binary that is not the package's
// build is replaced.
func TestBuildReusesAnUpToDateBinary(t *testing.T) {
	const pkg = "./cmd/membrane/testdata/sdkserver"
	first, err := build(pkg)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	if buildID(first) == "" {
		t.Fatalf("no build ID read from %s", first)
	}
	again, err := build(pkg)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(again)
	if err != nil {
		t.Fatal(err)
	}
	if again != first || !os.SameFile(before, after) {
		t.Errorf("an up-to-date binary was replaced: %s -> %s", first, again)
	}

	// Control: another file in its place is replaced by the build.
	tmp := first + ".other"
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, first); err != nil {
		t.Fatal(err)
	}
	if _, err := build(pkg); err != nil {
		t.Fatal(err)
	}
	if buildID(first) != buildID(first+".build") || buildID(first) == "" {
		t.Errorf("the stale binary stayed: build ID %q, want %q", buildID(first), buildID(first+".build"))
	}
	if err := exec.Command(first, "--help").Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
			t.Errorf("the stale binary still runs")
		}
	}
}
