package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// images returns the image contents of a result.
func images(res *sdk.CallToolResult) []*sdk.ImageContent {
	var out []*sdk.ImageContent
	for _, c := range res.Content {
		if im, ok := c.(*sdk.ImageContent); ok {
			out = append(out, im)
		}
	}
	return out
}

func links(res *sdk.CallToolResult) []*sdk.ResourceLink {
	var out []*sdk.ResourceLink
	for _, c := range res.Content {
		if l, ok := c.(*sdk.ResourceLink); ok {
			out = append(out, l)
		}
	}
	return out
}

// checked is call with the result checked against the tool's declared
// output schema.
func checked(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) ran {
	t.Helper()
	r := call(t, cs, tool, args)
	schemas := mcptest.OutputSchemas(t, cs, nil)
	mcptest.CheckStructured(t, tool, schemas[tool], r.res)
	return r
}

func requireMatplotlib(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import matplotlib").Run(); err != nil {
		mcptest.Require(t, "matplotlib is not installed for /usr/bin/python3 (apt-get install python3-matplotlib; make test-deps installs it)")
	}
}

// TestPlotComesBackAsImage: a chart python_run draws with matplotlib into
// out/ comes back as PNG image content that decodes, with a control: a
// call that writes nothing returns no image.
func TestPlotComesBackAsImage(t *testing.T) {
	requireMatplotlib(t)
	cs := connect(t, newTestSandbox(t, nil))
	plain := checked(t, cs, "python_run", map[string]any{"code": "print(1)"})
	if len(images(plain.res)) != 0 || len(links(plain.res)) != 0 {
		t.Fatalf("a call that wrote no file returned files:\n%s", plain.text)
	}
	r := checked(t, cs, "python_run", map[string]any{"code": `
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [4, 1, 9])
plt.title("chart")
plt.savefig("out/chart.png", dpi=50)
print("saved")
`, "timeout_s": 50})
	if ok(t, r) != "saved\n" {
		t.Fatalf("stdout: %q", r.stdout())
	}
	ims := images(r.res)
	if len(ims) != 1 || ims[0].MIMEType != "image/png" {
		t.Fatalf("want one PNG image, got %d:\n%s", len(ims), r.text)
	}
	img, err := png.Decode(bytes.NewReader(ims[0].Data))
	if err != nil {
		t.Fatalf("the image does not decode as PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Errorf("image is %v, want a chart", b)
	}
	if !strings.Contains(r.text, "/workspace/out/chart.png (image/png") {
		t.Errorf("the text does not name the file:\n%s", r.text)
	}
	// An unchanged file does not come back again.
	again := checked(t, cs, "sh", map[string]any{"cmd": "true"})
	if len(images(again.res)) != 0 {
		t.Errorf("an unchanged out/chart.png came back again")
	}
}

// TestSVGAndNamedFiles: an SVG comes back as image content; a file named
// in files comes back from anywhere in the workspace; a 50 MB file comes
// back as a resource link only.
func TestSVGAndNamedFiles(t *testing.T) {
	cs := connect(t, newTestSandbox(t, func(c *Config) { c.FileSizeBytes = 64 << 20 }))
	svg := `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`
	r := checked(t, cs, "sh", map[string]any{"cmd": "printf '%s' '" + svg + "' > out/box.svg"})
	ok(t, r)
	ims := images(r.res)
	if len(ims) != 1 || ims[0].MIMEType != "image/svg+xml" || string(ims[0].Data) != svg {
		t.Fatalf("want the SVG as image content, got %d images:\n%s", len(ims), r.text)
	}
	r = checked(t, cs, "sh", map[string]any{"cmd": "head -c 50000000 /dev/zero > big.bin; echo hi > note.txt", "files": []string{"big.bin", "/workspace/note.txt"}, "timeout_s": 50})
	ok(t, r)
	ls := links(r.res)
	if len(images(r.res)) != 0 || len(ls) != 2 {
		t.Fatalf("want two resource links and no image:\n%s", r.text)
	}
	if ls[0].Name != "big.bin" || ls[0].Size == nil || *ls[0].Size != 50000000 || !strings.HasPrefix(ls[0].URI, "workspace://") {
		t.Errorf("big.bin link: %+v", ls[0])
	}
	var size int
	for _, c := range r.res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			size += len(tc.Text)
		}
	}
	if size > 64<<10 {
		t.Errorf("the 50 MB file travelled inline (%d bytes of text)", size)
	}
}

// TestReturnedFileRefusals: a named path outside the workspace and a
// FIFO are refused, each in the result's files, beside a file that is
// returned.
func TestReturnedFileRefusals(t *testing.T) {
	cs := connect(t, newTestSandbox(t, nil))
	r := checked(t, cs, "sh", map[string]any{"cmd": "mkfifo pipe; ln -s /etc/passwd link; echo ok > fine.txt",
		"files": []string{"../../etc/passwd", "/etc/passwd", "pipe", "link", "fine.txt"}})
	ok(t, r)
	files, _ := r.st["files"].([]any)
	if len(files) != 5 {
		t.Fatalf("want 5 file entries, got %v", r.st["files"])
	}
	for i, want := range []string{"outside", "outside", "not a regular file", "outside", ""} {
		f := files[i].(map[string]any)
		got, _ := f["error"].(string)
		if want == "" {
			if f["as"] != "link" || got != "" {
				t.Errorf("fine.txt: %v", f)
			}
			continue
		}
		if f["as"] != "none" || !strings.Contains(got, want) {
			t.Errorf("file %d: want a refusal saying %q, got %v", i, want, f)
		}
	}
	if strings.Contains(r.text, "root:x:0") {
		t.Errorf("a host file's content came back:\n%s", r.text)
	}
}

// TestFileTools: write_file puts text and base64 files into the workspace,
// sh sees them, read_file reads them back (an image as an image),
// list_files lists them; paths outside and FIFOs are refused.
func TestFileTools(t *testing.T) {
	cs := connect(t, newTestSandbox(t, nil))
	w := checked(t, cs, "write_file", map[string]any{"path": "data/in.txt", "content": "hello\n"})
	if w.res.IsError {
		t.Fatalf("write_file: %s", w.text)
	}
	pngBytes := tinyPNG(t)
	if w := checked(t, cs, "write_file", map[string]any{"path": "/workspace/pic.png", "content": base64.StdEncoding.EncodeToString(pngBytes), "encoding": "base64"}); w.res.IsError {
		t.Fatalf("write_file base64: %s", w.text)
	}
	if out := ok(t, sh(t, cs, "cat data/in.txt; wc -c < pic.png; touch mine; ls -ld data | cut -c1-10")); out != "hello\n"+strconv.Itoa(len(pngBytes))+"\ndrwxr-xr-x\n" {
		t.Fatalf("sh sees: %q", out)
	}
	if ok(t, sh(t, cs, "echo more >> data/in.txt && echo appended")) != "appended\n" {
		t.Fatal("sh cannot write to a file write_file made")
	}
	r := checked(t, cs, "read_file", map[string]any{"path": "data/in.txt"})
	if r.res.IsError || r.text != "hello\nmore\n" || r.st["encoding"] != "text" || r.st["content"] != "hello\nmore\n" {
		t.Fatalf("read_file text: %q %v", r.text, r.st)
	}
	r = checked(t, cs, "read_file", map[string]any{"path": "pic.png"})
	if ims := images(r.res); len(ims) != 1 || !bytes.Equal(ims[0].Data, pngBytes) {
		t.Fatalf("read_file of a PNG: %s", r.text)
	}
	r = checked(t, cs, "read_file", map[string]any{"path": "pic.png", "encoding": "base64"})
	if r.text != base64.StdEncoding.EncodeToString(pngBytes) {
		t.Fatalf("read_file base64: %q", r.text)
	}
	l := checked(t, cs, "list_files", map[string]any{})
	for _, want := range []string{"data/\n", "data/in.txt (11 bytes)", "pic.png", "out/", "mine"} {
		if !strings.Contains(l.text, want) {
			t.Errorf("list_files lacks %q:\n%s", want, l.text)
		}
	}
	if l := checked(t, cs, "list_files", map[string]any{"limit": 2}); l.st["next_offset"] != float64(2) {
		t.Errorf("a page of 2: %v", l.st)
	}

	ok(t, sh(t, cs, "mkfifo fifo; ln -s /etc hostetc"))
	for _, c := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"read_file", map[string]any{"path": "../../../etc/passwd"}, "outside"},
		{"read_file", map[string]any{"path": "/etc/passwd"}, "outside"},
		{"read_file", map[string]any{"path": "hostetc/passwd"}, "outside"},
		{"read_file", map[string]any{"path": "fifo"}, "not a regular file"},
		{"write_file", map[string]any{"path": "fifo", "content": "x"}, "not a regular file"},
		{"write_file", map[string]any{"path": "hostetc/evil", "content": "x"}, "outside"},
		{"write_file", map[string]any{"path": "/tmp/evil", "content": "x"}, "outside"},
		{"write_file", map[string]any{"path": "x", "content": "%%%", "encoding": "base64"}, "base64"},
		{"list_files", map[string]any{"path": "hostetc"}, "outside"},
	} {
		r := call(t, cs, c.tool, c.args)
		if !r.res.IsError || !strings.Contains(r.text, c.want) {
			t.Errorf("%s %v: want a refusal saying %q, got IsError=%v: %s", c.tool, c.args, c.want, r.res.IsError, r.text)
		}
	}
	if out := ok(t, sh(t, cs, "ls /etc/evil /tmp/evil 2>&1 | grep -c 'No such'")); out != "2\n" {
		t.Errorf("a refused write landed: %q", out)
	}
}

func tinyPNG(t *testing.T) []byte {
	t.Helper()
	// A 1x1 PNG made by the standard library.
	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFileToolsByHandle: without a session, write_file makes a workspace
// and returns its handle; read_file, list_files and sh given the handle
// see the file, and a returned file's URI names the handle; without the
// handle a call sees none of it.
func TestFileToolsByHandle(t *testing.T) {
	s := newTestSandbox(t, nil)
	r := calls.NewRouter(nil)
	if _, err := r.Sync("sandbox", s.Calls()); err != nil {
		t.Fatal(err)
	}
	store := calls.NewWorkspaces(&calls.WorkspacesOptions{Idle: time.Hour})
	defer store.Close()
	do := func(tool string, args map[string]any) *calls.Result {
		t.Helper()
		sess := calls.NewSession("")
		sess.BindWorkspaces(store, "", true)
		defer sess.Close()
		raw, _ := json.Marshal(args)
		res, err := r.Call(t.Context(), tool, &calls.Request{Arguments: raw, Session: sess})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	w := do("write_file", map[string]any{"path": "out/n.txt", "content": "kept\n"})
	h, _ := w.Structured.(map[string]any)["workspace"].(string)
	if w.IsError || !calls.ValidWorkspaceHandle(h) || !strings.Contains(w.TextOf(), h) {
		t.Fatalf("write_file without a session: handle %q\n%s", h, w.TextOf())
	}
	if uri := w.Structured.(map[string]any)["uri"]; uri != calls.WorkspaceURI(h, "out/n.txt") {
		t.Errorf("uri %v does not name the handle", uri)
	}
	if rd := do("read_file", map[string]any{"path": "out/n.txt", "workspace": h}); rd.IsError || !strings.HasPrefix(rd.TextOf(), "kept\n") {
		t.Fatalf("read_file by handle: %s", rd.TextOf())
	}
	if l := do("list_files", map[string]any{"workspace": h}); !strings.Contains(l.TextOf(), "out/n.txt") {
		t.Fatalf("list_files by handle: %s", l.TextOf())
	}
	sh := do("sh", map[string]any{"cmd": "cat out/n.txt; echo more > out/m.txt", "workspace": h})
	if sh.IsError || !strings.Contains(sh.TextOf(), "kept") || !strings.Contains(sh.TextOf(), calls.WorkspaceURI(h, "out/m.txt")) {
		t.Fatalf("sh by handle: %s", sh.TextOf())
	}
	// Control: no handle, a new empty workspace.
	if rd := do("read_file", map[string]any{"path": "out/n.txt"}); !rd.IsError {
		t.Fatalf("read_file without the handle saw the file: %s", rd.TextOf())
	}
}
