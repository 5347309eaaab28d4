package examples

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
	Line int
}

// parseDockerfile splits a Dockerfile into instructions: comments dropped,
// backslash continuations joined. It is enough for the checks below, not a
// full BuildKit parser (no heredocs, no escape directive).
func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
		cur.Reset()
	}
	return out
}

// dockerfileFacts is what checkDockerfile found, for other tests to use.
type dockerfileFacts struct {
	Stages    []string // stage names in order ("" for an unnamed one)
	BuildPkgs []string // the packages the go build line builds
	Apt       []string // packages the final stage installs with apt-get
	Expose    []string
	User      string // the final stage's USER
}

var goBuildPkg = regexp.MustCompile(`(?:^|\s)(\./cmd/[\w./-]+)`)

// checkDockerfile lists what is wrong with a Dockerfile whose build context
// is root.
func checkDockerfile(src, root string) (dockerfileFacts, []string) {
	var f dockerfileFacts
	var bad []string
	add := func(in instruction, format string, args ...any) {
		bad = append(bad, fmt.Sprintf("line %d (%s): %s", in.Line, in.Cmd, fmt.Sprintf(format, args...)))
	}
	stage := -1
	for _, in := range parseDockerfile(src) {
		fields := strings.Fields(in.Args)
		switch in.Cmd {
		case "FROM":
			stage++
			name := ""
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				name = fields[2]
			}
			if slices.Contains(f.Stages, name) && name != "" {
				add(in, "stage %q named twice", name)
			}
			f.Stages = append(f.Stages, name)
			f.Apt, f.Expose, f.User = nil, nil, ""
		case "COPY":
			var from string
			var srcs []string
			for _, a := range fields {
				switch {
				case strings.HasPrefix(a, "--from="):
					from = strings.TrimPrefix(a, "--from=")
				case strings.HasPrefix(a, "--"):
				default:
					srcs = append(srcs, a)
				}
			}
			if len(srcs) < 2 {
				add(in, "COPY needs a source and a destination")
				continue
			}
			srcs = srcs[:len(srcs)-1]
			if from != "" {
				if !slices.Contains(f.Stages[:stage], from) {
					add(in, "--from=%s is not an earlier stage (stages: %q)", from, f.Stages[:stage])
				}
				continue
			}
			for _, s := range srcs {
				if _, err := os.Stat(filepath.Join(root, s)); err != nil {
					add(in, "source %s is not in the build context: %v", s, err)
				}
			}
		case "RUN":
			if i := strings.Index(in.Args, "go build"); i >= 0 {
				for _, m := range goBuildPkg.FindAllStringSubmatch(in.Args[i:], -1) {
					pkg := m[1]
					f.BuildPkgs = append(f.BuildPkgs, pkg)
					if st, err := os.Stat(filepath.Join(root, pkg)); err != nil || !st.IsDir() {
						add(in, "go build %s: no such package directory", pkg)
					}
				}
				if len(f.BuildPkgs) == 0 {
					add(in, "go build builds no ./cmd/ package")
				}
			}
			if i := strings.Index(in.Args, "apt-get install"); i >= 0 {
				rest := in.Args[i+len("apt-get install"):]
				if j := strings.IndexAny(rest, "&;|"); j >= 0 {
					rest = rest[:j]
				}
				for _, w := range strings.Fields(rest) {
					if !strings.HasPrefix(w, "-") {
						f.Apt = append(f.Apt, w)
					}
				}
			}
		case "EXPOSE":
			f.Expose = append(f.Expose, fields...)
		case "USER":
			f.User = in.Args
		}
	}
	if len(f.Stages) < 2 {
		bad = append(bad, fmt.Sprintf("%d stage(s): want a multi-stage build (build, then a small runtime)", len(f.Stages)))
	}
	for _, p := range []string{"bubblewrap", "python3"} {
		if !slices.Contains(f.Apt, p) {
			bad = append(bad, fmt.Sprintf("the runtime stage does not install %s", p))
		}
	}
	if u, _, _ := strings.Cut(f.User, ":"); u == "" || u == "root" || u == "0" {
		bad = append(bad, fmt.Sprintf("the runtime stage runs as %q, want an unprivileged user", f.User))
	}
	return f, bad
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "cmd/membrane/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	facts, problems := checkDockerfile(string(src), root)
	for _, p := range problems {
		t.Error(p)
	}
	if !slices.Contains(facts.BuildPkgs, "./cmd/membrane") {
		t.Errorf("the image does not build ./cmd/membrane (builds %q)", facts.BuildPkgs)
	}
	if !slices.Contains(facts.Expose, "8765") {
		t.Errorf("EXPOSE %q lacks 8765, the port compose.yaml publishes", facts.Expose)
	}

	// The build line must work as written: same packages, no cgo.
	args := append([]string{"build", "-trimpath", "-o", t.TempDir() + "/"}, facts.BuildPkgs...)
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go %s (as the Dockerfile does): %v\n%s", strings.Join(args, " "), err, out)
	}

	// Nothing the build needs may be left out of the context by .dockerignore.
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"go.mod", "go.sum"}
	list := exec.CommandContext(t.Context(), "go", append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}"}, facts.BuildPkgs...)...)
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dir := range strings.Fields(string(out)) {
		if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
			need = append(need, rel)
		}
	}
	for _, p := range need {
		if pat := dockerignored(string(ignore), p); pat != "" {
			t.Errorf(".dockerignore pattern %q leaves %s out of the build context", pat, p)
		}
	}
	for _, secret := range []string{"membrane.env", "prod.env", ".env"} {
		if dockerignored(string(ignore), secret) == "" {
			t.Errorf(".dockerignore lets %s (a token file) into the build context", secret)
		}
	}
}

// TestDockerfileChecksCatchMistakes shows the checks above able to fail.
func TestDockerfileChecksCatchMistakes(t *testing.T) {
	root := repoRoot(t)
	good, err := os.ReadFile(filepath.Join(root, "cmd/membrane/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new, want string }{
		{"copy from an unknown stage", "COPY --from=build", "COPY --from=builder", "not an earlier stage"},
		{"a package that does not exist", "./cmd/membrane ./cmd/orchestrator", "./cmd/membrane ./cmd/nothere", "./cmd/nothere"},
		{"runs as root", "USER 10001:10001", "USER root", "unprivileged"},
		{"no bubblewrap", "bubblewrap python3", "python3", "bubblewrap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(good), tt.old) {
				t.Fatalf("the Dockerfile no longer contains %q: update this test", tt.old)
			}
			_, problems := checkDockerfile(strings.Replace(string(good), tt.old, tt.new, 1), root)
			if !slices.ContainsFunc(problems, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("problems = %q, want one mentioning %q", problems, tt.want)
			}
		})
	}
}

// dockerignored returns the .dockerignore pattern that excludes path (or
// one of its parent directories), or "". It handles the pattern forms this
// repository uses: *, ?, a leading **/, and ! exceptions.
func dockerignored(ignore, path string) string {
	var hit string
	for _, line := range strings.Split(ignore, "\n") {
		pat := strings.TrimSpace(line)
		if pat == "" || strings.HasPrefix(pat, "#") {
			continue
		}
		negate := strings.HasPrefix(pat, "!")
		pat = strings.TrimPrefix(pat, "!")
		re := globRegexp(strings.TrimPrefix(filepath.Clean(pat), "/"))
		matched := false
		parts := strings.Split(filepath.ToSlash(path), "/")
		for i := range parts {
			if re.MatchString(strings.Join(parts[:i+1], "/")) {
				matched = true
				break
			}
		}
		if matched {
			if negate {
				hit = ""
			} else {
				hit = pat
			}
		}
	}
	return hit
}

func globRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case strings.HasPrefix(pat[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(pat[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
