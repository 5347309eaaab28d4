package ollamatest

import (
	"fmt"
	"os"
	"path/filepath"
)

// NewerVersion is the newer Ollama release the tests also run against, next
// to [Version], when it has been built (`make test-deps` builds it; its
// module zip lacks llama.cpp's vendored headers, which the Makefile takes
// from Debian packages and the Go module proxy, see .ci/ollama-newer.sh).
const NewerVersion = "v0.17.4"

// EnvNewerBinary names the newer test Ollama instead of its cache path,
// <os.UserCacheDir>/membrane/ollama-v0.17.4/ollama. Set to "off", only
// [Version] runs.
const EnvNewerBinary = "MEMBRANE_TEST_OLLAMA_NEWER"

// TestVersion is one Ollama build a version-matrix test runs against.
type TestVersion struct {
	// Name is for the subtest: "ollama-v0.6.5".
	Name string
	// Version is the release, "v0.6.5".
	Version string
	// Binary is the ollama executable, for [Options].Binary.
	Binary string
}

// Versions returns the Ollama builds to run a version-matrix test against:
// [Version] always (built when missing, as [Binary] does), then
// [NewerVersion] when its binary is there. Under $MEMBRANE_REQUIRE_E2E=1 a
// missing newer binary fails t, unless $MEMBRANE_TEST_OLLAMA_NEWER is "off".
//
//	for _, v := range ollamatest.Versions(t) {
//		t.Run(v.Name, func(t *testing.T) {
//			srv := ollamatest.StartWith(t, &ollamatest.Options{Binary: v.Binary})
//			...
//		})
//	}
func Versions(t TB) []TestVersion {
	t.Helper()
	out := []TestVersion{{Name: "ollama-" + Version, Version: Version, Binary: Binary(t)}}
	p, err := newerPath()
	if err != nil || p == "" {
		return out
	}
	if err := executable(p); err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but the newer test Ollama %s is missing at %s: %v (run `make test-deps`, or set %s=off)", EnvRequire, NewerVersion, p, err, EnvNewerBinary)
		}
		t.Logf("running against Ollama %s only: no %s at %s (`make test-deps` builds it)", Version, NewerVersion, p)
		return out
	}
	return append(out, TestVersion{Name: "ollama-" + NewerVersion, Version: NewerVersion, Binary: p})
}

// newerPath is where the newer test Ollama is: $MEMBRANE_TEST_OLLAMA_NEWER,
// or the cache path; "" when turned off.
func newerPath() (string, error) {
	switch p := os.Getenv(EnvNewerBinary); p {
	case "off":
		return "", nil
	case "":
	default:
		return p, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("ollamatest: no user cache dir: %w", err)
	}
	return filepath.Join(dir, "membrane", "ollama-"+NewerVersion, "ollama"), nil
}

// Start starts this version for t, as [StartWith] with Options.Binary set.
func (v TestVersion) Start(t TB) *Server {
	t.Helper()
	return StartWith(t, &Options{Binary: v.Binary})
}
