package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/rdctl/rdctl/internal/safefs"
)

// hbbsDecodes is what hbbs 1.1.16 was measured to load, written out as an
// oracle, without encoding/base64 (which ParseSecret uses): hbbs 1.1.16 reads
// id_ed25519 as UTF-8 text, trims Unicode white space at both ends, and
// decodes what is left as standard-alphabet base64 of exactly 64 bytes: 86
// data symbols followed by no, one or two '=', nothing else inside (no line
// break), and the 4 bits past the data in the 86th symbol zero. It returns
// the 64 bytes and whether hbbs decodes them.
func hbbsDecodes(data []byte) ([]byte, bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	if !utf8.Valid(data) {
		return nil, false
	}
	s := strings.TrimFunc(string(data), func(r rune) bool { return unicode.Is(unicode.White_Space, r) })
	if len(s) < 86 || len(s) > 88 || strings.Trim(s[86:], "=") != "" {
		return nil, false
	}
	var out []byte
	var acc, bits uint
	for i := range 86 {
		v := strings.IndexByte(alphabet, s[i])
		if v < 0 {
			return nil, false
		}
		acc, bits = acc<<6|uint(v), bits+6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	if acc != 0 { // 86×6 = 516 bits: the last 4 must be zero
		return nil, false
	}
	return out, len(out) == 64
}

// hbbsVerdict is the oracle's verdict: not UTF-8 or halves that disagree
// leave nothing enforced, anything else the oracle does not decode is fatal.
func hbbsVerdict(data []byte) Verdict {
	if !utf8.Valid(data) {
		return VerdictUnenforced
	}
	raw, ok := hbbsDecodes(data)
	switch {
	case !ok:
		return VerdictFatal
	case !bytes.Equal(ed25519.NewKeyFromSeed(raw[:32]), raw):
		return VerdictUnenforced
	}
	return VerdictLoads
}

// TestSecretVerdict: every encoding of id_ed25519 measured against the real
// hbbs 1.1.16, with what it did with it as the expected value, and the rest
// of what it implies.
func TestSecretVerdict(t *testing.T) {
	canon := vectorSecretFile // 88 characters, "==" at the end
	unpadded := canon[:86]
	mismatched := func(b64 string) string {
		raw, _ := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
		raw[63] ^= 1 // the public half no longer derives from the seed
		return base64.StdEncoding.EncodeToString(raw)[:len(b64)]
	}
	raw, _ := base64.StdEncoding.DecodeString(canon)
	for _, tc := range []struct {
		name string
		in   string
		want Verdict
	}{
		// Measured: decodes with missing or partial padding (88 characters,
		// 86 or 87 without '='); a trailing newline or CRLF is accepted.
		{"padded, as hbbs writes it", canon, VerdictLoads},
		{"partial padding (87)", canon[:87], VerdictLoads},
		{"no padding (86)", unpadded, VerdictLoads},
		{"trailing newline", canon + "\n", VerdictLoads},
		{"trailing CRLF", canon + "\r\n", VerdictLoads},
		{"no padding, trailing newline", unpadded + "\n", VerdictLoads},
		{"partial padding, trailing CRLF", canon[:87] + "\r\n", VerdictLoads},
		{"white space around (hbbs trims both ends)", "  " + canon + "\n\n", VerdictLoads},
		// Measured: still rejected (Fatal error, exit 1): non-zero bits past
		// the data in the last symbol, the URL-safe alphabet, line breaks
		// inside, wrong length.
		{"set bits past the data", nonCanonical(canon), VerdictFatal},
		{"set bits past the data, no padding", nonCanonical(unpadded), VerdictFatal},
		{"URL-safe alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(canon), VerdictFatal},
		{"URL-safe alphabet, no padding", strings.NewReplacer("+", "-", "/", "_").Replace(unpadded), VerdictFatal},
		{"line break inside", canon[:40] + "\n" + canon[40:], VerdictFatal},
		{"CRLF inside, no padding", unpadded[:40] + "\r\n" + unpadded[40:], VerdictFatal},
		{"wrong length: 63 bytes", base64.StdEncoding.EncodeToString(raw[:63]), VerdictFatal},
		{"wrong length: 63 bytes, no padding", base64.RawStdEncoding.EncodeToString(raw[:63]), VerdictFatal},
		{"wrong length: 65 bytes", base64.StdEncoding.EncodeToString(append(raw[:64:64], 0)), VerdictFatal},
		{"wrong length: 85 symbols", canon[:85], VerdictFatal},
		{"wrong length: the public key", vectorPublicFile, VerdictFatal},
		{"wrong length: empty", "", VerdictFatal},
		{"three '='", unpadded + "===", VerdictFatal},
		{"'=' inside", canon[:20] + "=" + canon[21:], VerdictFatal},
		{"not base64", strings.Replace(canon, "A", "*", 1), VerdictFatal},
		// Measured: a secret whose two halves disagree, or non-UTF-8
		// content: the server starts and enforces nothing.
		{"halves disagree", mismatched(canon), VerdictUnenforced},
		{"halves disagree, no padding", mismatched(unpadded), VerdictUnenforced},
		{"not UTF-8 after the key", canon + "\xff", VerdictUnenforced},
		{"not UTF-8", "\xfe\xff", VerdictUnenforced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SecretVerdict([]byte(tc.in))
			if got != tc.want {
				t.Errorf("SecretVerdict = %s, want %s", got, tc.want)
			}
			if o := hbbsVerdict([]byte(tc.in)); o != tc.want {
				t.Errorf("the oracle says %s, want %s: the oracle or the table is wrong", o, tc.want)
			}
			// ParseSecret takes what hbbs decodes (loads, or halves that
			// disagree), and rdctl calls valid only what hbbs enforces.
			p, err := ParseSecret([]byte(tc.in))
			_, decodes := hbbsDecodes([]byte(tc.in))
			if (err == nil) != decodes {
				t.Errorf("ParseSecret err = %v, hbbs decodes: %v", err, decodes)
			}
			if valid := err == nil && p.Validate() == nil; valid != (tc.want == VerdictLoads) {
				t.Errorf("valid = %v for verdict %s", valid, tc.want)
			}
			if err == nil && p.PublicBase64() != vectorPublicFile && !strings.HasPrefix(tc.name, "halves disagree") {
				t.Errorf("serves %s, want %s", p.PublicBase64(), vectorPublicFile)
			}
		})
	}
}

// TestInspectVerdict: what Inspect says hbbs does with what is at
// id_ed25519, including what no file content shows.
func TestInspectVerdict(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  Verdict
		valid bool
	}{
		{"absent", func(t *testing.T, dir string) {}, VerdictAbsent, false},
		{"unpadded secret", func(t *testing.T, dir string) {
			noErr(t, os.WriteFile(filepath.Join(dir, SecretFile), []byte(vectorSecretFile[:86]), 0o600))
		}, VerdictLoads, true},
		// Measured: a directory at id_ed25519: the server starts and
		// enforces nothing.
		{"directory", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(filepath.Join(dir, SecretFile), 0o700))
		}, VerdictUnenforced, false},
		{"halves disagree", func(t *testing.T, dir string) {
			raw, _ := base64.StdEncoding.DecodeString(vectorSecretFile)
			raw[40] ^= 0x80
			noErr(t, os.WriteFile(filepath.Join(dir, SecretFile), []byte(base64.StdEncoding.EncodeToString(raw)), 0o600))
		}, VerdictUnenforced, false},
		{"malformed", func(t *testing.T, dir string) {
			noErr(t, os.WriteFile(filepath.Join(dir, SecretFile), []byte(vectorPublicFile), 0o600))
		}, VerdictFatal, false},
		// rdctl never follows a symlink there, so it cannot say.
		{"symlink", func(t *testing.T, dir string) {
			target := filepath.Join(t.TempDir(), "k")
			noErr(t, os.WriteFile(target, []byte(vectorSecretFile), 0o600))
			noErr(t, os.Symlink(target, filepath.Join(dir, SecretFile)))
		}, VerdictUnknown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			d, err := safefs.OpenDir(dir)
			noErr(t, err)
			defer d.Close()
			st, err := Inspect(d)
			noErr(t, err)
			if st.Verdict != tc.want || st.Valid != tc.valid {
				t.Errorf("verdict %s valid %v, want %s %v (err %v)", st.Verdict, st.Valid, tc.want, tc.valid, st.SecretErr)
			}
			if st.Verdict.Enforced() != (tc.want == VerdictLoads || tc.want == VerdictAbsent) {
				t.Errorf("Enforced() = %v for %s", st.Verdict.Enforced(), st.Verdict)
			}
		})
	}
}

// TestOriginalFileBytes: a parsed pair keeps the file byte for byte (what a
// backup must hold); its canonical form is hbbs's padded one.
func TestOriginalFileBytes(t *testing.T) {
	for _, in := range []string{vectorSecretFile, vectorSecretFile[:86], vectorSecretFile[:87] + "\r\n"} {
		p, err := ParseSecret([]byte(in))
		noErr(t, err)
		if string(p.OriginalFileBytes()) != in || string(p.SecretFileBytes()) != vectorSecretFile {
			t.Errorf("%q: original %q, canonical %q", in, p.OriginalFileBytes(), p.SecretFileBytes())
		}
		if p.Canonical() != (in == vectorSecretFile) {
			t.Errorf("%q: Canonical() = %v", in, p.Canonical())
		}
	}
	g, _ := FromSeed(vectorSeed())
	if string(g.OriginalFileBytes()) != vectorSecretFile || !g.Canonical() {
		t.Errorf("a pair made here: %q", g.OriginalFileBytes())
	}
}

// FuzzSecretVerdict: SecretVerdict agrees with the oracle on every input.
func FuzzSecretVerdict(f *testing.F) {
	f.Add([]byte(vectorSecretFile))
	f.Add([]byte(vectorSecretFile[:86] + "\n"))
	f.Add([]byte(vectorSecretFile + "\xff"))
	f.Add([]byte(nonCanonical(vectorSecretFile[:87])))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := SecretVerdict(data), hbbsVerdict(data); got != want {
			t.Fatalf("%q: %s, hbbs %s", data, got, want)
		}
	})
}
