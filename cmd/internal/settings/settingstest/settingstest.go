// Package settingstest checks a program's settings against their
// definitions: each one set by its flag, its variable and its file key,
// shown in --help and in the README, and a bad value of each refused with
// an error that names it.
package settingstest

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/cmd/internal/settings"
)

// Program describes the program under test.
type Program struct {
	// New returns the program's settings, freshly defined.
	New func() *settings.Set
	// Good are values to set, by flag name (or file key for a setting
	// with no flag), where the kind's sample would fail the setting's
	// checks. A KindValue's is a YAML document for its key.
	Good map[string]string
	// Bad are values each setting must refuse, by flag name (or key),
	// where the kind's sample does not do (text with a check).
	Bad map[string]string
	// NoBad lists the settings that accept any value (free text), so that
	// one missing from Bad is a test failure, not a silent pass.
	NoBad []string
}

var sampleGood = map[settings.Kind]string{
	settings.KindString: "sample-1", settings.KindBool: "true", settings.KindInt: "7", settings.KindFloat: "0.5",
	settings.KindDuration: "7s", settings.KindSize: "7MiB", settings.KindList: "sample-1",
}

var sampleBad = map[settings.Kind]string{
	settings.KindBool: "maybe", settings.KindInt: "many", settings.KindFloat: "hot",
	settings.KindDuration: "soon", settings.KindSize: "lots",
}

func name(x *settings.Setting) string {
	if x.Flag != "" {
		return x.Flag
	}
	return x.Key
}

// fileFor writes value under the dotted key as a YAML document.
func fileFor(key, value string, raw bool) string {
	parts := strings.Split(key, ".")
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":")
		if i < len(parts)-1 {
			b.WriteString("\n")
		}
	}
	if raw {
		fmt.Fprintf(&b, " %s\n", value)
	} else if strings.Contains(value, "\n") {
		ind := strings.Repeat("  ", len(parts))
		b.WriteString("\n" + ind + strings.ReplaceAll(strings.TrimSpace(value), "\n", "\n"+ind) + "\n")
	} else {
		fmt.Fprintf(&b, " %q\n", value)
	}
	return b.String()
}

// load runs Load with these flags, one variable and an optional file.
func load(s *settings.Set, args []string, env map[string]string, file string) error {
	read := func(string) ([]byte, error) { return []byte(file), nil }
	if file != "" {
		c := s.ConfigSetting()
		args = append([]string{c.FlagName(), "settings-test.yaml"}, args...)
	}
	return s.Load(args, func(k string) string { return env[k] }, read)
}

// Run checks every setting of p.
func Run(t *testing.T, p Program) {
	if err := p.New().CheckDefaults(); err != nil {
		t.Errorf("a default fails its own check: %v", err)
	}
	noBad := map[string]bool{}
	for _, n := range p.NoBad {
		noBad[n] = true
	}
	for _, x := range p.New().All() {
		n := name(x)
		t.Run(n, func(t *testing.T) {
			if x.Stop {
				if err := load(p.New(), []string{x.FlagName()}, nil, ""); err != settings.ErrStop {
					t.Errorf("%s: Load = %v, want ErrStop", x.FlagName(), err)
				}
				return
			}
			good, ok := p.Good[n]
			if !ok {
				good = sampleGood[x.Kind]
			}
			check := func(how string, src settings.Source, err error, s *settings.Set) {
				t.Helper()
				if err != nil {
					t.Errorf("set by %s to %q: %v", how, good, err)
					return
				}
				got := s.Lookup(n)
				if got.Source() != src || got.Value() == got.Default() {
					t.Errorf("set by %s to %q: value %q (default %q), source %v", how, good, got.Value(), got.Default(), got.Source())
				}
			}
			if x.Flag != "" {
				s := p.New()
				check("flag", settings.FromFlag, load(s, []string{x.FlagName() + "=" + good}, nil, ""), s)
			}
			if x.Env != "" {
				s := p.New()
				check("variable", settings.FromEnv, load(s, nil, map[string]string{x.Env: good}, ""), s)
			}
			if x.Key != "" {
				s := p.New()
				check("file", settings.FromFile, load(s, nil, nil, fileFor(x.Key, good, x.Kind == settings.KindValue)), s)
			}

			bad, ok := p.Bad[n]
			if !ok {
				bad, ok = sampleBad[x.Kind]
			}
			if !ok {
				if !noBad[n] && x.Kind != settings.KindValue {
					t.Errorf("no bad value to try: add one to Bad or the setting to NoBad")
				}
				return
			}
			refused := func(how, wantName string, err error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s %q accepted", how, bad)
					return
				}
				if msg := err.Error(); !strings.Contains(msg, wantName) || !strings.Contains(msg, bad) {
					t.Errorf("%s %q: error %q does not name %s and the value", how, bad, msg, wantName)
				}
			}
			if x.Flag != "" {
				refused("flag", x.FlagName(), load(p.New(), []string{x.FlagName() + "=" + bad}, nil, ""))
			}
			if x.Env != "" {
				refused("variable", x.Env, load(p.New(), nil, map[string]string{x.Env: bad}, ""))
			}
			if x.Key != "" && x.Kind != settings.KindValue {
				refused("file key", x.Key, load(p.New(), nil, nil, fileFor(x.Key, bad, false)))
			}
		})
	}
}

// Help checks that the program's --help shows every setting: its flag and
// placeholder, its variable and its file key.
func Help(t *testing.T, s *settings.Set, help string) {
	for _, x := range s.All() {
		for _, want := range []string{x.FlagName(), x.Env, x.Key} {
			if want != "" && want != "-" && want != "--" && !strings.Contains(help, want) {
				t.Errorf("--help does not show %s (%s)", want, x.Label())
			}
		}
	}
}

// README checks that the README holds the settings' table, generated by
// Set.Markdown, between the lines "<!-- settings: NAME -->" and
// "<!-- end settings: NAME -->"; with update it rewrites the table.
func README(t *testing.T, path string, s *settings.Set, update bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	begin, end := "<!-- settings: "+s.Name+" -->\n", "<!-- end settings: "+s.Name+" -->"
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q block for the settings table", path, strings.TrimSpace(begin), end)
	}
	want := s.Markdown()
	if got := readme[i+len(begin) : j]; got != want {
		if update {
			if err := os.WriteFile(path, []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the %s settings table in %s", s.Name, path)
			return
		}
		t.Errorf("the %s settings table in %s is out of date: run go test -run README -update in its package.\nwant:\n%s", s.Name, path, want)
	}
	for _, x := range s.All() {
		for _, want := range []string{x.FlagName(), x.Env, x.Key} {
			if want != "" && want != "--" && !strings.Contains(readme, "`"+want) {
				t.Errorf("README does not mention %s", want)
			}
		}
	}
}
