package hbbstest

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// TestDecodeSecret pins the stand-in's own decoder against the encodings hbbs
// 1.1.16 was measured to load and reject, on a fixed secret so the vectors
// are exact.
func TestDecodeSecret(t *testing.T) {
	sk := make([]byte, 64)
	for i := range sk {
		sk[i] = byte(i*7 + 3)
	}
	enc := base64.StdEncoding.EncodeToString(sk) // 86 symbols + "=="
	urlSafe := base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 64))
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"padded", enc, true},
		{"one '=' missing", enc[:87], true},
		{"unpadded", enc[:86], true},
		{"85 symbols", enc[:85], false},
		{"three '='", enc + "=", false},
		{"'=' then data", enc[:86] + "=A", false},
		{"padding early", enc[:85] + "==", false},
		{"url-safe alphabet", urlSafe, false},
		{"line break inside", enc[:40] + "\n" + enc[40:], false},
		{"CR inside", enc[:40] + "\r" + enc[40:], false},
		{"trailing newline (the caller trims)", enc + "\n", false},
		{"set bits past the data", nonCanonical(enc), false},
		{"set bits past the data, unpadded", nonCanonical(enc)[:86], false},
		{"empty", "", false},
		{"a public key", enc[:43] + "=", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := decodeSecret(c.in)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if ok && !bytes.Equal(got, sk) {
				t.Fatalf("decoded % x", got)
			}
		})
	}
}

// FuzzDecodeSecret checks decodeSecret against encoding/base64 as an oracle:
// it accepts exactly 86 symbols plus "", "=" or "==" that Go's strict
// standard decoder (with the padding completed, and no CR/LF, which Go
// skips) reads as 64 bytes, and returns those bytes.
func FuzzDecodeSecret(f *testing.F) {
	sk := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, 22)[:64]
	enc := base64.StdEncoding.EncodeToString(sk)
	for _, s := range []string{enc, enc[:87], enc[:86], enc + "=", nonCanonical(enc), enc[:40] + "\n" + enc[41:], "", "===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodeSecret(s)
		want, werr := []byte(nil), error(nil)
		wantOK := len(s) >= 86 && len(s) <= 88 && strings.Trim(s[86:], "=") == "" && !strings.ContainsAny(s[:86], "\r\n=")
		if wantOK {
			want, werr = base64.StdEncoding.Strict().DecodeString(s[:86] + "==")
			wantOK = werr == nil && len(want) == 64
		}
		if ok != wantOK || ok && !bytes.Equal(got, want) {
			t.Fatalf("%q: got %v % x, oracle %v % x (%v)", s, ok, got, wantOK, want, werr)
		}
	})
}
