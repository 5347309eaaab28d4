// Package diag holds the findings of a self-diagnosis, such as `membrane
// doctor`: the library packages (sandbox, ollama) report what they check
// as Checks, and a program shows them. It is apart from package calls
// because a finding is not part of a call's path.
package diag

// Status grades a Check.
type Status int

// The grades of a Check, from good to bad.
const (
	StatusOK Status = iota
	StatusWarn
	StatusFail
)

// String returns "ok", "warn" or "fail".
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusWarn:
		return "warn"
	}
	return "fail"
}

// Check is one finding of a self-diagnosis, such as `membrane doctor`: what
// was checked, how it went, what was seen, and what to do about it.
type Check struct {
	// Name is short: "bubblewrap", "ollama http://127.0.0.1:11434".
	Name   string `json:"name"`
	Status Status `json:"-"`
	// Detail says, in plain words, what was found.
	Detail string `json:"detail"`
	// Fix says what to do when Status is not StatusOK.
	Fix string `json:"fix,omitempty"`
	// Setting is the config-file key of the setting Fix speaks of
	// ("sandbox.network"), or empty. Libraries name no command-line flags: a
	// program adds its own flag and variable for the key to the advice.
	Setting string `json:"setting,omitempty"`
}
