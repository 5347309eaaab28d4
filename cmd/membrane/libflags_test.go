package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Libraries speak in codes and typed values; only cmd/ names flags. These
// are the library strings that still name one of membrane's or the
// orchestrator's flags, by file: the debt to pay (each becomes a typed
// error or finding that cmd/ words), not a list to grow. A new one fails
// TestLibrariesNameNoFlags; one paid off must be struck from here.
var libraryFlagDebt = map[string][]string{}

var flagPattern = regexp.MustCompile(`--[a-z][a-z-]+`)

// programFlags are the flags membrane and the orchestrator define, read
// from their settings definitions.
func programFlags(t *testing.T) map[string]bool {
	t.Helper()
	flags := map[string]bool{}
	for _, x := range define("membrane", &Config{}).All() {
		if x.Flag != "" {
			flags["--"+x.Flag] = true
		}
	}
	// The orchestrator is another main package: read its definitions.
	src, err := os.ReadFile("../orchestrator/config.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`Flag: "([a-z][a-z-]+)"`).FindAllStringSubmatch(string(src), -1) {
		flags["--"+m[1]] = true
	}
	if !flags["--base-url"] || !flags["--ollama-host"] {
		t.Fatalf("flag list looks wrong: %v", flags)
	}
	return flags
}

func TestLibrariesNameNoFlags(t *testing.T) {
	t.Parallel()
	flags := programFlags(t)
	found := map[string][]string{}
	for _, lib := range []string{"calls", "diag", "mcp", "ollama", "sandbox"} {
		root := filepath.Join("..", "..", lib)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			rel := filepath.ToSlash(strings.TrimPrefix(path, filepath.Join("..", "..")+string(filepath.Separator)))
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				// "--name" alone is an argument to another program (bwrap
				// --unshare-net, prlimit --cpu=): only flags in words count.
				if !strings.Contains(s, " ") {
					return true
				}
				for _, m := range flagPattern.FindAllString(s, -1) {
					if flags[m] && !slices.Contains(found[rel], m) {
						found[rel] = append(found[rel], m)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for file, fl := range found {
		for _, f := range fl {
			if !slices.Contains(libraryFlagDebt[file], f) {
				t.Errorf("%s names the flag %s: return a typed error or code, and let cmd/ name the flag", file, f)
			}
		}
	}
	for file, fl := range libraryFlagDebt {
		for _, f := range fl {
			if !slices.Contains(found[file], f) {
				t.Errorf("%s no longer names %s: strike it from libraryFlagDebt", file, f)
			}
		}
	}
}
