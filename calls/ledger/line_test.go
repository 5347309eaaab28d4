package ledger

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
)

// oddStrings are strings that need escaping, or look as if they might.
var oddStrings = []string{
	"", "plain", `quo"te`, `back\slash`, "tab\tnl\ncr\r", "\b\f\x00\x01\x1f\x7f", "<script>&amp;</script>",
	"\u2028\u2029", "é中文🙂", "bad \xff utf8 \xc3", "\xe2\x80", "\xe2\x80\xa8x", "\ufffd", "[membrane: redacted aws-access-key]",
}

func randString(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		return oddStrings[rng.IntN(len(oddStrings))]
	}
	var b strings.Builder
	for n := rng.IntN(24); n > 0; n-- {
		switch rng.IntN(4) {
		case 0:
			b.WriteByte(byte(rng.IntN(256)))
		case 1:
			b.WriteRune(rune(rng.IntN(0x3000)))
		default:
			b.WriteByte(byte(0x20 + rng.IntN(0x5f)))
		}
	}
	return b.String()
}

func randFloat(rng *rand.Rand) float64 {
	switch rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return float64(rng.Int64N(1e9)) / 1000 // a duration in ms, to the µs
	case 2:
		return math.Float64frombits(rng.Uint64()) // any, NaN and Inf included
	case 3:
		return rng.Float64() * 1e-7
	case 4:
		return rng.NormFloat64() * 1e22
	}
	return -rng.Float64()
}

// randJSON is a valid JSON document, with white space and escapes.
func randJSON(rng *rand.Rand, depth int) []byte {
	var v any
	switch rng.IntN(5) {
	case 0:
		v = randString(rng)
	case 1:
		v = json.Number("12345678901234567890")
	case 2:
		if depth > 0 {
			m := map[string]json.RawMessage{}
			for n := rng.IntN(4); n > 0; n-- {
				m[randString(rng)] = randJSON(rng, depth-1)
			}
			v = m
		}
	case 3:
		if depth > 0 {
			var l []json.RawMessage
			for n := rng.IntN(4); n > 0; n-- {
				l = append(l, randJSON(rng, depth-1))
			}
			v = l
		}
	default:
		v = rng.IntN(3) == 0
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	if rng.IntN(2) == 0 {
		var ind bytes.Buffer
		_ = json.Indent(&ind, b, " ", "\t")
		b = ind.Bytes()
	}
	if rng.IntN(3) == 0 {
		// Unescaped <, >, & and U+2028 inside strings, as a client may send.
		b = bytes.ReplaceAll(b, []byte(`\u003c`), []byte("<"))
		b = bytes.ReplaceAll(b, []byte(`\u0026`), []byte("&"))
		b = bytes.ReplaceAll(b, []byte(`\u2028`), []byte("\u2028"))
	}
	return b
}

// TestLineMatchesEncodingJSON: for many entries, random and odd, the
// ledger's encoder writes exactly what json.Marshal writes, or leaves the
// entry to json.Marshal when that fails (the ledger then logs why).
func TestLineMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 7))
	encoded, refused := 0, 0
	for i := 0; i < 5000; i++ {
		en := Entry{
			Time:    time.Unix(rng.Int64N(1<<36)-(1<<35), rng.Int64N(2e9)).UTC(),
			ID:      rng.Uint64(),
			Session: randString(rng), Client: randString(rng), Call: randString(rng), Kind: randString(rng), Group: randString(rng),
			ArgsBytes: rng.IntN(1 << 20), ArgsSHA256: randString(rng), Outcome: randString(rng), Reason: randString(rng),
			DurMS: randFloat(rng), ResultBytes: rng.IntN(1<<20) - 10,
			TokenName: randString(rng), TraceID: randString(rng),
		}
		switch {
		case i%7 == 0:
			en.Time = en.Time.Truncate(time.Second)
		case i%500 == 1:
			en.DurMS = math.Inf(1)
		case i%500 == 2:
			en.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		if rng.IntN(4) > 0 {
			en.Args = randJSON(rng, 3)
		}
		if rng.IntN(3) == 0 {
			en.Run = &Run{ExitCode: rng.IntN(300) - 20, Signal: randString(rng), Isolation: randString(rng),
				StdoutBytes: rng.Int64(), StderrBytes: rng.Int64N(100), Killed: randString(rng),
				StartMS: randFloat(rng), WallMS: randFloat(rng)}
			for range rng.IntN(3) {
				en.Run.Limits = append(en.Run.Limits, randString(rng))
			}
			if rng.IntN(10) == 0 {
				en.Run.Limits = []string{} // empty, not nil: omitted too
			}
		}
		if rng.IntN(3) == 0 {
			en.Model = &Model{Model: randString(rng), Host: randString(rng), TokensIn: rng.IntN(1e6), TokensOut: rng.IntN(1e6),
				FirstTokenMS: randFloat(rng), GenerationMS: randFloat(rng), QueueWaitMS: randFloat(rng)}
		}
		want, err := json.Marshal(&en)
		got, ok := appendLine([]byte("prefix"), &en)
		if !ok {
			refused++
			if err == nil {
				t.Fatalf("the encoder refused what json.Marshal encodes: %s", want)
			}
			if string(got) != "prefix" {
				t.Fatalf("a refused entry appended %q", got)
			}
			continue
		}
		encoded++
		if err != nil {
			t.Fatalf("the encoder wrote %s, json.Marshal fails: %v", got, err)
		}
		if string(got) != "prefix"+string(want)+"\n" {
			t.Fatalf("line differs from json.Marshal:\n got %s\nwant %s", got[6:], want)
		}
	}
	if encoded < 2500 || refused == 0 {
		t.Errorf("encoded %d, refused %d: the test lost its reach", encoded, refused)
	}
}

// FuzzString: a string is written as json.Marshal writes it.
func FuzzString(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, json.Marshal gives %s", s, got, want)
		}
	})
}

// FuzzCompact: valid JSON arguments are written as json.Marshal writes a
// json.RawMessage (compact, HTML-escaped), and the result is valid JSON
// that decodes to the same value.
func FuzzCompact(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20; i++ {
		f.Add(randJSON(rng, 3))
	}
	f.Add([]byte(" { \"a\" : [ 1 , \"<\u2028>\" ] } "))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		want, err := json.Marshal(json.RawMessage(doc))
		if err != nil {
			t.Fatal(err)
		}
		got := appendCompact(nil, doc)
		if string(got) != string(want) {
			t.Fatalf("appendCompact(%q) = %q, json.Marshal gives %q", doc, got, want)
		}
		a, errA := decodeNumbers(doc)
		b, errB := decodeNumbers(got)
		if errA != nil || errB != nil {
			t.Fatalf("does not decode: %q: %v %v", got, errA, errB)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("decodes to %v, the arguments to %v", b, a)
		}
	})
}

func decodeNumbers(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// TestObserveWritesMarshalledEntry: the lines Observe writes are
// json.Marshal of Entry, line for line, for events of every shape.
func TestObserveWritesMarshalledEntry(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, nil)
	rng := rand.New(rand.NewPCG(5, 6))
	var want bytes.Buffer
	for i := 0; i < 500; i++ {
		e := calls.Event{Type: calls.EventCallFinished, Time: time.Unix(1764600000+rng.Int64N(1e8), rng.Int64N(1e9)),
			ID: uint64(i), Call: randString(rng), Kind: calls.Kind(rng.IntN(3)), Group: randString(rng),
			Session: randString(rng), Client: randString(rng), Outcome: calls.Outcome(rng.IntN(7)), Reason: randString(rng),
			Duration: time.Duration(rng.Int64N(1e11)), ResultBytes: rng.IntN(1e6)}
		if rng.IntN(4) > 0 {
			e.Arguments = randJSON(rng, 3)
		}
		switch rng.IntN(3) {
		case 0:
			e.Info = &calls.Info{Run: &calls.RunInfo{ExitCode: rng.IntN(256), Signal: randString(rng), Isolation: "bwrap",
				StdoutBytes: rng.Int64N(1e9), Killed: randString(rng), Start: time.Duration(rng.Int64N(1e9)), Wall: time.Duration(rng.Int64N(1e10))}}
		case 1:
			e.Info = &calls.Info{Model: &calls.ModelInfo{Model: randString(rng), Host: randString(rng), TokensIn: rng.IntN(1e5),
				TokensOut: rng.IntN(1e5), FirstToken: time.Duration(rng.Int64N(1e10)), QueueWait: time.Duration(rng.Int64N(1e9))}}
		}
		line, err := json.Marshal(l.Entry(&e))
		if err != nil {
			t.Fatal(err)
		}
		want.Write(line)
		want.WriteByte('\n')
		l.Observe(e)
		if i%10 == 9 {
			l.EndBatch()
		}
	}
	l.EndBatch()
	if out.String() != want.String() {
		gl, wl := strings.Split(out.String(), "\n"), strings.Split(want.String(), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d:\n got %s\nwant %s", i, gl[i], wl[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(gl), len(wl))
	}
}
