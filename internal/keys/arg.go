package keys

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// ArgError reports a public key given as a command-line argument that
// rdctl refuses. It never holds what was given: that may be a secret key,
// or most of one.
type ArgError struct {
	Flag   string // e.g. "--key"
	Reason string
	// Secret means a secret key was given where the public key belongs.
	Secret bool
}

func (e *ArgError) Error() string { return e.Flag + ": " + e.Reason }

// publicLen is the length of a public key as hbbs writes id_ed25519.pub.
var publicLen = base64.StdEncoding.EncodedLen(PublicSize)

// ParsePublicArg parses a public key given on the command line as flag:
// exactly what hbbs writes to id_ed25519.pub and clients are given, 44
// characters of padded standard base64 of 32 bytes, since hbbs and clients
// compare the string byte for byte. Trailing line breaks are dropped (a key
// read from a file or a here-string ends with one); any other whitespace is
// refused, as it means something else was pasted too. A secret key is
// refused as such: the secret must never be on a command line.
func ParsePublicArg(flag, s string) (string, ed25519.PublicKey, error) {
	bad := func(format string, a ...any) error {
		return &ArgError{Flag: flag, Reason: fmt.Sprintf(format, a...)}
	}
	if isSecret(s) {
		return "", nil, &ArgError{Flag: flag, Secret: true,
			Reason: "that is a secret key (64 bytes), not the public key; the secret must never be on a command line"}
	}
	s = strings.TrimRight(s, "\r\n")
	switch {
	case s == "":
		return "", nil, bad("is empty")
	case strings.ContainsAny(s, " \t\r\n\v\f"):
		return "", nil, bad("contains whitespace")
	case len(s) != publicLen:
		return "", nil, bad("%d characters, want %d (standard base64 of %d bytes, with padding, as in %s)", len(s), publicLen, PublicSize, PublicFile)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return "", nil, bad("not standard padded base64 (hbbs compares the exact string, so URL-safe and other spellings fail)")
	}
	if len(raw) != PublicSize {
		return "", nil, bad("decodes to %d bytes, want %d", len(raw), PublicSize)
	}
	return s, ed25519.PublicKey(raw), nil
}

// isSecret reports whether s is a secret key however it is spaced, broken
// into lines or padded (hbbs loads one with missing or partial padding):
// the refusal must not depend on how it was pasted.
func isSecret(s string) bool {
	if len(s) > MaxFileSize {
		return false
	}
	compact := strings.TrimRight(strings.Join(strings.Fields(s), ""), "=")
	raw, err := base64.RawStdEncoding.DecodeString(compact)
	return err == nil && len(raw) == SecretSize
}
