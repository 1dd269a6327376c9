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
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
			run++
			mixed = true
		case c >= 'a' && c <= 'z', c == '+', c == '/', c == '-', c == '_':
			run++
		default:
			run, mixed = 0, false
			continue
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
