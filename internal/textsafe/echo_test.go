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

func TestWithhold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"flag provided but not defined: -nope", "flag provided but not defined: -nope"},
		{`invalid value "j2FI0nKkrBFJY7UKDQJYhAOTCfAOBUyiby169temW3Q=" for flag -lock-wait`, `invalid value "[withheld]=" for flag -lock-wait`},
		{"a 0123456789abcdef b", "a [withheld] b"},
		{"é/var/lib/rustdesk-server\n", "é/var/lib/rustdesk-server\n"},
	}
	for _, tt := range tests {
		if got := Withhold(tt.in); got != tt.want {
			t.Errorf("Withhold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzWithhold(f *testing.F) {
	for _, s := range []string{"", "x 0123456789abcdef", "é\xff/aB3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Withhold(s)
		if KeyLike(out) {
			t.Fatalf("Withhold(%q) = %q keeps a key-like run", s, out)
		}
		if !KeyLike(s) && out != s {
			t.Fatalf("Withhold(%q) = %q changed text with no key-like run", s, out)
		}
	})
}

func TestKeyMaterial(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i*37 + 11)
	}
	std := base64.StdEncoding.EncodeToString(append(append([]byte{}, seed...), seed...))
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"/tmp/TestStatusPrintsOrigin1234567/001/img/var/lib/rustdesk", false},
		{"/tmp/TestSecretInAnyRecordFieldIsNeverPrinted1234567/001", false}, // digits at the end
		{"/tmp/TestSecretInAnyRecordFieldIsNeverPrinted1234567x/001", true}, // a path part of 40 mixed-case characters
		{"/var/lib/rustdesk-server/" + strings.Repeat("abc-", 20), false},
		{"rustdesk/rustdesk-server@sha256", false},
		{strings.Repeat("0123456789", 3) + "abcdefghi", false}, // 39 hex
		{strings.Repeat("0123456789", 4), true},
		{hex.EncodeToString(seed), true},
		{strings.ToUpper(hex.EncodeToString(seed)), true},
		{std, true},
		{std[:40], true},
		{"key=" + std[:40] + "\n", true},
		{"out/" + base64.RawURLEncoding.EncodeToString(seed), true},
		{"/srv/" + base64.RawURLEncoding.EncodeToString(seed), true},
		{"https://" + base64.RawURLEncoding.EncodeToString(seed) + ":21114", true},
		{"/abcdefghij/KLMNOPQRSTUV/wxyz0123456789/ABCDEFGHIJ/klmn", false}, // the documented gap
	}
	for _, tt := range tests {
		if got := KeyMaterial(tt.in); got != tt.want {
			t.Errorf("KeyMaterial(%q) = %v, want %v", tt.in, got, tt.want)
		}
		// KeyRun differs only on the parts of absolute paths.
		absPart := strings.Contains(tt.in, "/")
		if got := KeyRun(tt.in); got != tt.want && !(absPart && tt.want && !got) {
			t.Errorf("KeyRun(%q) = %v", tt.in, got)
		}
	}
	for _, s := range []string{"/tmp/TestRotateDiskFullfree-0-pages1234567890/001/img", "/srv/" + base64.RawURLEncoding.EncodeToString(seed)} {
		if KeyRun(s) {
			t.Errorf("KeyRun(%q) refuses a path part", s)
		}
	}
}

// FuzzKeyMaterial: a key material verdict survives being put in a larger
// text, and anything KeyMaterial finds KeyLike finds too (so an error
// message withholds what a check refuses).
func FuzzKeyMaterial(f *testing.F) {
	f.Add("j2FI0nKkrBFJY7UKDQJYhAOTCfAOBUyiby169temW3Q=")
	f.Add("/var/lib/rustdesk")
	f.Fuzz(func(t *testing.T, s string) {
		if KeyRun(s) && !KeyMaterial(s) {
			t.Fatalf("KeyRun(%q) but not KeyMaterial", s)
		}
		if !KeyMaterial(s) {
			return
		}
		if !KeyLike(s) {
			t.Fatalf("KeyMaterial(%q) but not KeyLike", s)
		}
		if !KeyMaterial("x " + s + " y") {
			t.Fatalf("KeyMaterial(%q) but not in a sentence", s)
		}
		if KeyRun(s) && !KeyMaterial(s) {
			t.Fatalf("KeyRun(%q) but not KeyMaterial", s)
		}
	})
}
