package ollama

import (
	"fmt"
	"slices"
)

// MergeBackends adds backends given as ParseBackend values (from a
// program's command line, say) to those of a file. A value naming a
// backend of the file gives its URL and key, and the file's entry keeps
// its per-model capabilities; others are added in order. Values that do
// not parse are left out (they are checked where they are set), and two
// values of one name both stay, for New and ValidateBackends to refuse.
func MergeBackends(file []Backend, values []string) []Backend {
	out := slices.Clone(file)
	for _, v := range values {
		b, err := ParseBackend(v)
		if err != nil {
			continue
		}
		if i := slices.IndexFunc(out[:len(file)], func(x Backend) bool { return x.Name == b.Name }); i >= 0 {
			b.Models = out[i].Models
			out[i] = b
			continue
		}
		out = append(out, b)
	}
	return out
}

// Bounds of a num_ctx setting (Config.NumCtx).
const (
	MinNumCtx = 256
	MaxNumCtx = 1 << 24
)

// ValidateNumCtx checks a num_ctx per model (Config.NumCtx): each from
// MinNumCtx to MaxNumCtx tokens.
func ValidateNumCtx(m map[string]int) error {
	for name, n := range m {
		if n < MinNumCtx || n > MaxNumCtx {
			return fmt.Errorf("num_ctx of %s: %d is not from %d to %d", name, n, MinNumCtx, MaxNumCtx)
		}
	}
	return nil
}
