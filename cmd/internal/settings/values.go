package settings

import (
	"cmp"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/membrane-mcp/membrane/calls"
)

// Check is a test of a setting's value; the error says what is wrong with
// it in words ("must be at least 1").
type Check[T any] func(T) error

// checker joins a setting's checks into one, run on the current value.
func checker[T any](p *T, checks []Check[T]) func() error {
	return func() error {
		for _, c := range checks {
			if err := c(*p); err != nil {
				return err
			}
		}
		return nil
	}
}

// String defines a text setting.
func (s *Set) String(p *string, def string, d Def, checks ...Check[string]) *Setting {
	*p = def
	return s.add(&Setting{Def: d, Kind: KindString,
		set:    func(v string) error { *p = v; return nil },
		text:   func() string { return *p },
		encode: func() any { return *p },
		check:  checker(p, checks),
		reset:  func() { *p = def },
	})
}

// ConfigFile defines the text setting that names the config file. Load
// reads it from the flags and the environment first, then the file.
func (s *Set) ConfigFile(p *string, d Def) *Setting {
	if d.Key != "" {
		panic("settings: the config file cannot be set in itself")
	}
	x := s.String(p, "", d)
	s.config = x
	return x
}

// Bool defines a true-or-false setting.
func (s *Set) Bool(p *bool, def bool, d Def) *Setting {
	*p = def
	return s.add(&Setting{Def: d, Kind: KindBool,
		set: func(v string) error {
			b, ok := ParseBool(v)
			if !ok {
				return fmt.Errorf("%q is not true or false", v)
			}
			*p = b
			return nil
		},
		text:   func() string { return strconv.FormatBool(*p) },
		encode: func() any { return *p },
		check:  func() error { return nil },
		reset:  func() { *p = def },
	})
}

// ParseBool reads true/false, 1/0, yes/no or on/off, in any case.
func ParseBool(v string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, true
	case "0", "f", "false", "no", "n", "off":
		return false, true
	}
	return false, false
}

// Int defines a whole-number setting.
func (s *Set) Int(p *int, def int, d Def, checks ...Check[int]) *Setting {
	*p = def
	return s.add(&Setting{Def: d, Kind: KindInt,
		set: func(v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			*p = n
			return nil
		},
		text:   func() string { return strconv.Itoa(*p) },
		encode: func() any { return *p },
		check:  checker(p, checks),
		reset:  func() { *p = def },
	})
}

// Float defines a number setting.
func (s *Set) Float(p *float64, def float64, d Def, checks ...Check[float64]) *Setting {
	*p = def
	return s.add(&Setting{Def: d, Kind: KindFloat,
		set: func(v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("%q is not a number", v)
			}
			*p = f
			return nil
		},
		text:   func() string { return strconv.FormatFloat(*p, 'g', -1, 64) },
		encode: func() any { return *p },
		check:  checker(p, checks),
		reset:  func() { *p = def },
	})
}

// Duration defines a duration setting: "90s", "5m", or a bare number of
// seconds.
func (s *Set) Duration(p *time.Duration, def time.Duration, d Def, checks ...Check[time.Duration]) *Setting {
	*p = def
	return s.add(&Setting{Def: d, Kind: KindDuration,
		set: func(v string) error {
			dur, err := ParseDuration(v)
			if err != nil {
				return err
			}
			*p = dur
			return nil
		},
		text:   func() string { return p.String() },
		encode: func() any { return p.String() },
		check:  checker(p, checks),
		reset:  func() { *p = def },
	})
}

// maxSeconds bounds a bare number of seconds (about 31 years).
const maxSeconds = 1e9

// ParseDuration reads a Go duration ("1h30m") or a bare number of
// seconds ("30", "0.5"). Negative durations are refused.
func ParseDuration(v string) (time.Duration, error) {
	t := strings.TrimSpace(v)
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		if !(n >= 0) || n > maxSeconds {
			return 0, fmt.Errorf("%q seconds is out of range (0 to %g)", v, float64(maxSeconds))
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not %s", v, KindDuration.words())
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

// Size defines a size in bytes: "1048576", "64KiB", "1GB".
func (s *Set) Size(p *int64, def int64, d Def, checks ...Check[int64]) *Setting {
	*p = def
	return s.add(&Setting{Def: d, Kind: KindSize,
		set: func(v string) error {
			n, err := ParseSize(v)
			if err != nil {
				return err
			}
			*p = n
			return nil
		},
		text:   func() string { return FormatSize(*p) },
		encode: func() any { return FormatSize(*p) },
		check:  checker(p, checks),
		reset:  func() { *p = def },
	})
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseSize reads a number of bytes with an optional unit: KiB, MiB, GiB
// and TiB are powers of 1024 (as are K, M, G, T), KB, MB, GB and TB powers
// of 1000.
func ParseSize(v string) (int64, error) {
	str := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	num := str
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || !(f >= 0) || math.IsInf(f, 0) || num == "" {
		return 0, fmt.Errorf("%q is not %s", v, KindSize.words())
	}
	n := f * float64(mult)
	if n >= 1<<62 {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return int64(n), nil
}

// FormatSize writes n in the largest binary unit that divides it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// List defines a list of text values: a repeatable flag, a comma-separated
// variable, a YAML list (or one value) in the file. Each check runs on each
// item.
func (s *Set) List(p *[]string, def []string, d Def, checks ...Check[string]) *Setting {
	*p = slices.Clone(def)
	return s.add(&Setting{Def: d, Kind: KindList,
		set:    func(v string) error { *p = append(*p, v); return nil },
		clear:  func() { *p = nil },
		text:   func() string { return strings.Join(*p, ",") },
		encode: func() any { return slices.Clone(*p) },
		check: func() error {
			for _, v := range *p {
				for _, c := range checks {
					if err := c(v); err != nil {
						return fmt.Errorf("%q: %w", redactUserinfo(v), err)
					}
				}
			}
			return nil
		},
		reset: func() { *p = slices.Clone(def) },
	})
}

// Value defines a structured setting that only the config file can give,
// such as a list of tool definitions. The file's value is decoded strictly:
// a key that T (through its yaml tags) does not have is an error that
// suggests the nearest one.
func Value[T any](s *Set, p *T, d Def, checks ...Check[T]) *Setting {
	if d.Flag != "" || d.Env != "" || d.Key == "" {
		panic("settings: a structured value has a file key and no flag or variable")
	}
	var zero T
	return s.add(&Setting{Def: d, Kind: KindValue,
		set: func(string) error { return fmt.Errorf("set %s in the config file", d.Key) },
		node: func(n *yaml.Node) error {
			if err := knownFields(n, reflect.TypeFor[T](), d.Key); err != nil {
				return err
			}
			var v T
			if err := n.Decode(&v); err != nil {
				return cleanDecodeError(err)
			}
			*p = v
			return nil
		},
		text: func() string {
			b, _ := yaml.Marshal(*p)
			if s := strings.TrimSpace(string(b)); s != "null" && s != "[]" && s != "{}" {
				return s
			}
			return ""
		},
		encode: func() any { return *p },
		check:  checker(p, checks),
		reset:  func() { *p = zero },
	})
}

// Positive refuses zero and below.
func Positive[T cmp.Ordered](v T) error {
	var zero T
	if v <= zero {
		return fmt.Errorf("must be more than 0")
	}
	return nil
}

// AtLeast refuses values under min.
func AtLeast[T cmp.Ordered](min T) Check[T] {
	return func(v T) error {
		if v < min {
			return fmt.Errorf("must be at least %v", min)
		}
		return nil
	}
}

// Between refuses values outside [lo, hi].
func Between[T cmp.Ordered](lo, hi T) Check[T] {
	return func(v T) error {
		if v < lo || v > hi {
			return fmt.Errorf("must be from %v to %v", lo, hi)
		}
		return nil
	}
}

// HTTPURL refuses what is not an http or https URL with a host; "" (not
// set) passes.
func HTTPURL(example string) Check[string] {
	return func(v string) error {
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("is not an http(s) URL such as %s", example)
		}
		return nil
	}
}

// OneOf refuses values not in the list, suggesting the nearest.
func OneOf(values ...string) Check[string] {
	return func(v string) error {
		if slices.Contains(values, v) {
			return nil
		}
		shown := slices.DeleteFunc(slices.Clone(values), func(s string) bool { return s == "" })
		msg := fmt.Sprintf("must be %s", orList(shown))
		if near := calls.Nearest(v, values); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		return fmt.Errorf("%s", msg)
	}
}

func orList(vs []string) string {
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}
