package settings_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/membrane-mcp/membrane/cmd/internal/settings"
)

func TestChecks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exe := filepath.Join(dir, "run")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	hostPort := settings.HostPort("127.0.0.1:9464")
	for _, tc := range []struct {
		name  string
		check func(string) error
		good  []string
		bad   []string
	}{
		{"NoSpace", settings.NoSpace, []string{"", "abc-123"}, []string{"a b", "a\tb", "a\n"}},
		{"Dir", settings.Dir, []string{"", dir}, []string{plain, filepath.Join(dir, "none")}},
		{"Executable", settings.Executable, []string{"", exe}, []string{plain, dir, filepath.Join(dir, "none")}},
		{"HostPort", hostPort, []string{"", "127.0.0.1:9464", ":0", "[::1]:80"}, []string{"127.0.0.1", "host"}},
		{"EnvName", settings.EnvName, []string{"A", "_X1", "api_key"}, []string{"", "1BAD", "BAD-NAME", "A B", "é"}},
	} {
		for _, v := range tc.good {
			if err := tc.check(v); err != nil {
				t.Errorf("%s(%q) = %v, want nil", tc.name, v, err)
			}
		}
		for _, v := range tc.bad {
			if err := tc.check(v); err == nil {
				t.Errorf("%s(%q) passed", tc.name, v)
			}
		}
	}
}

func TestResolvePath(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(conf, []byte("p: rel/f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var fromFile, fromFlag, unset string
	s := settings.New("t")
	s.ConfigFile(new(string), settings.Def{Flag: "config"})
	s.String(&fromFile, "", settings.Def{Key: "p", Flag: "p"})
	s.String(&fromFlag, "", settings.Def{Key: "q", Flag: "q"})
	s.String(&unset, "", settings.Def{Key: "u", Flag: "u"})
	if err := s.Load([]string{"--config", conf, "--q", "rel/g"}, func(string) string { return "" }, nil); err != nil {
		t.Fatal(err)
	}
	s.ResolvePath("p", &fromFile)
	s.ResolvePath("q", &fromFlag)
	s.ResolvePath("u", &unset)
	wd, _ := os.Getwd()
	if fromFile != filepath.Join(dir, "rel/f") || fromFlag != filepath.Join(wd, "rel/g") || unset != "" {
		t.Errorf("from the file %q, from a flag %q, unset %q", fromFile, fromFlag, unset)
	}
}
