// Package settings defines each of a program's settings once (its flag,
// environment variable, config file key, type, default, check and one line
// of doc) and from that one definition reads the command line, the
// environment and a YAML or JSON config file, prints --help and the
// README's table, and names the setting, as the user wrote it, in every
// error.
//
// Precedence, highest first: flags, environment variables, the config
// file, the defaults. A list given by a flag or a variable replaces the
// file's; repeated flags add up.
//
// Durations are Go durations ("90s", "5m", "1h30m"); a bare number is a
// number of seconds, wherever a duration is read (flag, variable or file).
// Sizes are bytes with an optional unit ("1048576", "64KiB", "1GB").
//
// # How to add a setting
//
// Add one call to the program's define function (cmd/membrane/config.go,
// cmd/orchestrator/config.go), next to the settings it belongs with; the
// order of the calls is the order of --help and of the README table:
//
//	s.Duration(&c.HTTP.ReadTimeout, 30*time.Second, settings.Def{
//		Flag: "read-timeout", Env: "MEMBRANE_READ_TIMEOUT", Key: "http.read_timeout",
//		Doc: "how long a client may take to send one request (DURATION)",
//	}, settings.Positive[time.Duration])
//
// Then run `go test ./cmd/membrane -run README -update` to rewrite the
// README table, and describe the setting in the README's prose if it needs
// more than its line. Nothing else: parsing, the file key, --help, the
// errors, the reload and the tests (every setting set by flag, variable and
// file, and a bad value of each refused) all follow from the definition.
// Give a setting a check when some values are wrong (Positive, AtLeast,
// OneOf, or a func of your own returning an error that says what is
// wrong); checks that compare two settings go in the program's validate
// function, through Set.Errorf, so that the error names the settings as the
// user gave them.
package settings

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind is the type of a setting's value, as --help and errors describe it.
type Kind int

const (
	KindString Kind = iota
	KindBool
	KindInt
	KindFloat
	KindDuration
	KindSize
	KindList
	// KindValue is a structured value that only a config file can give
	// (such as a list of tool definitions), decoded strictly.
	KindValue
)

// words describes a kind for errors and --help.
func (k Kind) words() string {
	return [...]string{"text", "true or false", "a whole number", "a number", "a duration such as 30s, 5m or 1h (a bare number is seconds)",
		"a size such as 1048576, 512KiB, 64MiB or 1GiB", "a list", "a structured value"}[k]
}

// arg is the placeholder --help shows when the Def gives none.
func (k Kind) arg() string {
	return [...]string{"VALUE", "", "N", "X", "DURATION", "SIZE", "VALUE", ""}[k]
}

// Def is the part of a setting that is the same whatever its type.
type Def struct {
	// Flag is the flag name without dashes ("max-body"); "" for none. A
	// one-letter flag is shown as -e, others as --name; both forms work.
	Flag string
	// Env is the environment variable ("MEMBRANE_MAX_BODY"); "" for none.
	Env string
	// Key is the dotted config file key ("http.max_body"); "" for none.
	Key string
	// Arg is the placeholder of the value in --help ("ADDR"); "" means
	// one made from the kind. A bool flag with an Arg takes its value as
	// the next argument (--extract-text-calls false) instead of standing
	// alone (--stateless).
	Arg string
	// Doc is the one line --help and the README show.
	Doc string
	// Split makes a list flag split its value at commas, as the
	// environment variable always does (--approve sh,python_run).
	Split bool
	// EnvSplit splits a list's environment variable into items, for
	// items that hold commas themselves; nil splits at commas.
	EnvSplit func(string) []string
	// Stop makes a bool flag given on the command line end Load before
	// anything else is read or checked (Load returns ErrStop): --version.
	Stop bool
}

// Source is where a setting's value came from.
type Source int

const (
	FromDefault Source = iota
	FromFile
	FromEnv
	FromFlag
)

// Setting is one defined setting; the Set's constructors make them.
type Setting struct {
	Def
	Kind Kind

	set    func(v string) error     // parse text into the value (a list: append one item)
	clear  func()                   // a list: empty it before a higher layer's items
	node   func(n *yaml.Node) error // a KindValue's file form
	text   func() string            // the current value as text
	encode func() any               // the current value for a config file
	check  func() error             // the setting's own checks on the current value
	reset  func()                   // back to the default
	def    string                   // the default, as text

	src     Source
	srcLine int // the file line, when src is FromFile
}

// Default is the default value as text, as --help shows it ("" for none).
func (s *Setting) Default() string { return s.def }

// Value is the current value as text.
func (s *Setting) Value() string { return s.text() }

// Source says where the current value came from.
func (s *Setting) Source() Source { return s.src }

// Label names the setting everywhere it can be given: "--timeout /
// MEMBRANE_TIMEOUT / sandbox.timeout".
func (s *Setting) Label() string {
	var parts []string
	if s.Flag != "" {
		parts = append(parts, s.FlagName())
	}
	if s.Env != "" {
		parts = append(parts, s.Env)
	}
	if s.Key != "" {
		parts = append(parts, s.Key)
	}
	return strings.Join(parts, " / ")
}

// FlagName is the flag as the user types it: "-e" or "--max-body".
func (s *Setting) FlagName() string {
	if len(s.Flag) == 1 {
		return "-" + s.Flag
	}
	return "--" + s.Flag
}

// takesValue says whether the flag reads a value after it.
func (s *Setting) takesValue() bool { return s.Kind != KindBool || s.Arg != "" }

// Set is a program's settings, in the order of --help.
type Set struct {
	// Name is the program ("membrane"), used in errors and --help.
	Name string
	// Head and Tail are printed above and below the flags by Usage.
	Head, Tail string

	list   []*Setting
	config *Setting // the setting naming the config file, if any
	file   string   // the config file read by the last Load
	data   []byte   // its contents
	args   []string // the arguments after the flags
}

// New returns an empty Set for the program name.
func New(name string) *Set { return &Set{Name: name} }

// All returns the settings in definition order.
func (s *Set) All() []*Setting { return slices.Clone(s.list) }

// Lookup returns the setting with this flag (or, for one with no flag,
// this file key), or nil.
func (s *Set) Lookup(name string) *Setting {
	for _, x := range s.list {
		if x.Flag == name || (x.Flag == "" && x.Key == name) {
			return x
		}
	}
	return nil
}

// ConfigSetting returns the setting that names the config file, or nil.
func (s *Set) ConfigSetting() *Setting { return s.config }

// Args returns the arguments left after the flags by the last Load.
func (s *Set) Args() []string { return slices.Clone(s.args) }

// File returns the config file the last Load read ("" for none) and its
// contents.
func (s *Set) File() (string, []byte) { return s.file, s.data }

func (s *Set) add(x *Setting) *Setting {
	for _, y := range s.list {
		if x.Flag != "" && x.Flag == y.Flag || x.Env != "" && x.Env == y.Env || x.Key != "" && x.Key == y.Key {
			panic(fmt.Sprintf("settings: %s and %s share a name", x.Label(), y.Label()))
		}
	}
	if x.Flag == "" && x.Key == "" {
		panic("settings: a setting needs a flag or a file key: " + x.Doc)
	}
	x.def = x.text()
	s.list = append(s.list, x)
	return x
}

// ErrHelp is returned by Load for -h or --help.
var ErrHelp = errors.New("help requested")

// ErrStop is returned by Load when a Def.Stop flag was given.
var ErrStop = errors.New("stop requested")

// Error is a bad value of one setting, or a bad command line.
type Error struct {
	// Setting is the setting; nil for a command line that names none
	// (an unknown flag, a stray argument).
	Setting *Setting
	// Where names it as the user gave it: "--memory", "MEMBRANE_MEMORY",
	// "config file m.yaml: line 3: sandbox.memory".
	Where string
	// Value is the bad value as given ("" when there is none).
	Value string
	// Msg says what is wrong and, where it can, what to do.
	Msg string
}

func (e *Error) Error() string {
	if e.Value != "" && !strings.Contains(e.Msg, fmt.Sprintf("%q", e.Value)) {
		return fmt.Sprintf("%s: %q %s", e.Where, redactUserinfo(e.Value), e.Msg)
	}
	return e.Where + ": " + e.Msg
}

// redactUserinfo hides the password of a URL value (user:password@), so
// that an error about a URL setting never prints it.
func redactUserinfo(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(v, "@"); i >= 0 && strings.Contains(v[:i], ":") {
		return "(a URL with a password, not shown)"
	}
	return v
}

// where names x as its current value was given.
func (s *Set) where(x *Setting) string {
	switch x.src {
	case FromFlag:
		return x.FlagName()
	case FromEnv:
		return x.Env
	case FromFile:
		return fmt.Sprintf("config file %s: line %d: %s", s.file, x.srcLine, x.Key)
	}
	return x.Label()
}

// Errorf returns an Error about the setting with this flag (or key),
// named as its value was given. It is for checks that compare settings.
func (s *Set) Errorf(name, format string, args ...any) error {
	x := s.Lookup(name)
	if x == nil {
		panic("settings: Errorf of an undefined setting " + name)
	}
	return &Error{Setting: x, Where: s.where(x), Msg: fmt.Sprintf(format, args...)}
}

// NameOf returns how the user gave the setting with this flag (or key):
// "--timeout", "MEMBRANE_TIMEOUT", or every name when it was not given.
func (s *Set) NameOf(name string) string {
	x := s.Lookup(name)
	if x == nil {
		panic("settings: NameOf an undefined setting " + name)
	}
	return s.where(x)
}

// IsSet says whether the setting with this flag (or key) was given at all.
func (s *Set) IsSet(name string) bool {
	x := s.Lookup(name)
	return x != nil && x.src != FromDefault
}

// SourceOf says where the setting with this flag (or key) came from.
func (s *Set) SourceOf(name string) Source {
	if x := s.Lookup(name); x != nil {
		return x.src
	}
	return FromDefault
}
