// Package images saves the images that tool results carry and tells the
// user where they are, drawing them inline on terminals that have a
// protocol for it (termimage). Their type comes from their bytes, never
// from what the server said, and nothing the server sent reaches the
// terminal raw.
package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/display"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termimage"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
)

// The modes of Show: how the images tools return are shown.
const (
	Auto = "auto" // save, and draw inline on a terminal that can
	Save = "save" // save and print the path only
	Off  = "off"  // neither
)

// maxInlineImage bounds an image drawn inline; a larger one is only saved.
const maxInlineImage = 8 << 20

// Show saves the images of tool results in Dir and tells UI where they
// are.
type Show struct {
	// Mode is Auto, Save or Off; empty means Auto.
	Mode string
	// Inline is the terminal's drawing protocol; termimage.None never
	// draws.
	Inline termimage.Protocol
	// UI is where the lines (and drawings) go.
	UI *display.UI

	mu sync.Mutex
	// Dir is where images are saved; empty means a new temporary
	// directory, made on first use.
	Dir string
	n   int
}

// Tools is a set of tools a model is offered.
type Tools interface {
	agent.Tools
	Len() int
}

// Showing is Tools with each result's images shown by Show.
type Showing struct {
	Tools
	Show *Show
}

// Call implements agent.Tools.
func (t Showing) Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error) {
	res, err := t.Tools.Call(ctx, name, req)
	if err == nil && res != nil {
		t.Show.Result(name, res)
	}
	return res, err
}

// Result shows the images and resource links of one tool result.
func (s *Show) Result(tool string, res *calls.Result) {
	if s.Mode == Off {
		return
	}
	for _, c := range res.Content {
		switch c.Type {
		case calls.ContentImage:
			s.image(tool, c)
		case calls.ContentLink:
			size := ""
			if c.Size >= 0 {
				size = ", " + fmt.Sprint(c.Size) + " bytes"
			}
			s.UI.Media([]string{fmt.Sprintf("  ↳ %s returned the resource %s (%s%s): %s",
				termsafe.Line(tool), termsafe.Line(c.Name), termsafe.Line(c.MIMEType), size, termsafe.Line(c.URI))}, "")
		}
	}
}

// image saves one image and prints its path, then draws it inline when
// the terminal can. Its type comes from its bytes, not from what the
// server said.
func (s *Show) image(tool string, c calls.Content) {
	mt := calls.SniffMIME("image"+extOf(c.MIMEType), c.Data)
	if !calls.IsImageMIME(mt) {
		s.UI.Media([]string{fmt.Sprintf("  ↳ %s returned an image whose bytes are not PNG, JPEG, GIF, WebP or SVG (it said %s); not saved",
			termsafe.Line(tool), termsafe.Line(c.MIMEType))}, "")
		return
	}
	path, err := s.save(tool, mt, c.Data)
	if err != nil {
		s.UI.Media([]string{fmt.Sprintf("  ↳ %s returned an image (%s, %d bytes); it could not be saved: %v", termsafe.Line(tool), mt, len(c.Data), err)}, "")
		return
	}
	draw := ""
	if (s.Mode == Auto || s.Mode == "") && len(c.Data) <= maxInlineImage {
		draw = s.Inline.Encode(c.Data, mt)
	}
	s.UI.Media([]string{fmt.Sprintf("  ↳ %s returned an image (%s, %d bytes): %s", termsafe.Line(tool), mt, len(c.Data), path)}, draw)
}

// save writes data to a new file of the image directory, readable only by
// the user.
func (s *Show) save(tool, mt string, data []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "orchestrator-images-")
		if err != nil {
			return "", err
		}
		s.Dir = d
	} else if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", err
	}
	s.n++
	name := fmt.Sprintf("%03d-%s%s", s.n, safeName(tool), extOf(mt))
	path := filepath.Join(s.Dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// safeName keeps the letters, digits, '-' and '_' of a tool name for a
// file name.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		}
		if b.Len() == 40 {
			break
		}
	}
	if b.Len() == 0 {
		return "tool"
	}
	return b.String()
}

func extOf(mt string) string {
	switch mt {
	case "image/png":
		return ".png"
	case "image/jpeg":
		return ".jpg"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "image/svg+xml":
		return ".svg"
	}
	return ".bin"
}
