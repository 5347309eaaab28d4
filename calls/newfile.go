package calls

import (
	"io"
	"io/fs"
	"os"
)

// WriteNewFile creates the file name, which must not exist yet, with
// permissions perm (before the umask), and copies r into it. A name that
// exists, a symlink included, is not followed or touched: the error then
// matches fs.ErrExist. After a failed copy the partial file stays, for the
// caller to remove.
func WriteNewFile(name string, r io.Reader, perm fs.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
