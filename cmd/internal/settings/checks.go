package settings

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// NoSpace refuses a value with whitespace in it (a token, say).
func NoSpace(v string) error {
	if strings.ContainsAny(v, " \t\r\n") {
		return errors.New("must not contain whitespace")
	}
	return nil
}

// Dir refuses a path that is not an existing directory; "" (not set)
// passes.
func Dir(v string) error {
	if v == "" {
		return nil
	}
	if fi, err := os.Stat(v); err != nil || !fi.IsDir() {
		return errors.New("is not a directory")
	}
	return nil
}

// Executable refuses a path that is not an executable file; "" (not set)
// passes.
func Executable(v string) error {
	if v == "" {
		return nil
	}
	if fi, err := os.Stat(v); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("is not an executable file")
	}
	return nil
}

// HostPort refuses what is not host:port, such as example; "" (not set)
// passes.
func HostPort(example string) Check[string] {
	return func(v string) error {
		if _, _, err := net.SplitHostPort(v); v != "" && err != nil {
			return fmt.Errorf("%q is not host:port, such as %s", v, example)
		}
		return nil
	}
}

// EnvName refuses what is not an environment variable's name.
func EnvName(v string) error {
	ok := v != "" && !(v[0] >= '0' && v[0] <= '9')
	for _, r := range v {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%q is not an environment variable name (letters, digits and _, not starting with a digit)", v)
	}
	return nil
}
