package settings

import "path/filepath"

// ResolvePath makes the path setting name (flag, variable or key) points
// at, *p, absolute: a relative path from the config file is taken from the
// file's directory, one from a flag or variable from the working directory.
// An empty path stays empty.
func (s *Set) ResolvePath(name string, p *string) {
	if *p == "" {
		return
	}
	if s.SourceOf(name) == FromFile && !filepath.IsAbs(*p) && s.file != "" {
		*p = filepath.Join(filepath.Dir(s.file), *p)
	}
	if abs, err := filepath.Abs(*p); err == nil {
		*p = abs
	}
}
