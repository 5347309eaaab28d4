package lens

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
)

// Bounds of the images the Lens keeps from recent calls' arguments: the
// store keeps arguments capped, which cuts any real image, so the call's
// page shows the images of the calls seen since the server started, the
// latest first out of room.
const (
	maxCachedImages     = 64
	maxCachedImageBytes = 16 << 20
	maxOneImage         = 4 << 20
	maxImagesPerCall    = 8
)

// imageCache keeps the base64 images of recent calls by stored call ID.
type imageCache struct {
	mu    sync.Mutex
	byID  map[string][]string
	order []string // oldest first
	bytes int
	max   int
	maxB  int
}

func newImageCache(n, b int) *imageCache {
	return &imageCache{byID: map[string][]string{}, max: n, maxB: b}
}

// keep finds the images in a call's arguments and keeps them. Arguments
// without the word "image" cost one scan.
func (c *imageCache) keep(id string, args json.RawMessage) {
	if len(args) == 0 || !bytes.Contains(args, []byte(`"image`)) {
		return
	}
	var imgs []string
	for _, x := range imageArgs(args, maxImagesPerCall) {
		if len(x) <= maxOneImage && imageType(x) != "" {
			imgs = append(imgs, x)
		}
	}
	if len(imgs) == 0 {
		return
	}
	size := 0
	for _, s := range imgs {
		size += len(s)
	}
	if size > c.maxB {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.order) > 0 && (len(c.order) >= c.max || c.bytes+size > c.maxB) {
		old := c.order[0]
		c.order = c.order[1:]
		for _, s := range c.byID[old] {
			c.bytes -= len(s)
		}
		delete(c.byID, old)
	}
	c.byID[id] = imgs
	c.order = append(c.order, id)
	c.bytes += size
}

// get returns the images kept for a call.
func (c *imageCache) get(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

// imageArgs returns, in a stable order (keys sorted), up to max strings
// found under "images" or "image" keys at any depth of a call's arguments.
func imageArgs(args json.RawMessage, max int) []string {
	var v any
	if len(args) == 0 || json.Unmarshal(args, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any, bool)
	walk = func(v any, in bool) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(x[k], k == "images" || k == "image")
			}
		case []any:
			for _, e := range x {
				walk(e, in)
			}
		case string:
			if in && len(out) < max {
				out = append(out, x)
			}
		}
	}
	walk(v, false)
	return out
}
