// Package logging builds the one log handler of a membrane command: tint
// text on stderr, coloured only on a terminal, or JSON with durations in
// milliseconds.
package logging

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// Options configure New. The zero value logs text at info level without
// colour.
type Options struct {
	// Level is the least level logged.
	Level slog.Level
	// JSON logs one JSON object a line instead of text.
	JSON bool
	// Color colours text logs. New turns it off where w is not a
	// terminal or NO_COLOR is set (per Getenv).
	Color bool
	// Getenv reads NO_COLOR. Nil means os.Getenv.
	Getenv func(string) string
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) *slog.Logger {
	if o.JSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: o.Level, ReplaceAttr: DurationsInMS}))
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	color := o.Color && IsTerminal(w) && getenv("NO_COLOR") == ""
	return slog.New(tint.NewTextHandler(w, &tint.Options{Level: o.Level, TimeFormat: time.TimeOnly, NoColor: !color}))
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// DurationsInMS makes a JSON log carry every duration attribute as
// KEY_ms, a number of milliseconds ("dur_ms": 53.2), where text logs show
// "53ms".
func DurationsInMS(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		d := a.Value.Duration()
		return slog.Float64(a.Key+"_ms", float64(d.Microseconds())/1000)
	}
	return a
}
