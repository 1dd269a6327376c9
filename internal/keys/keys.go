// Package keys reads, writes, generates and checks hbbs's Ed25519 key files.
//
// # File format
//
// hbbs keeps its key pair in two files in its working directory:
//
//   - id_ed25519: standard padded base64 of the 64-byte secret key, which is
//     seed(32) ‖ public key(32) — the layout of Go's [ed25519.PrivateKey].
//     88 characters, ending in "==".
//   - id_ed25519.pub: standard padded base64 of the 32-byte public key.
//     44 characters, ending in "=".
//
// Neither file has a trailing newline; hbbs writes the bytes only. On read
// hbbs trims surrounding whitespace, and so does this package. hbbs never
// reads the .pub file: the key it serves is bytes 32..64 of the secret.
//
// hbbs 1.1.16 reads the secret more leniently than it writes it: padding
// may be missing or partial (86 or 87 characters), as its decoder (Rust
// base64 0.13) does not require it. [ParseSecret] accepts exactly that, and
// [SecretVerdict] says what the real server does with any id_ed25519.
//
// This package never returns secret key material in an error message.
package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// File names hbbs uses, relative to its working directory.
const (
	SecretFile = "id_ed25519"
	PublicFile = "id_ed25519.pub"
)

// Sizes of the decoded key material.
const (
	SecretSize = ed25519.PrivateKeySize // 64: seed ‖ public key
	PublicSize = ed25519.PublicKeySize  // 32
)

// MaxFileSize caps how much of a key file is read. A valid secret file is
// 88 bytes; anything far larger is not a key file.
const MaxFileSize = 4096

// maxGenerateTries is how often Generate retries to find a public key whose
// base64 form has no '/' or ':'. hbbs uses the same bound.
const maxGenerateTries = 300

// ErrMalformed reports a key file that is not a valid hbbs key file. hbbs
// itself exits with "malformed private key" on such a secret file.
var ErrMalformed = errors.New("malformed key")

// MalformedError describes why a key file or key string was rejected. It
// never contains the key material itself.
type MalformedError struct {
	What   string // "secret key" or "public key"
	Reason string // e.g. "decodes to 63 bytes, want 64"
}

func (e *MalformedError) Error() string { return fmt.Sprintf("malformed %s: %s", e.What, e.Reason) }

// Unwrap lets errors.Is(err, ErrMalformed) match.
func (e *MalformedError) Unwrap() error { return ErrMalformed }

// Pair is an Ed25519 key pair as hbbs stores it. The zero value is not valid.
type Pair struct {
	secret ed25519.PrivateKey
	// file is the id_ed25519 contents the pair was parsed from, byte for
	// byte (a backup must hold what was on disk, padding or newline
	// included); nil for a pair made here.
	file []byte
}

// FromSeed derives the pair for a 32-byte seed.
func FromSeed(seed []byte) (Pair, error) {
	if len(seed) != ed25519.SeedSize {
		return Pair{}, &MalformedError{What: "seed", Reason: fmt.Sprintf("is %d bytes, want %d", len(seed), ed25519.SeedSize)}
	}
	return Pair{secret: ed25519.NewKeyFromSeed(seed)}, nil
}

// Generate makes a new pair from rand (crypto/rand when nil) whose public key
// in base64 contains neither '/' nor ':', as hbbs does, so that the key can be
// used in Windows installer file names ("rustdesk-host=…,key=…,.exe").
func Generate(r io.Reader) (Pair, error) {
	if r == nil {
		r = rand.Reader
	}
	seed := make([]byte, ed25519.SeedSize)
	for range maxGenerateTries {
		if _, err := io.ReadFull(r, seed); err != nil {
			return Pair{}, fmt.Errorf("generate key: %w", err)
		}
		p, _ := FromSeed(seed)
		if pk := p.PublicBase64(); !strings.ContainsAny(pk, "/:") {
			if err := p.Validate(); err != nil {
				return Pair{}, err
			}
			return p, nil
		}
	}
	return Pair{}, fmt.Errorf("generate key: no public key without '/' in %d tries", maxGenerateTries)
}

// ParseSecret parses the contents of an id_ed25519 file, accepting exactly
// what hbbs 1.1.16 loads (measured on it): surrounding whitespace is trimmed
// (a trailing newline or CRLF), and the rest must be standard-alphabet
// base64 of exactly 64 bytes with full, partial or no padding (88, 87 or 86
// characters), no line break inside and no set bits past the data in the
// last symbol. ParseSecret does not check that the public half matches the
// seed: see [Pair.Validate] and [SecretVerdict].
func ParseSecret(data []byte) (Pair, error) {
	raw, err := decodeStd(bytes.TrimSpace(data), SecretSize, "secret key", true)
	if err != nil {
		return Pair{}, err
	}
	return Pair{secret: ed25519.PrivateKey(raw), file: bytes.Clone(data)}, nil
}

// ParsePublic parses the contents of an id_ed25519.pub file, or a key string
// as clients are given it, and returns the 32 raw bytes. Unlike the secret,
// the public key must be padded: hbbs never reads .pub, and clients compare
// the key string byte for byte with the padded one hbbs serves, so an
// unpadded one is a different key to them.
func ParsePublic(data []byte) (ed25519.PublicKey, error) {
	if len(data) > MaxFileSize {
		return nil, &MalformedError{What: "public key", Reason: fmt.Sprintf("file is %d bytes, too large for a key", len(data))}
	}
	raw, err := decodeStd(bytes.TrimSpace(data), PublicSize, "public key", false)
	if err != nil {
		return nil, err
	}
	return ed25519.PublicKey(raw), nil
}

// decodeStd decodes s (already trimmed) as hbbs's decoder (Rust base64
// 0.13, standard alphabet) does, with padding required unless optional, and
// checks that it yields want bytes.
func decodeStd(s []byte, want int, what string, optionalPadding bool) ([]byte, error) {
	if len(s) == 0 {
		return nil, &MalformedError{What: what, Reason: "empty"}
	}
	// No line breaks inside (Go's decoder would skip them, hbbs's does not),
	// and no set bits past the data in the last symbol (Strict), so a file
	// rdctl accepts is one hbbs accepts.
	if bytes.ContainsAny(s, "\r\n") {
		return nil, &MalformedError{What: what, Reason: "line break inside the base64"}
	}
	// Longer than any encoding of want bytes: say so without decoding.
	if max := base64.StdEncoding.EncodedLen(want); len(s) > max {
		return nil, &MalformedError{What: what, Reason: fmt.Sprintf("%d characters, too long for %d bytes", len(s), want)}
	}
	enc, reason := base64.StdEncoding.Strict(), "not standard padded base64"
	if optionalPadding {
		data, ok := stripPadding(s)
		if !ok {
			return nil, &MalformedError{What: what, Reason: "misplaced '=' padding"}
		}
		// The reason keeps the words rdctl has always used: padding may be
		// left out, but nothing else about the standard encoding may.
		s, enc = data, base64.RawStdEncoding.Strict()
	}
	raw := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(raw, s)
	if err != nil {
		// The error from encoding/base64 names only an offset, never content.
		return nil, &MalformedError{What: what, Reason: reason + " (" + err.Error() + ")"}
	}
	if n != want {
		return nil, &MalformedError{What: what, Reason: fmt.Sprintf("decodes to %d bytes, want %d", n, want)}
	}
	return raw[:n], nil
}

// stripPadding drops the '=' padding from the end of s where Rust base64
// 0.13 allows it: only in the third and fourth place of the last group of
// four, after at least two data symbols, so "xx", "xx=", "xx==", "xxx" and
// "xxx=" end a valid string and "xxx==" or "xx===" do not. It reports false
// for padding anywhere else; '=' inside the data is left for the decoder to
// refuse.
func stripPadding(s []byte) ([]byte, bool) {
	data := bytes.TrimRight(s, "=")
	pad, r := len(s)-len(data), len(data)%4
	return data, pad == 0 || (r >= 2 && r+pad <= 4)
}

// SecretFileBytes returns the exact contents hbbs writes to id_ed25519:
// padded standard base64, no newline. The caller must keep it out of logs.
func (p Pair) SecretFileBytes() []byte {
	return []byte(base64.StdEncoding.EncodeToString(p.secret))
}

// OriginalFileBytes returns the id_ed25519 contents the pair was parsed
// from, byte for byte, or [Pair.SecretFileBytes] for a pair made here. A
// backup holds these, so that putting it back restores exactly what was on
// disk. The caller must keep it out of logs.
func (p Pair) OriginalFileBytes() []byte {
	if p.file != nil {
		return bytes.Clone(p.file)
	}
	return p.SecretFileBytes()
}

// Canonical reports whether the pair's file is in the form hbbs writes
// (padded base64, no whitespace); a pair made here always is.
func (p Pair) Canonical() bool {
	return p.file == nil || bytes.Equal(p.file, p.SecretFileBytes())
}

// PublicFileBytes returns the exact contents hbbs writes to id_ed25519.pub.
func (p Pair) PublicFileBytes() []byte { return []byte(p.PublicBase64()) }

// Public returns the public half stored in the secret (bytes 32..64), which
// is the key hbbs serves.
func (p Pair) Public() ed25519.PublicKey {
	return ed25519.PublicKey(p.secret[ed25519.SeedSize:])
}

// PublicBase64 is the key string clients are configured with.
func (p Pair) PublicBase64() string { return encodePublic(p.Public()) }

func encodePublic(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// Fingerprint is the short human form of this pair's public key.
func (p Pair) Fingerprint() string { return Fingerprint(p.Public()) }

// HasSeed reports whether b is p's 32-byte seed: 44 characters of base64
// that look like a public key but give the whole secret away. It compares
// in constant time.
func (p Pair) HasSeed(b []byte) bool {
	return len(p.secret) == ed25519.PrivateKeySize && subtle.ConstantTimeCompare(p.secret[:ed25519.SeedSize], b) == 1
}

// IsZero reports whether p holds no key.
func (p Pair) IsZero() bool { return len(p.secret) == 0 }

// Equal reports whether p and q hold the same secret key.
func (p Pair) Equal(q Pair) bool { return bytes.Equal(p.secret, q.secret) }

// Validate checks what hbbs does not: that the stored public half is the one
// the seed derives, and that a signature made with the secret verifies with
// the public key (the check `rustdesk-utils validatekeypair` makes).
func (p Pair) Validate() error {
	if len(p.secret) != SecretSize {
		return &MalformedError{What: "secret key", Reason: "no key"}
	}
	derived := ed25519.NewKeyFromSeed(p.secret.Seed())
	if !bytes.Equal(derived[ed25519.SeedSize:], p.secret[ed25519.SeedSize:]) {
		return &MalformedError{What: "secret key", Reason: "its public half is not the one its seed derives"}
	}
	msg := []byte("rdctl key self-test")
	if !ed25519.Verify(p.Public(), msg, ed25519.Sign(p.secret, msg)) {
		return &MalformedError{What: "secret key", Reason: "signature does not verify"}
	}
	return nil
}

// Fingerprint returns a short, stable, human-comparable form of a public
// key: "SHA256:" and the first 12 bytes of its SHA-256 in unpadded base64
// (16 characters), in the spirit of ssh-keygen -l.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:12])
}

// Sign signs msg with the secret key, as hbbs signs IdPk messages.
func (p Pair) Sign(msg []byte) []byte { return ed25519.Sign(p.secret, msg) }
