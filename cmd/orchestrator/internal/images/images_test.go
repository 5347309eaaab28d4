package images

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termimage"
)

// hostilePNG is a PNG signature followed by bytes that would act on a
// terminal if they reached it raw.
var hostilePNG = []byte("\x89PNG\r\n\x1a\n\x1b]52;c;ZXZpbA==\a\x1b[2J\x1b_Ga=d\x1b\\")

func imageRouter(t *testing.T, content ...calls.Content) Tools {
	t.Helper()
	r := calls.NewRouter(nil)
	if err := r.Add(calls.Call{Name: "draw", InputSchema: json.RawMessage(`{"type":"object"}`), Kind: calls.KindTool,
		Handler: calls.HandlerFunc(func(context.Context, *calls.Request) (*calls.Result, error) {
			return &calls.Result{Content: append([]calls.Content{{Type: calls.ContentText, Text: "drawn"}}, content...)}, nil
		})}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestImagesSavedAndShown(t *testing.T) {
	for _, c := range []struct {
		name   string
		mode   string
		inline termimage.Protocol
	}{
		{"no terminal protocol", Auto, termimage.None},
		{"kitty", Auto, termimage.Kitty},
		{"iterm2", Auto, termimage.ITerm2},
		{"save only", Save, termimage.Kitty},
		{"off", Off, termimage.Kitty},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			u := display.New(&out, &out, nil)
			dir := filepath.Join(t.TempDir(), "images")
			show := &Show{Mode: c.mode, Inline: c.inline, Dir: dir, UI: u}
			tools := Showing{Tools: imageRouter(t,
				calls.Content{Type: calls.ContentImage, Data: hostilePNG, MIMEType: "image/png"},
				calls.Content{Type: calls.ContentImage, Data: []byte("\x1b[31mnot an image"), MIMEType: "image/png"},
				calls.Content{Type: calls.ContentLink, URI: "workspace://w/big\x1b[2J.bin", Name: "big\x1b]0;x\a.bin", MIMEType: "application/octet-stream", Size: 50_000_000},
			), Show: show}
			res, err := tools.Call(t.Context(), "draw", &calls.Request{})
			if err != nil || res.TextOf() != "drawn" {
				t.Fatalf("call: %v %v", err, res)
			}
			got := out.String()
			// No escape the server sent reaches the terminal.
			for _, raw := range []string{"\x1b]52", "\x1b[2J", "\x1b[31m", "\x1b]0;", "\x1b_Ga=d"} {
				if strings.Contains(got, raw) {
					t.Fatalf("a raw server escape %q reached the terminal:\n%q", raw, got)
				}
			}
			saved, _ := filepath.Glob(filepath.Join(dir, "*"))
			if c.mode == Off {
				if len(saved) != 0 || got != "" {
					t.Fatalf("off: saved %v, printed %q", saved, got)
				}
				return
			}
			if len(saved) != 1 || filepath.Base(saved[0]) != "001-draw.png" {
				t.Fatalf("saved %v, want one PNG (the fake one refused)", saved)
			}
			if b, _ := os.ReadFile(saved[0]); !bytes.Equal(b, hostilePNG) {
				t.Errorf("the saved file is not the image")
			}
			if fi, _ := os.Stat(saved[0]); fi.Mode().Perm() != 0o600 {
				t.Errorf("the image is readable by others: %v", fi.Mode())
			}
			if !strings.Contains(got, "draw returned an image (image/png, "+strconv.Itoa(len(hostilePNG))+" bytes): "+saved[0]) {
				t.Errorf("the path is not printed:\n%q", got)
			}
			if !strings.Contains(got, "bytes are not PNG") || !strings.Contains(got, "returned the resource big␛]0;x␇.bin") {
				t.Errorf("the refused image or the link is not shown safely:\n%q", got)
			}
			kitty := strings.Contains(got, "\x1b_Ga=T,f=100")
			iterm := strings.Contains(got, "\x1b]1337;File=inline=1")
			if kitty != (c.inline == termimage.Kitty && c.mode == Auto) || iterm != (c.inline == termimage.ITerm2 && c.mode == Auto) {
				t.Errorf("inline drawing: kitty %v, iterm2 %v, for %s", kitty, iterm, c.name)
			}
			// Every escape left is ours: kitty's or iTerm2's framing.
			rest := regexp.MustCompile("\x1b_G[a-zA-Z0-9=,]*;[A-Za-z0-9+/=]*\x1b\\\\|\x1b\\]1337;File=[a-zA-Z0-9=;]*:[A-Za-z0-9+/=]*\a").ReplaceAllString(got, "")
			if strings.ContainsAny(rest, "\x1b\a") {
				t.Errorf("an escape that is not an image drawing: %q", rest)
			}
		})
	}
}
