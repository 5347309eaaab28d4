package ollama

import "strings"

// SplitBackends splits a list of backends written in one line, as an
// environment variable holds them, into ParseBackend values. Backends are
// separated by white space or by commas; a comma-separated part that is
// not NAME=URL (key-env=VAR, key-file=PATH, or a mistake ParseBackend then
// names) continues the backend before it, so
// "vllm=http://gpu1:8000/v1,key-env=K,lms=http://h:1234/v1" is two.
func SplitBackends(s string) []string {
	var out []string
	for _, field := range strings.Fields(s) {
		for part := range strings.SplitSeq(field, ",") {
			_, rest, _ := strings.Cut(part, "=")
			switch {
			case part == "":
			case len(out) > 0 && !strings.Contains(rest, "://"):
				out[len(out)-1] += "," + part
			default:
				out = append(out, part)
			}
		}
	}
	return out
}
