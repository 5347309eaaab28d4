package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termimage"
	"github.com/membrane-mcp/membrane/cmd/orchestrator/internal/termsafe"
)

// The ways --images shows the images tools return.
const (
	imagesAuto = "auto" // save, and draw inline on a terminal that can
	imagesSave = "save" // save and print the path only
	imagesOff  = "off"  // neither
)

// maxInlineImage bounds an image drawn inline; a larger one is only saved.
const maxInlineImage = 8 << 20

// imageShow saves the images tool results carry and tells the user where
// they are, drawing them inline where the terminal has a protocol for it.
type imageShow struct {
	mode   string
	inline termimage.Protocol // None: never draw
	u      *ui

	mu  sync.Mutex
	dir string // made on first use when the setting leaves it empty
	n   int
}

// showingTools is the offered tools with each result's images shown.
type showingTools struct {
	offered
	show *imageShow
}

func (t showingTools) Call(ctx context.Context, name string, req *calls.Request) (*calls.Result, error) {
	res, err := t.offered.Call(ctx, name, req)
	if err == nil && res != nil {
		t.show.result(name, res)
	}
	return res, err
}

// result shows the images and resource links of one tool result.
func (s *imageShow) result(tool string, res *calls.Result) {
	if s.mode == imagesOff {
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
			s.u.media([]string{fmt.Sprintf("  ↳ %s returned the resource %s (%s%s): %s",
				termsafe.Line(tool), termsafe.Line(c.Name), termsafe.Line(c.MIMEType), size, termsafe.Line(c.URI))}, "")
		}
	}
}

// image saves one image and prints its path, then draws it inline when
// the terminal can. Its type comes from its bytes, not from what the
// server said.
func (s *imageShow) image(tool string, c calls.Content) {
	mt := calls.SniffMIME("image"+extOf(c.MIMEType), c.Data)
	if !calls.IsImageMIME(mt) {
		s.u.media([]string{fmt.Sprintf("  ↳ %s returned an image whose bytes are not PNG, JPEG, GIF, WebP or SVG (it said %s); not saved",
			termsafe.Line(tool), termsafe.Line(c.MIMEType))}, "")
		return
	}
	path, err := s.save(tool, mt, c.Data)
	if err != nil {
		s.u.media([]string{fmt.Sprintf("  ↳ %s returned an image (%s, %d bytes); it could not be saved: %v", termsafe.Line(tool), mt, len(c.Data), err)}, "")
		return
	}
	draw := ""
	if s.mode == imagesAuto && len(c.Data) <= maxInlineImage {
		draw = s.inline.Encode(c.Data, mt)
	}
	s.u.media([]string{fmt.Sprintf("  ↳ %s returned an image (%s, %d bytes): %s", termsafe.Line(tool), mt, len(c.Data), path)}, draw)
}

// save writes data to a new file of the image directory, readable only by
// the user.
func (s *imageShow) save(tool, mt string, data []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		d, err := os.MkdirTemp("", "orchestrator-images-")
		if err != nil {
			return "", err
		}
		s.dir = d
	} else if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return "", err
	}
	s.n++
	name := fmt.Sprintf("%03d-%s%s", s.n, safeName(tool), extOf(mt))
	path := filepath.Join(s.dir, name)
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

// media writes lines of the orchestrator's own, then an inline image
// drawing (escapes made by termimage from base64 only), on errw.
func (u *ui) media(lines []string, draw string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stopSpinner()
	u.endLine()
	for _, l := range lines {
		fmt.Fprintln(u.errw, u.style(l, dim))
	}
	if draw != "" {
		io.WriteString(u.errw, draw)
	}
}
