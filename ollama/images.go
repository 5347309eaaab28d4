package ollama

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/membrane-mcp/membrane/calls"
)

// Limits on the images of one call.
const (
	maxImages     = 16
	maxImageBytes = 20 << 20
)

// loadImage turns one images entry into image bytes. An entry is a data:
// URI, plain base64 of an image, or the path of a file inside workspace (the
// session's sandbox directory). A path may not leave the workspace, by ".."
// or by a symbolic link. The error is worded for the model that sent it.
func loadImage(ctx context.Context, workspace, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("is empty")
	}
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return nil, errors.New("is a data: URI but not a base64 one (want data:image/png;base64,...)")
		}
		b, err := decodeBase64(data)
		if err != nil {
			return nil, fmt.Errorf("has bad base64 data: %v", err)
		}
		return checkImage(b)
	}
	if looksBase64(s) {
		if b, err := decodeBase64(s); err == nil {
			if _, err := checkImage(b); err == nil {
				return b, nil
			}
		}
	}
	return readWorkspaceImage(ctx, workspace, s)
}

// imageWorkspace is the workspace directory image paths are read in: that
// of the workspace handle when the call names one (resolved as the sandbox
// tools resolve it, so a sessionless call sees a handle's files), else the
// session's own. Call release once the images are read.
func imageWorkspace(req *calls.Request, handle string) (dir string, release func(), err error) {
	if handle == "" {
		return req.Session.Workspace(), func() {}, nil
	}
	rw, err := calls.ResolveWorkspace(req, handle)
	if err != nil {
		return "", nil, fmt.Errorf("invalid arguments: %v", err)
	}
	return rw.Session.Workspace(), rw.Release, nil
}

// looksBase64 reports whether s could be base64 image data rather than a
// file name: long enough and made only of base64 characters.
func looksBase64(s string) bool {
	if len(s) < 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == '\n' || c == '\r') {
			return false
		}
	}
	return true
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' {
			return -1
		}
		return r
	}, s)
	if len(s) > maxImageBytes*4/3+4 {
		return nil, fmt.Errorf("more than %d MiB", maxImageBytes>>20)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not valid base64")
}

// readWorkspaceImage reads an image file from the session workspace with
// calls.ReadWorkspaceFile: a regular file only (a FIFO the sandbox made is
// refused at once, never waited on), inside the workspace only, at most
// maxImageBytes, and given as the sandbox shows it (/workspace/plot.png) or
// relative to the workspace. The error never names the host directory.
func readWorkspaceImage(ctx context.Context, workspace, p string) ([]byte, error) {
	b, err := calls.ReadWorkspaceFile(ctx, workspace, p, maxImageBytes)
	switch {
	case errors.Is(err, calls.ErrNoWorkspace):
		return nil, errors.New("is not base64 image data, and this session has no workspace to read a file from (run a sandbox tool first and pass the workspace handle it returned as \"workspace\", or send the image as base64)")
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("is neither base64 image data nor a file in the session workspace (%q not found)", p)
	case errors.Is(err, calls.ErrFileTooLarge):
		return nil, fmt.Errorf("is larger than %d MiB", maxImageBytes>>20)
	case err != nil:
		return nil, err
	}
	return checkImage(b)
}

// checkImage accepts the image formats Ollama's vision models read.
func checkImage(b []byte) ([]byte, error) {
	if len(b) > maxImageBytes {
		return nil, fmt.Errorf("is larger than %d MiB", maxImageBytes>>20)
	}
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")),
		bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}),
		bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")),
		len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP",
		bytes.HasPrefix(b, []byte("BM")):
		return b, nil
	}
	return nil, errors.New("is not a PNG, JPEG, GIF, WebP or BMP image")
}
