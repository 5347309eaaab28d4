package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls/policy"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]policy.Limit{
		"sh=10/min:3":   {Tools: "sh", PerMinute: 10, Burst: 3, PerTool: true},
		"ollama_*=2/s":  {Tools: "ollama_*", PerMinute: 120, Burst: 1, PerTool: true},
		" x=30/h ":      {Tools: "x", PerMinute: 0.5, Burst: 1, PerTool: true},
		"y=5":           {Tools: "y", PerMinute: 5, Burst: 1, PerTool: true},
		"z=1/minute:20": {Tools: "z", PerMinute: 1, Burst: 20, PerTool: true},
	} {
		if got, err := policy.ParseLimit(v); err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", v, got, err, want)
		}
	}
	for v, why := range map[string]string{
		"sh":         "GLOB=N/min",
		"=1/min":     "GLOB=N/min",
		"sh=0/min":   "positive",
		"sh=x/min":   "positive",
		"sh=1/day":   "unit",
		"sh=1/min:0": "burst",
		"sh=1/min:x": "burst",
		"[bad=1/min": "",
		"sh=2e9/min": "positive",
	} {
		_, err := policy.ParseLimit(v)
		var le *policy.LimitError
		if !errors.As(err, &le) || le.Value != v || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseLimit(%q): %v, want a LimitError saying %q", v, err, why)
		}
	}
	if got := policy.ParseLimits([]string{"sh=1/min", "bad", "x=2/min"}); len(got) != 2 || got[0].Tools != "sh" || got[1].Tools != "x" {
		t.Errorf("ParseLimits = %+v", got)
	}
}
