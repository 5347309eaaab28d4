package settings

import (
	"fmt"
	"io"
	"strings"
)

// arg is the value placeholder shown after the flag ("" for a bool flag).
func (x *Setting) arg() string {
	if x.Arg != "" {
		return x.Arg
	}
	return x.Kind.arg()
}

// usageName is the flag with its placeholder: "--max-body SIZE", or the
// file key of a setting with no flag.
func (x *Setting) usageName() string {
	if x.Flag == "" {
		return x.Key
	}
	n := x.FlagName()
	if a := x.arg(); a != "" {
		n += " " + a
	}
	return n
}

// shownDefault is the default as --help shows it: "" when it says nothing
// (empty, false, 0).
func (x *Setting) shownDefault() string {
	switch x.def {
	case "", "false", "0", "0s":
		return ""
	}
	return x.def
}

// Usage writes --help: Head, every setting with its variable, file key and
// default, then Tail.
func (s *Set) Usage(w io.Writer) {
	fmt.Fprint(w, s.Head)
	for _, x := range s.list {
		var extra []string
		if x.Env != "" {
			extra = append(extra, x.Env)
		}
		if x.Key != "" {
			if x.Flag == "" {
				extra = append(extra, "config file only")
			} else {
				extra = append(extra, "file: "+x.Key)
			}
		}
		if d := x.shownDefault(); d != "" && x.Kind != KindValue {
			extra = append(extra, "default "+d)
		}
		line := "        " + x.Doc
		if len(extra) > 0 {
			line += "  [" + strings.Join(extra, ", ") + "]"
		}
		fmt.Fprintf(w, "  %s\n%s\n", x.usageName(), line)
	}
	fmt.Fprint(w, s.Tail)
}

// Markdown returns the README's table of the settings: flag, variable,
// file key (when any setting has one), default and doc.
func (s *Set) Markdown() string {
	hasKeys := false
	for _, x := range s.list {
		hasKeys = hasKeys || x.Key != ""
	}
	code := func(v string) string {
		if v == "" {
			return ""
		}
		return "`" + strings.ReplaceAll(v, "|", `\|`) + "`"
	}
	var b strings.Builder
	if hasKeys {
		b.WriteString("| flag | environment | config file key | default | meaning |\n|---|---|---|---|---|\n")
	} else {
		b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	}
	for _, x := range s.list {
		flag := ""
		if x.Flag != "" {
			flag = x.usageName()
		}
		cells := []string{code(flag), code(x.Env)}
		if hasKeys {
			cells = append(cells, code(x.Key))
		}
		def := ""
		if x.Kind != KindValue {
			def = x.shownDefault()
		}
		cells = append(cells, code(def), strings.ReplaceAll(x.Doc, "|", `\|`))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}
