package textsafe

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKeyLike(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i*37 + 11)
	}
	secret := append(append([]byte{}, seed...), seed...)
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"rd.example.com", false},
		{"/var/lib/rustdesk-server", false},
		{"rustdesk/rustdesk-server", false},
		{"rd.example.com;reboot", false},
		{"macvlan", false},
		{"1.1.16", false},
		{"2001:db8::1", false},
		{"192.0.2.1:21116", false},
		{"abcdefghijklmno1", true}, // 16 with a digit
		{"abcdefghijklmn1", false}, // 15
		{"ABCDEFGHIJKLMNOP", true},
		{"0123456789abcdef", true},
		{"x " + strings.Repeat("aB", 8) + " y", true},
		{strings.Repeat("aB3.", 10), false}, // runs of 4
		{base64.StdEncoding.EncodeToString(secret), true},
		{base64.RawStdEncoding.EncodeToString(seed), true},
		{base64.URLEncoding.EncodeToString(seed), true},
		{base64.RawURLEncoding.EncodeToString(secret), true},
		{hex.EncodeToString(seed), true},
		{strings.ToUpper(hex.EncodeToString(secret)), true},
		{base64.StdEncoding.EncodeToString(seed)[:16], true},
		{"https://" + base64.StdEncoding.EncodeToString(seed), true},
	}
	for _, tt := range tests {
		if got := KeyLike(tt.in); got != tt.want {
			t.Errorf("KeyLike(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEcho(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rd.example.com;reboot", `"rd.example.com;reboot"`},
		{"", `""`},
		{"a\nb\x1b", `"a\nb\x1b"`},
		{strings.Repeat("ab.", 30), `"` + strings.Repeat("ab.", 26) + `ab"…`},
		{"j2FI0nKkrBFJY7UKDQJYhAOTCfAOBUyiby169temW3Q=", "(value withheld: it looks like key material; 44 characters)"},
		{"ÄbcdefghijklmnoP", `"ÄbcdefghijklmnoP"`}, // 15 after the Ä
		{"ÄbcdefghijklmnoPq", "(value withheld: it looks like key material; 17 characters)"},
	}
	for _, tt := range tests {
		if got := Echo(tt.in); got != tt.want {
			t.Errorf("Echo(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzEcho: Echo never shows a key-like run, never a control character, and
// never more than 80 runes of the value.
func FuzzEcho(f *testing.F) {
	for _, s := range []string{"", "rd.example.com", "j2FI0nKkrBFJY7UKDQJYhAOTCfAOBUyiby169temW3Q=", "a\x00b", strings.Repeat("x", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Echo(s)
		withheld := strings.HasPrefix(out, "(value withheld")
		if KeyLike(s) && !withheld {
			t.Fatalf("Echo(%q) = %s shows a key-like value", s, out)
		}
		if withheld {
			if strings.Contains(out, `"`) {
				t.Fatalf("Echo(%q) = %s", s, out)
			}
			return
		}
		if KeyLike(out) {
			t.Fatalf("Echo(%q) = %s is key-like", s, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("Echo(%q) = %q holds a control character", s, out)
			}
		}
		if utf8.RuneCountInString(s) <= 80 && !strings.HasSuffix(out, `"`) {
			t.Fatalf("Echo(%q) = %s cut a short value", s, out)
		}
	})
}
