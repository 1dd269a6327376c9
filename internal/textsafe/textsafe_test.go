package textsafe

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"connection refused", "connection refused"},
		{"héllo wörld ✓ 日本", "héllo wörld ✓ 日本"},
		{`back\slash`, `back\slash`},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"c1 \u009b31m", `c1 \x9b31m`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"rtl \u202egnp.exe\u202c", `rtl \u202egnp.exe\u202c`},
		{"iso\u2066x\u2069 lrm\u200e alm\u061c", `iso\u2066x\u2069 lrm\u200e alm\u061c`},
		{"line\u2028sep\u2029", `line\u2028sep\u2029`},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b[31mred", "\xff", "\u202e", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unsafe(r, utf8.RuneLen(r)) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, out, r)
			}
		}
		if !strings.ContainsAny(s, "\\") && out == s {
			for _, r := range s {
				if unsafe(r, utf8.RuneLen(r)) {
					t.Fatalf("Escape(%q) left it unchanged", s)
				}
			}
		}
		if Escape(out) != out {
			t.Fatalf("Escape is not idempotent on %q", out)
		}
	})
}
