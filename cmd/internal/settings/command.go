package settings

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Split finds a subcommand among args: the first argument that is neither
// a flag nor a flag's value, so that flags may come before the subcommand
// as well as after it (`membrane --config F doctor`). It returns the
// subcommand ("" when the first such argument is not in commands, or there
// is none) and args without it. An unknown flag ends the search; Load
// reports it.
func (s *Set) Split(args []string, commands ...string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return "", args
		}
		if len(a) < 2 || a[0] != '-' {
			if slices.Contains(commands, a) {
				return a, append(slices.Clone(args[:i]), args[i+1:]...)
			}
			return "", args
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		x := s.byFlag(name)
		if x == nil {
			return "", args
		}
		if x.takesValue() {
			i++
		}
	}
	return "", args
}

func (s *Set) byFlag(name string) *Setting {
	for _, x := range s.list {
		if x.Flag != "" && x.Flag == name {
			return x
		}
	}
	return nil
}

// Completion writes a completion script for shell (bash, zsh or fish) that
// completes the subcommands given and every flag of the set, with its doc
// line where the shell shows one.
func (s *Set) Completion(w io.Writer, shell string, commands []string) error {
	prog := s.Name
	if i := strings.IndexByte(prog, ' '); i >= 0 {
		prog = prog[:i]
	}
	fn := "_" + strings.NewReplacer("-", "_", ".", "_").Replace(prog)
	var flags []string
	for _, x := range s.list {
		if x.Flag != "" {
			flags = append(flags, x.FlagName())
		}
	}
	flags = append(flags, "--help")
	switch shell {
	case "bash":
		fmt.Fprintf(w, "# bash completion for %[1]s: source <(%[1]s completion bash)\n", prog)
		fmt.Fprintf(w, "%s() {\n", fn)
		fmt.Fprintf(w, "  local cur=\"${COMP_WORDS[COMP_CWORD]}\"\n")
		fmt.Fprintf(w, "  if [[ $cur == -* ]]; then\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n", strings.Join(flags, " "))
		fmt.Fprintf(w, "  else\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n  fi\n}\n", strings.Join(commands, " "))
		fmt.Fprintf(w, "complete -o default -F %s %s\n", fn, prog)
	case "zsh":
		fmt.Fprintf(w, "#compdef %[1]s\n# zsh completion for %[1]s: source <(%[1]s completion zsh)\n", prog)
		fmt.Fprintf(w, "%s() {\n  _arguments \\\n", fn)
		for _, x := range s.list {
			if x.Flag == "" {
				continue
			}
			spec := x.FlagName() + "[" + zshEscape(x.Doc) + "]"
			if x.takesValue() {
				spec += ":" + strings.ToLower(x.arg()) + ":_files"
			}
			fmt.Fprintf(w, "    %s \\\n", shellQuote(spec))
		}
		fmt.Fprintf(w, "    '1:command:(%s)' \\\n    '*::arg:_files'\n}\n", strings.Join(commands, " "))
		fmt.Fprintf(w, "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then %[1]s \"$@\"; else compdef %[1]s %[2]s; fi\n", fn, prog)
	case "fish":
		fmt.Fprintf(w, "# fish completion for %[1]s: %[1]s completion fish | source\n", prog)
		fmt.Fprintf(w, "complete -c %s -n __fish_use_subcommand -f -a %s\n", prog, shellQuote(strings.Join(commands, " ")))
		for _, x := range s.list {
			if x.Flag == "" {
				continue
			}
			opt := "-l " + x.Flag
			if len(x.Flag) == 1 {
				opt = "-s " + x.Flag
			}
			if x.takesValue() {
				opt += " -r"
			}
			fmt.Fprintf(w, "complete -c %s %s -d %s\n", prog, opt, shellQuote(x.Doc))
		}
	default:
		return fmt.Errorf("unknown shell %q: give bash, zsh or fish", shell)
	}
	return nil
}

// shellQuote quotes v for a POSIX shell (and fish) in single quotes.
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// zshEscape escapes what _arguments reads specially in a description.
func zshEscape(v string) string {
	return strings.NewReplacer("[", `\[`, "]", `\]`, ":", `\:`).Replace(v)
}
