package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// LimitError is ParseLimit's error: the value given, and what is wrong
// with it.
type LimitError struct {
	Value string
	Why   string
}

func (e *LimitError) Error() string { return fmt.Sprintf("%q: %s", e.Value, e.Why) }

// ParseLimit reads a shared rate limit written GLOB=N/min or
// GLOB=N/min:BURST (also N/s and N/h; a bare N is per minute), each tool
// the glob matches a bucket of its own. The error says what was wrong with
// v, in words.
func ParseLimit(v string) (Limit, error) {
	glob, spec, ok := strings.Cut(strings.TrimSpace(v), "=")
	if !ok || glob == "" {
		return Limit{}, &LimitError{v, "want GLOB=N/min[:BURST], such as sh=10/min:3"}
	}
	spec, burstStr, hasBurst := strings.Cut(spec, ":")
	num, unit, _ := strings.Cut(spec, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0) || n > 1e9 {
		return Limit{}, &LimitError{v, fmt.Sprintf("the rate %q is not a positive number", num)}
	}
	switch unit {
	case "s", "sec", "second":
		n *= 60
	case "m", "min", "minute", "":
	case "h", "hour":
		n /= 60
	default:
		return Limit{}, &LimitError{v, fmt.Sprintf("the unit %q is not s, min or h", unit)}
	}
	l := Limit{Tools: glob, PerMinute: n, PerTool: true, Burst: 1}
	if hasBurst {
		b, err := strconv.Atoi(burstStr)
		if err != nil || b < 1 {
			return Limit{}, &LimitError{v, fmt.Sprintf("the burst %q is not a whole number of 1 or more", burstStr)}
		}
		l.Burst = b
	}
	if _, err := New(Options{Limits: []Limit{l}}); err != nil {
		return Limit{}, &LimitError{v, err.Error()}
	}
	return l, nil
}

// ParseLimits reads each of vs with ParseLimit, leaving out those that do
// not parse (for values checked when they were set).
func ParseLimits(vs []string) []Limit {
	var out []Limit
	for _, v := range vs {
		if l, err := ParseLimit(v); err == nil {
			out = append(out, l)
		}
	}
	return out
}
