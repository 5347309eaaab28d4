package ledger

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/scrub"
)

// Recorded is what the ledger and the store keep of a call's arguments
// and reason: the arguments scrubbed and cut (see Args), the SHA-256 of
// the arguments as the client sent them, and the reason scrubbed.
type Recorded struct {
	Args       json.RawMessage // nil when the call had none
	ArgsSHA256 string          // "" when the call had none
	Reason     string
}

// recordKey names Record's computation in Event.Memo, by the scrubber,
// with the default limits. A struct of one pointer: a key that costs no
// allocation.
type recordKey struct{ s *scrub.Scrubber }

// limitsKey names it with other limits; a Ledger with such limits holds
// one (by pointer, so it costs no allocation either).
type limitsKey struct {
	s                  *scrub.Scrubber
	maxValue, maxTotal int
}

// Record returns e's recorded form, scrubbed by s with the default limits
// (DefaultMaxValueBytes, DefaultMaxArgsBytes), as the ledger writes it.
// It is computed once per event for every observer that asks with the
// same scrubber (Event.Memo): the ledger and the store scrub and hash a
// call once between them. The result is shared: do not modify it.
func Record(e *calls.Event, s *scrub.Scrubber) *Recorded {
	return record(e, recordKey{s}, s, DefaultMaxValueBytes, DefaultMaxArgsBytes)
}

func record(e *calls.Event, key any, s *scrub.Scrubber, maxValue, maxTotal int) *Recorded {
	return e.Memo(key, func() any {
		r := &Recorded{Reason: s.String(e.Reason)}
		if len(e.Arguments) > 0 {
			r.Args = Args(s, e.Arguments, maxValue, maxTotal)
			r.ArgsSHA256 = e.ArgsDigest()
		}
		return r
	}).(*Recorded)
}

// appendLine appends en as encoding/json would marshal it, and a newline.
// It reports false, appending nothing, for what json.Marshal would refuse
// (a time outside years 0-9999, a duration that is not a number).
func appendLine(dst []byte, en *Entry) ([]byte, bool) {
	if y := en.Time.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	if !finite(en.DurMS) || (en.Run != nil && !(finite(en.Run.StartMS) && finite(en.Run.WallMS))) ||
		(en.Model != nil && !(finite(en.Model.FirstTokenMS) && finite(en.Model.GenerationMS) && finite(en.Model.QueueWaitMS))) {
		return dst, false
	}
	b := append(dst, `{"time":"`...)
	b = en.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","id":`...)
	b = strconv.AppendUint(b, en.ID, 10)
	b = appendField(b, "session", en.Session)
	if en.Client != "" {
		b = appendField(b, "client", en.Client)
	}
	if en.TokenName != "" {
		b = appendField(b, "token_name", en.TokenName)
	}
	b = appendField(b, "call", en.Call)
	b = appendField(b, "kind", en.Kind)
	if en.Group != "" {
		b = appendField(b, "group", en.Group)
	}
	if len(en.Args) > 0 {
		b = append(b, `,"args":`...)
		b = appendCompact(b, en.Args)
	}
	b = append(b, `,"args_bytes":`...)
	b = strconv.AppendInt(b, int64(en.ArgsBytes), 10)
	if en.ArgsSHA256 != "" {
		b = appendField(b, "args_sha256", en.ArgsSHA256)
	}
	b = appendField(b, "outcome", en.Outcome)
	if en.Reason != "" {
		b = appendField(b, "reason", en.Reason)
	}
	b = append(b, `,"dur_ms":`...)
	b = appendFloat(b, en.DurMS)
	b = append(b, `,"result_bytes":`...)
	b = strconv.AppendInt(b, int64(en.ResultBytes), 10)
	if en.TraceID != "" {
		b = appendField(b, "trace_id", en.TraceID)
	}
	if r := en.Run; r != nil {
		b = append(b, `,"run":{"exit_code":`...)
		b = strconv.AppendInt(b, int64(r.ExitCode), 10)
		if r.Signal != "" {
			b = appendField(b, "signal", r.Signal)
		}
		if r.Isolation != "" {
			b = appendField(b, "isolation", r.Isolation)
		}
		b = append(b, `,"stdout_bytes":`...)
		b = strconv.AppendInt(b, r.StdoutBytes, 10)
		b = append(b, `,"stderr_bytes":`...)
		b = strconv.AppendInt(b, r.StderrBytes, 10)
		if r.Killed != "" {
			b = appendField(b, "killed", r.Killed)
		}
		if len(r.Limits) > 0 {
			b = append(b, `,"limits":[`...)
			for i, l := range r.Limits {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, l)
			}
			b = append(b, ']')
		}
		b = appendFloatField(b, "start_ms", r.StartMS)
		b = appendFloatField(b, "wall_ms", r.WallMS)
		b = append(b, '}')
	}
	if m := en.Model; m != nil {
		b = append(b, `,"model":{"model":`...)
		b = appendString(b, m.Model)
		if m.Host != "" {
			b = appendField(b, "host", m.Host)
		}
		b = append(b, `,"tokens_in":`...)
		b = strconv.AppendInt(b, int64(m.TokensIn), 10)
		b = append(b, `,"tokens_out":`...)
		b = strconv.AppendInt(b, int64(m.TokensOut), 10)
		b = appendFloatField(b, "first_token_ms", m.FirstTokenMS)
		b = appendFloatField(b, "generation_ms", m.GenerationMS)
		b = appendFloatField(b, "queue_wait_ms", m.QueueWaitMS)
		b = append(b, '}')
	}
	return append(b, '}', '\n'), true
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// appendField appends `,"name":` and s as a JSON string.
func appendField(b []byte, name, s string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, s)
}

// appendFloatField appends `,"name":` and f, unless f is zero (omitempty).
func appendFloatField(b []byte, name string, f float64) []byte {
	if f == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendFloat(b, f)
}

// appendFloat appends f as encoding/json writes a float64: like %g, but
// with the exponent only below 1e-6 and from 1e21, and not padded.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 to e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as encoding/json writes a string (with its HTML
// escaping): quotes, backslashes and control bytes escaped, <, > and &
// as \u003c..., invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCompact appends the valid JSON doc as encoding/json writes a
// json.RawMessage: without the white space between tokens, and with <, >,
// &, U+2028 and U+2029 escaped inside strings.
func appendCompact(b []byte, doc []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped byte, whatever it is
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			b = append(b, doc[start:i]...)
			start = i + 1
		case c == '<' || c == '>' || c == '&':
			b = append(b, doc[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(doc) && doc[i+1] == 0x80 && doc[i+2]&^1 == 0xA8:
			b = append(b, doc[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[doc[i+2]&0xF])
			i += 2
			start = i + 1
		}
	}
	return append(b, doc[start:]...)
}
