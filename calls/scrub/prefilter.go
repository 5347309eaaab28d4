package scrub

import (
	"bytes"
	"slices"
	"strings"
	"unicode"
)

// The prefilter decides, in one pass over a text, which shapes' regular
// expressions could match it: a shape needs its hint (or one of its anyOf
// words) somewhere in the text, matched without regard to case where the
// shape folds. Most texts (a reason, a command, a no-op's arguments) hold
// none, and cost that one pass instead of a lower-cased copy and a search
// per word.
//
// The one pass is exact only for ASCII. A case-insensitive expression also
// matches the two non-ASCII letters that fold to ASCII ones (the Kelvin
// sign K for "k", the long s ſ for "s"), so a text with any byte past 0x7f
// takes a lower-cased copy, with those two lowered to their ASCII letter,
// and one search per word.

// needle is one word a shape needs.
type needle struct {
	word string // lower-cased when fold
	fold bool
	bit  uint64 // the shape's bit
}

// needlesAt lists the needles by their first byte (both cases of it when
// the needle folds); always holds the shapes with no prefilter.
var (
	needlesAt [256][]needle
	always    uint64
)

func init() {
	if len(shapes) > 64 {
		panic("scrub: more than 64 shapes")
	}
	for i := range shapes {
		sh := &shapes[i]
		bit := uint64(1) << i
		words := sh.anyOf
		if sh.hint != "" {
			words = append([]string{sh.hint}, words...)
		}
		if len(words) == 0 {
			always |= bit
			continue
		}
		if sh.hint != "" && sh.anyOf != nil {
			// Both are required; the one pass below checks "any of".
			panic("scrub: a shape with both hint and anyOf")
		}
		for _, w := range words {
			if sh.fold && w != strings.ToLower(w) {
				panic("scrub: a folding shape's word must be lower case: " + w)
			}
			n := needle{word: w, fold: sh.fold, bit: bit}
			c := w[0]
			needlesAt[c] = append(needlesAt[c], n)
			if sh.fold && 'a' <= c && c <= 'z' {
				needlesAt[c-'a'+'A'] = append(needlesAt[c-'a'+'A'], n)
			}
		}
	}
}

// candidates returns the shapes (bit i for shapes[i]) whose regular
// expression may match text.
func candidates[T string | []byte](text T) uint64 {
	found := always
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x80 {
			return candidatesFolded(string(text))
		}
		for _, n := range needlesAt[c] {
			if found&n.bit == 0 && hasWordAt(text[i:], n) {
				found |= n.bit
			}
		}
	}
	return found
}

// hasWordAt reports whether s begins with n's word (in either case of
// each ASCII letter, when n folds).
func hasWordAt[T string | []byte](s T, n needle) bool {
	if len(s) < len(n.word) {
		return false
	}
	if !n.fold {
		return string(s[:len(n.word)]) == n.word
	}
	for j := 0; j < len(n.word); j++ {
		c := s[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != n.word[j] {
			return false
		}
	}
	return true
}

// candidatesFolded is candidates by a lower-cased copy of text and one
// search per word, for any text.
func candidatesFolded(text string) uint64 {
	var found uint64
	var lower string
	for i := range shapes {
		sh := &shapes[i]
		if sh.hint != "" || sh.anyOf != nil {
			hay := text
			if sh.fold {
				if lower == "" {
					lower = strings.Map(foldLower, text)
				}
				hay = lower
			}
			if sh.hint != "" && !strings.Contains(hay, sh.hint) {
				continue
			}
			if sh.anyOf != nil && !slices.ContainsFunc(sh.anyOf, func(w string) bool { return strings.Contains(hay, w) }) {
				continue
			}
		}
		found |= 1 << i
	}
	return found
}

// foldLower lowers r as strings.ToLower does, and also the letters that a
// case-insensitive expression matches for an ASCII letter: U+017F (ſ) is
// an "s" to the regexp package, though not to unicode.ToLower.
func foldLower(r rune) rune {
	if r == '\u017f' {
		return 's'
	}
	return unicode.ToLower(r)
}

// keyWords are words that every key name Value hides holds (secretKey).
var keyWords = []string{"pass", "pwd", "secret", "token", "key", "auth", "cookie", "credential"}

// keyWordsAt lists keyWords by their first byte, in both cases.
var keyWordsAt = func() (at [256][]needle) {
	for _, w := range keyWords {
		n := needle{word: w, fold: true}
		at[w[0]] = append(at[w[0]], n)
		at[w[0]-'a'+'A'] = append(at[w[0]-'a'+'A'], n)
	}
	return at
}()

// HasKeyWord reports whether doc holds, in any case, a word that every
// key name Value hides holds ("pass", "token", "key", ...). When it does
// not, no object key in doc names a secret, and only the text of doc's
// strings can hold one (see Find).
func HasKeyWord(doc []byte) bool {
	for i, c := range doc {
		if c >= 0x80 {
			lower := bytes.Map(foldLower, doc)
			for _, w := range keyWords {
				if bytes.Contains(lower, []byte(w)) {
					return true
				}
			}
			return false
		}
		for _, n := range keyWordsAt[c] {
			if hasWordAt(doc[i:], n) {
				return true
			}
		}
	}
	return false
}
