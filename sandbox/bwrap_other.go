//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
)

// errBwrapLinuxOnly is why ModeBwrap cannot run outside Linux: bubblewrap
// is built on Linux namespaces.
var errBwrapLinuxOnly = errors.New("bubblewrap isolation (sandbox mode bwrap, the default) needs Linux namespaces, and this is " + osName())

func osName() string {
	if runtime.GOOS == "darwin" {
		return "macOS"
	}
	return runtime.GOOS
}

// errBwrapUnsupported is findBwrap's error where bubblewrap cannot exist at
// all.
var errBwrapUnsupported = errBwrapLinuxOnly

func findBwrap() (string, bwrapFeatures, error) { return "", bwrapFeatures{}, errBwrapLinuxOnly }

func (s *Sandbox) bwrapArgs(context.Context, *job) ([]string, []*os.File, bwrapPipes, error) {
	return nil, nil, bwrapPipes{}, errBwrapLinuxOnly
}

func (s *Sandbox) bwrapCommand(context.Context, *job) (*exec.Cmd, []func(), bwrapPipes, error) {
	return nil, nil, bwrapPipes{}, errBwrapLinuxOnly
}

type bwrapPipes struct{ info, block *os.File }

func (p bwrapPipes) close() {}

func procMasks() []hidden { return nil }

func (s *Sandbox) probe(context.Context) error { return errBwrapLinuxOnly }

func (s *Sandbox) initLimits() []rlimit { return nil }

func limitInit(int, int, int, []rlimit) error { return errBwrapLinuxOnly }
