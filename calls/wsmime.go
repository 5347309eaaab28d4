package calls

import (
	"bytes"
	"mime"
	"path"
	"strings"
	"unicode/utf8"
)

// MIMEByName guesses a file's type from its name.
func MIMEByName(p string) string {
	ext := strings.ToLower(path.Ext(p))
	switch ext {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".svg":
		return "image/svg+xml"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".csv":
		return "text/csv"
	case ".md":
		return "text/markdown"
	case ".txt", ".log":
		return "text/plain"
	case ".json":
		return "application/json"
	}
	if t := mime.TypeByExtension(ext); t != "" {
		if mt, _, err := mime.ParseMediaType(t); err == nil {
			return mt
		}
	}
	return "application/octet-stream"
}

// SniffMIME is the type of data, from its first bytes where they say (the
// image formats), else from the name. An image whose bytes do not match
// its name is not an image.
func SniffMIME(p string, data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		return "image/jpeg"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "image/webp"
	case bytes.HasPrefix(data, []byte("GIF87a")) || bytes.HasPrefix(data, []byte("GIF89a")):
		return "image/gif"
	}
	byName := MIMEByName(p)
	if byName == "image/svg+xml" {
		if isSVG(data) {
			return byName
		}
		return "text/plain"
	}
	if IsImageMIME(byName) {
		return "application/octet-stream"
	}
	if byName == "application/octet-stream" && utf8.Valid(data) {
		return "text/plain"
	}
	return byName
}

// isSVG reports whether data is UTF-8 text whose first element is <svg.
func isSVG(data []byte) bool {
	head := data[:min(len(data), 4096)]
	if !utf8.Valid(data) {
		return false
	}
	return bytes.Contains(head, []byte("<svg"))
}

// IsImageMIME reports whether mt is an image type that returns as MCP
// image content: PNG, JPEG, SVG, WebP or GIF.
func IsImageMIME(mt string) bool {
	switch mt {
	case "image/png", "image/jpeg", "image/svg+xml", "image/webp", "image/gif":
		return true
	}
	return false
}
