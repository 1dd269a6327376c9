package keys

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// TestParsePublicArg: the cases where rdctl check's and rdctl export's
// --key parsers, now this one, disagreed, and the rest of the rule.
func TestParsePublicArg(t *testing.T) {
	const pub = vectorPublicFile // 44 characters
	secret := vectorSecretFile
	folded := secret[:40] + "\n" + secret[40:]
	for _, tc := range []struct {
		in     string
		want   string // the key returned; "" for an error
		reason string // in the error
		secret bool
		why    string
	}{
		// where they disagreed
		{in: pub + "\n", want: pub, why: "check trimmed, export refused: a key read from a file or here-string ends with a line break; drop it"},
		{in: pub + "\r\n", want: pub, why: "likewise with a CRLF file"},
		{in: " " + pub, reason: "contains whitespace", why: "check trimmed, export refused: a leading space means something else was pasted"},
		{in: pub + " ", reason: "contains whitespace", why: "check trimmed, export refused: likewise for a space or tab after the key"},
		{in: pub + "\t\n", reason: "contains whitespace", why: "only line breaks are dropped"},
		{in: folded, reason: "that is a secret key", secret: true, why: "check called it a malformed public key, export a secret: a secret is refused as one however it is broken"},
		{in: "", reason: "is empty", why: "check said empty, export 0 characters"},
		// where they agreed
		{in: pub, want: pub},
		{in: secret, reason: "that is a secret key", secret: true},
		{in: " " + secret + "\n", reason: "that is a secret key", secret: true},
		{in: pub[:43], reason: "43 characters, want 44"},
		{in: strings.ReplaceAll(pub, "/", "_"), reason: "not standard padded base64"},
		{in: pub[:42] + "h=", reason: "not standard padded base64"}, // set bits past the data (hbbs's decoder refuses)
		{in: pub[:43] + "A", reason: "decodes to 33 bytes, want 32"},
		{in: pub[:40] + "Ww==", reason: "decodes to 31 bytes, want 32"},
		{in: pub[:2] + " " + pub[3:], reason: "contains whitespace"},
		{in: "\n", reason: "is empty"},
	} {
		got, key, err := ParsePublicArg("--key", tc.in)
		var ae *ArgError
		switch {
		case tc.want != "":
			if err != nil || got != tc.want || base64.StdEncoding.EncodeToString(key) != tc.want {
				t.Errorf("%q: %q, %v; want %q (%s)", tc.in, got, err, tc.want, tc.why)
			}
		case !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.reason) || ae.Secret != tc.secret || got != "" || key != nil:
			t.Errorf("%q: %q, %v; want an *ArgError with %q, secret %v (%s)", tc.in, got, err, tc.reason, tc.secret, tc.why)
		case !strings.HasPrefix(err.Error(), "--key: "):
			t.Errorf("%q: error %q does not name the flag", tc.in, err)
		case strings.Contains(err.Error(), secret[:20]):
			t.Errorf("%q: error %q echoes the secret", tc.in, err)
		}
	}
}

// FuzzParsePublicArg: never panics; an accepted key is the input without
// trailing line breaks, canonical, and what ParsePublic reads; a refusal
// is an *ArgError that never echoes the input; a secret key is refused as
// one however it is spaced.
func FuzzParsePublicArg(f *testing.F) {
	for _, s := range []string{vectorPublicFile, vectorPublicFile + "\r\n", " " + vectorPublicFile, vectorSecretFile,
		vectorSecretFile[:50] + "\n " + vectorSecretFile[50:], "", "====", "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, key, err := ParsePublicArg("--key", s)
		if err == nil {
			if got != strings.TrimRight(s, "\r\n") || base64.StdEncoding.EncodeToString(key) != got {
				t.Fatalf("%q: accepted as %q (%x)", s, got, key)
			}
			if pub, err := ParsePublic([]byte(got)); err != nil || !pub.Equal(key) {
				t.Fatalf("%q: ParsePublic says %x, %v", got, pub, err)
			}
			return
		}
		var ae *ArgError
		if !errors.As(err, &ae) {
			t.Fatalf("%q: error not typed: %v", s, err)
		}
		if v := strings.TrimSpace(s); len(v) >= 8 && strings.Contains(err.Error(), v) {
			t.Fatalf("%q: error %q echoes the input", s, err)
		}
		if p, perr := ParseSecret([]byte(s)); perr == nil && !ae.Secret {
			t.Fatalf("%q: a secret key (%d bytes) refused as %v", s, len(p.SecretFileBytes()), err)
		}
	})
}
