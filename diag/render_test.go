package diag_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/diag"
)

func TestWriteText(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	failed := diag.WriteText(&b, []diag.Check{
		{Name: "bubblewrap", Status: diag.StatusOK, Detail: "works", Fix: "not shown"},
		{Name: "net", Status: diag.StatusWarn, Detail: "on\nthe\thost", Fix: "turn it off"},
	})
	want := "ok    bubblewrap  works\nwarn  net         on the host\n                  fix: turn it off\n\nReady, with 1 warning(s).\n"
	if failed || b.String() != want {
		t.Errorf("failed=%v, text:\n%q\nwant\n%q", failed, b.String(), want)
	}
	b.Reset()
	if !diag.WriteText(&b, []diag.Check{{Name: "x", Status: diag.StatusFail, Detail: "gone", Fix: "start it"}}) ||
		!strings.HasSuffix(b.String(), "1 problem(s) to fix, 0 warning(s).\n") {
		t.Errorf("a failed check: %q", b.String())
	}
	b.Reset()
	if diag.WriteText(&b, nil) || b.String() != "\nReady.\n" {
		t.Errorf("no checks: %q", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		checks []diag.Check
		ok     bool
	}{
		{nil, true},
		{[]diag.Check{{Name: "a", Status: diag.StatusWarn, Detail: "two\nlines", Fix: "do"}}, true},
		{[]diag.Check{{Name: "a"}, {Name: "b", Status: diag.StatusFail, Detail: "bad"}}, false},
	} {
		var b bytes.Buffer
		failed := diag.WriteJSON(&b, "v1.2.3", tc.checks)
		var doc struct {
			Version string
			OK      bool
			Checks  []struct{ Name, Status, Detail, Fix string }
		}
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatalf("%v: %s", err, b.String())
		}
		if failed == tc.ok || doc.OK != tc.ok || doc.Version != "v1.2.3" || len(doc.Checks) != len(tc.checks) || doc.Checks == nil {
			t.Errorf("failed=%v doc=%+v for %+v", failed, doc, tc.checks)
		}
		for i, c := range doc.Checks {
			if c.Name != tc.checks[i].Name || c.Status != tc.checks[i].Status.String() || strings.Contains(c.Detail, "\n") {
				t.Errorf("check %d = %+v", i, c)
			}
		}
	}
}

func TestAdvise(t *testing.T) {
	t.Parallel()
	checks := []diag.Check{
		{Name: "net", Status: diag.StatusWarn, Fix: "turn it off", Setting: "sandbox.network"},
		{Name: "plain", Status: diag.StatusWarn, Fix: "install bubblewrap"},
		{Name: "unknown", Status: diag.StatusWarn, Fix: "see", Setting: "no.such"},
	}
	diag.Advise(checks, func(key string) string {
		if key == "sandbox.network" {
			return "--net or " + key
		}
		return ""
	})
	if got := checks[0].Fix; got != "turn it off (--net or sandbox.network)" {
		t.Errorf("advice = %q", got)
	}
	if checks[1].Fix != "install bubblewrap" || checks[2].Fix != "see" {
		t.Errorf("fixes without a named setting changed: %q, %q", checks[1].Fix, checks[2].Fix)
	}
	diag.Advise(checks, nil) // a nil names is safe and changes nothing
	if checks[0].Fix != "turn it off (--net or sandbox.network)" {
		t.Errorf("nil names changed %q", checks[0].Fix)
	}
}
