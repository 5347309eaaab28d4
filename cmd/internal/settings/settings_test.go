package settings

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

type demo struct {
	config  string
	name    string
	on      bool
	n       int
	ratio   float64
	wait    time.Duration
	size    int64
	hosts   []string
	tags    []string
	version bool
	items   []struct {
		Name string `yaml:"name"`
		Max  int    `yaml:"max"`
	}
}

func newDemo(d *demo) *Set {
	s := New("demo")
	s.ConfigFile(&d.config, Def{Flag: "config", Env: "DEMO_CONFIG", Arg: "FILE", Doc: "config file"})
	s.String(&d.name, "x", Def{Flag: "name", Env: "DEMO_NAME", Key: "name", Doc: "name"}, OneOf("x", "y", "zed"))
	s.Bool(&d.on, false, Def{Flag: "on", Env: "DEMO_ON", Key: "a.on", Doc: "on"})
	s.Int(&d.n, 3, Def{Flag: "n", Env: "DEMO_N", Key: "a.n", Doc: "n"}, AtLeast(1))
	s.Float(&d.ratio, 0.5, Def{Flag: "ratio", Key: "a.ratio", Doc: "ratio"}, Between(0.0, 1.0))
	s.Duration(&d.wait, time.Second, Def{Flag: "wait", Env: "DEMO_WAIT", Key: "b.wait", Doc: "wait"}, Positive[time.Duration])
	s.Size(&d.size, 1<<20, Def{Flag: "size", Key: "b.size", Doc: "size"}, Positive[int64])
	s.List(&d.hosts, []string{"h0"}, Def{Flag: "host", Env: "DEMO_HOSTS", Key: "b.hosts", Doc: "hosts"})
	s.List(&d.tags, nil, Def{Flag: "tag", Key: "b.tags", Split: true, Doc: "tags"})
	Value(s, &d.items, Def{Key: "items", Doc: "items"})
	s.Bool(&d.version, false, Def{Flag: "version", Doc: "version", Stop: true})
	return s
}

func loadDemo(t *testing.T, args []string, env map[string]string, file string) (*demo, *Set, error) {
	t.Helper()
	d := &demo{}
	s := newDemo(d)
	err := s.Load(args, func(k string) string { return env[k] }, func(string) ([]byte, error) { return []byte(file), nil })
	return d, s, err
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := "name: y\na: {n: 5, on: true}\nb:\n  hosts: [f1, f2]\n  wait: 30\nitems: [{name: i, max: 2}]\n"
	env := map[string]string{"DEMO_CONFIG": "c.yaml", "DEMO_N": "6", "DEMO_HOSTS": "e1, e2"}
	d, s, err := loadDemo(t, []string{"--n=7", "-host", "a1", "--host", "a2", "--tag", "t1,t2", "--tag=t3", "--on=false", "rest", "--n=9"}, env, file)
	if err != nil {
		t.Fatal(err)
	}
	if d.name != "y" || d.n != 7 || d.on || d.wait != 30*time.Second || d.items[0].Max != 2 {
		t.Errorf("values: %+v", d)
	}
	if !slices.Equal(d.hosts, []string{"a1", "a2"}) || !slices.Equal(d.tags, []string{"t1", "t2", "t3"}) {
		t.Errorf("lists: hosts %q tags %q", d.hosts, d.tags)
	}
	if got := s.Args(); !slices.Equal(got, []string{"rest", "--n=9"}) {
		t.Errorf("args after the flags: %q", got)
	}
	if s.SourceOf("name") != FromFile || s.SourceOf("n") != FromFlag || s.SourceOf("ratio") != FromDefault {
		t.Error("sources wrong")
	}
	// Without flags, the variable's list replaces the file's.
	d, _, err = loadDemo(t, nil, env, file)
	if err != nil || !slices.Equal(d.hosts, []string{"e1", "e2"}) || d.n != 6 {
		t.Errorf("env over file: %+v %v", d, err)
	}
	// Nothing given: the defaults, again after a Load that set them.
	d, _, err = loadDemo(t, nil, nil, "")
	if err != nil || d.n != 3 || !slices.Equal(d.hosts, []string{"h0"}) || d.name != "x" {
		t.Errorf("defaults: %+v %v", d, err)
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	withFile := map[string]string{"DEMO_CONFIG": "c.yaml"}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		file string
		want []string
	}{
		{[]string{"--nme", "x"}, nil, "", []string{"--nme: unknown flag (did you mean --name?); see demo --help"}},
		{[]string{"--n"}, nil, "", []string{"-n: needs a value"}},
		{[]string{"--n", "lots"}, nil, "", []string{`-n: "lots" is not a whole number`}},
		{[]string{"--n", "0"}, nil, "", []string{`-n: "0" must be at least 1`}},
		{nil, map[string]string{"DEMO_WAIT": "soon"}, "", []string{`DEMO_WAIT: "soon" is not a duration`}},
		{[]string{"--name", "zd"}, nil, "", []string{`must be x, y or zed (did you mean zed?)`}},
		{nil, withFile, "a:\n  nx: 1\n", []string{"config file c.yaml: line 2: a.nx: unknown key (did you mean a.n?)"}},
		{nil, withFile, "wait: 1\n", []string{"line 1: wait: unknown key (did you mean b.wait?)"}},
		{nil, withFile, "b: {wait: soon}\n", []string{`line 1: b.wait: "soon" is not a duration`}},
		{nil, withFile, "b: {size: [1]}\n", []string{"b.size: must be a size", "not a list"}},
		{nil, withFile, "a: 3\n", []string{"line 1: a: a must be a mapping"}},
		{nil, withFile, "items: [{nme: i}]\n", []string{"line 1: items[0].nme: unknown key (did you mean name?)"}},
		{nil, withFile, "items: [{name: [i]}]\n", []string{"items: a list where text was expected"}},
		{nil, withFile, "a: [\n", []string{"config file c.yaml:"}},
		{nil, withFile, "a: {n: 1}\n---\na: {n: 2}\n", []string{"more than one YAML document"}},
		{nil, withFile, "a: {n: 0}\n", []string{`config file c.yaml: line 1: a.n: "0" must be at least 1`}},
	} {
		_, _, err := loadDemo(t, tc.args, tc.env, tc.file)
		if err == nil {
			t.Errorf("%q %v %q: accepted", tc.args, tc.env, tc.file)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q %v %q: error %q, want it to contain %q", tc.args, tc.env, tc.file, err, w)
			}
		}
		if strings.Contains(err.Error(), "main.") || strings.Contains(err.Error(), "struct") {
			t.Errorf("error names a Go type: %v", err)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("error %v is not a *settings.Error", err)
		}
	}
}

func TestHelpAndStop(t *testing.T) {
	t.Parallel()
	for _, a := range []string{"-h", "--help", "-help"} {
		if _, _, err := loadDemo(t, []string{a}, nil, ""); err != ErrHelp {
			t.Errorf("%s: %v", a, err)
		}
	}
	// --version stops before a bad variable is read.
	if _, _, err := loadDemo(t, []string{"--version"}, map[string]string{"DEMO_N": "bad"}, ""); err != ErrStop {
		t.Errorf("--version: %v", err)
	}
	var b strings.Builder
	newDemo(&demo{}).Usage(&b)
	for _, want := range []string{"  --wait DURATION\n", "[DEMO_WAIT, file: b.wait, default 1s]", "  -n N\n", "  --on\n", "  items\n", "config file only"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage misses %q:\n%s", want, b.String())
		}
	}
	md := newDemo(&demo{}).Markdown()
	if !strings.Contains(md, "| `--wait DURATION` | `DEMO_WAIT` | `b.wait` | `1s` | wait |") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestSizesAndDurations(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"1024": 1024, "1KiB": 1024, "1k": 1024, "2MiB": 2 << 20, "1.5GiB": 3 << 29, "1MB": 1e6, " 8 mib ": 8 << 20, "0": 0} {
		if n, err := ParseSize(in); err != nil || n != want {
			t.Errorf("size %q = %d, %v; want %d", in, n, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1XB", "1e30", "MiB", "NaN"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("size %q accepted as %d", in, n)
		}
	}
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "1m30s": 90 * time.Second, "2": 2 * time.Second, "0.5": 500 * time.Millisecond} {
		if d, err := ParseDuration(in); err != nil || d != want {
			t.Errorf("duration %q = %v, %v", in, d, err)
		}
	}
	for _, in := range []string{"", "soon", "-5s", "-1", "1e12", "NaN"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("duration %q accepted as %v", in, d)
		}
	}
}

// Encode writes what was given; loading it gives the same values.
func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	file := "name: zed\na: {n: 5, on: true, ratio: 0.25}\nb:\n  hosts: [f1, f2]\n  wait: 90\n  size: 3KiB\nitems: [{name: i, max: 2}]\n"
	_, s, err := loadDemo(t, nil, map[string]string{"DEMO_CONFIG": "c.yaml"}, file)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d2, s2, err := loadDemo(t, nil, map[string]string{"DEMO_CONFIG": "c.yaml"}, string(out))
	if err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	out2, _ := s2.Encode()
	if string(out) != string(out2) || d2.wait != 90*time.Second || d2.size != 3<<10 || d2.items[0].Name != "i" {
		t.Errorf("round trip:\n%s\n---\n%s", out, out2)
	}
}

// FuzzParse checks the text forms: whatever ParseDuration and ParseSize
// accept, their own formatting reads back to the same value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"30", "1.5GiB", "1h30m", "0.000001", "7MB", "1e9", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d, err := ParseDuration(v); err == nil {
			if d < 0 {
				t.Fatalf("duration %q = %v, negative", v, d)
			}
			if d2, err := ParseDuration(d.String()); err != nil || d2 != d {
				t.Fatalf("duration %q = %v, reads back as %v, %v", v, d, d2, err)
			}
		}
		if n, err := ParseSize(v); err == nil {
			if n < 0 {
				t.Fatalf("size %q = %d, negative", v, n)
			}
			if n2, err := ParseSize(FormatSize(n)); err != nil || n2 != n {
				t.Fatalf("size %q = %d, reads back as %d, %v", v, n, n2, err)
			}
		}
	})
}

// TestErrorHidesPassword: a bad URL value with user:password@ is shown
// without the password; other values are shown as given.
func TestErrorHidesPassword(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"ftp://alice:hunter2@h/v1": "alice:xxxxx@",
		"alice:hunter2@h:1:2":      "not shown",
		"plain":                    `"plain"`,
	} {
		got := (&Error{Where: "--base-url", Value: v, Msg: "is not an http(s) URL"}).Error()
		if strings.Contains(got, "hunter2") || !strings.Contains(got, want) {
			t.Errorf("Error for %q = %q, want it to show %s and no password", v, got, want)
		}
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	s := newDemo(&demo{})
	for _, tc := range []struct {
		args, rest []string
		cmd        string
	}{
		{[]string{"check"}, []string{}, "check"},
		{[]string{"--config", "check", "check", "--on"}, []string{"--config", "check", "--on"}, "check"}, // a flag's value is not the command
		{[]string{"--on", "--name=y", "check"}, []string{"--on", "--name=y"}, "check"},
		{[]string{"-n", "2", "other"}, []string{"-n", "2", "other"}, ""},
		{[]string{"--nope", "check"}, []string{"--nope", "check"}, ""}, // Load reports the unknown flag
		{[]string{"--", "check"}, []string{"--", "check"}, ""},
		{nil, nil, ""},
	} {
		cmd, rest := s.Split(tc.args, "check", "run")
		if cmd != tc.cmd || strings.Join(rest, " ") != strings.Join(tc.rest, " ") {
			t.Errorf("Split(%q) = %q %q, want %q %q", tc.args, cmd, rest, tc.cmd, tc.rest)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	s := newDemo(&demo{})
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var b strings.Builder
		if err := s.Completion(&b, shell, []string{"check"}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"--config", "--wait", "check"} {
			if shell == "fish" {
				want = strings.Replace(want, "--", "-l ", 1)
			}
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s script lacks %q", shell, want)
			}
		}
	}
	if err := s.Completion(io.Discard, "tcsh", nil); err == nil || !strings.Contains(err.Error(), "bash, zsh or fish") {
		t.Errorf("tcsh: %v", err)
	}
}
