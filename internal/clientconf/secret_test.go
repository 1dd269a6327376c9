package clientconf

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// secretNeedles returns byte strings that would betray any part of priv:
// its base64 (both alphabets, padded or not), the base64 and hex of its
// seed half, its raw bytes and hex, and every short window of the seed in
// each spelling (a leak of part of the key is still a leak). Windows are
// long enough that a chance match in kilobytes of output is negligible
// (64^8, 2^48, 16^12).
func secretNeedles(priv ed25519.PrivateKey) [][]byte {
	seed := priv.Seed()
	var needles [][]byte
	add := func(s ...string) {
		for _, x := range s {
			needles = append(needles, []byte(x))
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		add(enc.EncodeToString(priv), enc.EncodeToString(seed))
	}
	add(string(priv), string(seed),
		hex.EncodeToString(priv), strings.ToUpper(hex.EncodeToString(priv)),
		hex.EncodeToString(seed), strings.ToUpper(hex.EncodeToString(seed)))
	windows := func(s string, n int) {
		for i := 0; i+n <= len(s); i++ {
			add(s[i : i+n])
		}
	}
	windows(base64.RawStdEncoding.EncodeToString(seed), 8)
	windows(base64.RawURLEncoding.EncodeToString(seed), 8)
	// The seed half of the secret key file's base64: bytes 0..29 fill
	// characters 0..39 without touching the public half.
	windows(base64.StdEncoding.EncodeToString(priv)[:40], 8)
	windows(string(seed), 6)
	windows(hex.EncodeToString(seed), 12)
	windows(strings.ToUpper(hex.EncodeToString(seed)), 12)
	return needles
}

func findNeedle(out []byte, needles [][]byte) []byte {
	for _, n := range needles {
		if bytes.Contains(out, n) {
			return n
		}
	}
	return nil
}

// TestNoSecretInOutputs renders every format for servers configured with the
// public half of a known key pair and looks for any part of the secret half.
func TestNoSecretInOutputs(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(0xa0 + i)
	}
	// Like hbbs's gen_sk, pick a key whose public base64 has no '/', so the
	// host= file name is produced too.
	var priv ed25519.PrivateKey
	var key string
	for {
		priv = ed25519.NewKeyFromSeed(seed)
		key = base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
		if !strings.Contains(key, "/") {
			break
		}
		seed[31]++
	}
	needles := secretNeedles(priv)

	// The checker itself must be able to fail.
	for _, planted := range []string{
		base64.StdEncoding.EncodeToString(priv),
		base64.StdEncoding.EncodeToString(priv)[12:24],
		hex.EncodeToString(seed)[20:40],
		"x" + string(seed[3:11]) + "y",
	} {
		if findNeedle([]byte("prefix "+planted+" suffix"), needles) == nil {
			t.Fatalf("checker misses a planted secret fragment %q", planted)
		}
	}

	servers := []Server{
		{Host: "rd.example.com", Key: key},
		{Host: "rd.example.com", Relay: "relay.example.com", Key: key},
		{Host: "rd.example.com:21116", Relay: "rd.example.com:21117", API: "https://rd.example.com", Key: key},
	}
	outputs := 0
	for _, s := range servers {
		for _, f := range Formats {
			out, err := Render(f, s, Options{Fingerprint: "fp"})
			if f == FormatExeName && err != nil {
				continue // refused (':' or '/' in a value); nothing to leak
			}
			if err != nil {
				t.Fatalf("Render(%s): %v", f, err)
			}
			outputs++
			if n := findNeedle(out, needles); n != nil {
				t.Errorf("%s output for %+v contains secret material %q", f, s, n)
			}
			if f == FormatQR {
				text := zxingRead(t, out)
				if n := findNeedle([]byte(text), needles); n != nil {
					t.Errorf("QR text contains secret material %q", n)
				}
			}
		}
	}
	if outputs < 2*len(Formats) {
		t.Errorf("only %d outputs checked", outputs)
	}
}
