// Package textsafe makes text from outside rdctl (a server's error text, a
// console banner, a status line, a file's contents) safe to print on a
// terminal: whatever could move the cursor, recolour, retitle the window,
// reorder the line or hide text is shown escaped instead of acting.
package textsafe

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every control character escaped: C0 controls
// (tab and newline included: one value, one line), DEL, C1 controls, the
// Unicode bidirectional and line/paragraph separators (which reorder or
// break what follows), and bytes that are not UTF-8. Common controls get
// their Go escapes (\n, \t, \r), the rest \xNN or \uNNNN; a backslash is
// left alone. Text with nothing to escape is returned as is, unallocated.
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unsafe(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafe(r, n) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r, n):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafe says whether rune r (n bytes in the input) must be escaped.
func unsafe(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true // bidirectional marks, embeddings, overrides and isolates
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// keyRunMin is the shortest run of base64, base64url or hex characters that
// [KeyLike] treats as possible key material: 16 characters of base64 carry
// 12 bytes, more than enough to narrow a search for the rest of a key.
const keyRunMin = 16

// KeyLike reports whether s holds what could be (part of) a key in base64,
// base64url or hex: a run of at least 16 characters from those alphabets
// (letters, digits, '+', '/', '-', '_') that has a digit or an upper-case
// letter in it. A run of lower-case letters and separators only, such as
// "/var/lib/rustdesk", is a word or a path, never an encoded key: 16
// random base64 characters avoid every digit and capital with odds below
// one in 500,000, and 16 hex digits avoid every digit with odds below one
// in 6,000,000.
func KeyLike(s string) bool {
	run, mixed := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isKeyChar(c) {
			run, mixed = 0, false
			continue
		}
		run++
		if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' {
			mixed = true
		}
		if run >= keyRunMin && mixed {
			return true
		}
	}
	return false
}

// echoMax is the most of a value [Echo] shows, in runes.
const echoMax = 80

// Echo renders a value someone gave (a flag, a field of a file) for an
// error message: quoted, escaped and cut to 80 runes, or, when it is
// [KeyLike], only its length, so that a secret pasted into the wrong place
// never reaches a terminal or a log.
func Echo(s string) string {
	q := s
	cut := ""
	if utf8.RuneCountInString(s) > echoMax {
		q, cut = string([]rune(s)[:echoMax]), "…"
	}
	q = strconv.Quote(q) + cut
	// Escapes such as \x14 put letters and digits next to the value's own:
	// what is shown must not look like a key either.
	if KeyLike(s) || KeyLike(q) {
		return fmt.Sprintf("(value withheld: it looks like key material; %d characters)", utf8.RuneCountInString(s))
	}
	return q
}

// Withhold replaces every [KeyLike] run in s (16 or more base64, base64url
// or hex characters with a digit or a capital) with "[withheld]". It is for
// text that quotes a value somewhere rdctl cannot tell where, such as a
// command-line parser's message about a flag.
func Withhold(s string) string {
	var b strings.Builder
	start := 0 // of the current run
	flush := func(end int) {
		run := s[start:end]
		if KeyLike(run) {
			b.WriteString("[withheld]")
		} else {
			b.WriteString(run)
		}
	}
	for i := 0; i < len(s); i++ {
		if !isKeyChar(s[i]) {
			flush(i)
			b.WriteByte(s[i])
			start = i + 1
		}
	}
	flush(len(s))
	return b.String()
}

func isKeyChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '+' || c == '/' || c == '-' || c == '_'
}

// keyMaterialMin is the shortest run [KeyMaterial] judges: 40 base64
// characters carry 30 of a seed's 32 bytes.
const keyMaterialMin = 40

// KeyMaterial reports whether s holds what can only be a key, never a name
// or a path, so that a value holding it can be refused outright (where
// [KeyLike] only decides what an error message shows):
//   - 40 or more hex digits in a row, one of them a decimal digit;
//   - 40 or more base64 or base64url characters in a row (a '/' counts
//     unless the run starts with one) that mix upper- and lower-case
//     letters;
//   - 40 or more such characters between two '/' that mix the cases and
//     have a digit before a letter.
//
// Names and paths keep to one case, or to CamelCase words between
// separators; 40 random base64 characters miss one of the cases with odds
// of about one in 500 million. A directory such as Go's temporary ones
// (TestSomeLongName + digits) has its digits at the end; 40 random base64
// characters do with odds of about one in 300. What passes: that, and a key
// in standard base64 that starts with '/' and is cut by further '/' into
// pieces shorter than 40, which is then an absolute path.
func KeyMaterial(s string) bool {
	if KeyRun(s) {
		return true
	}
	for _, run := range keyRuns(s) {
		for _, piece := range strings.Split(run, "/") {
			if len(piece) >= keyMaterialMin && mixedCase(piece) && digitInside(piece) {
				return true
			}
		}
	}
	return false
}

// KeyRun is [KeyMaterial] without its rule for the parts of a path: 40 or
// more hex digits with a decimal one, or 40 or more base64 or base64url characters in a row
// that mix the cases and do not start with '/'. It is for paths given on
// the command line, where a part such as a Go test's temporary directory
// (TestRotateDiskFullfree-0-pages1234567890) is ordinary.
func KeyRun(s string) bool {
	hexRun, digit := 0, false
	for i := 0; i < len(s); i++ {
		if isHex(s[i]) {
			hexRun++
			digit = digit || s[i] <= '9'
			if hexRun >= keyMaterialMin && digit {
				return true
			}
		} else {
			hexRun, digit = 0, false
		}
	}
	for _, run := range keyRuns(s) {
		if mixedCase(run) && !strings.HasPrefix(run, "/") {
			return true
		}
	}
	return false
}

// keyRuns returns the maximal runs of base64 and base64url characters in s
// that are at least keyMaterialMin long.
func keyRuns(s string) []string {
	var runs []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isKeyChar(s[i]) {
			continue
		}
		if i-start >= keyMaterialMin {
			runs = append(runs, s[start:i])
		}
		start = i + 1
	}
	return runs
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// digitInside reports whether a letter follows a digit somewhere in s.
func digitInside(s string) bool {
	i := strings.IndexAny(s, "0123456789")
	return i >= 0 && strings.ContainsFunc(s[i:], func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' })
}

func mixedCase(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' }) &&
		strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
}
