package hbbstest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Key file names, relative to the server's working directory (upstream's
// gen_sk opens them by these relative names).
const (
	SecretKeyFile = "id_ed25519"
	PublicKeyFile = "id_ed25519.pub"
)

// genAttempts bounds the search for a public key whose base64 has no '/' or
// ':', as hbbs does so the key fits in Windows exe-name configs.
const genAttempts = 300

// MalformedKeyError is gen_sk's fatal case: id_ed25519 opened and read as
// UTF-8, but after trimming it is not standard base64 of exactly 64 bytes.
// The real hbbs prints the Error() text and exits with status 1.
type MalformedKeyError struct {
	Path string
}

func (e *MalformedKeyError) Error() string {
	return "Fatal error: malformed private key in id_ed25519."
}

// KeyPair is what gen_sk returns. A zero KeyPair (Public == "") means "no key
// at all": the file was not UTF-8, or the generated files could not be
// written. That silently disables enforcement and signing in hbbs.
type KeyPair struct {
	Public string             // standard base64 of Secret[32:], 44 characters
	Secret ed25519.PrivateKey // seed || public key, 64 bytes; nil when Public == ""
	// Generated reports that the pair was created (and written) by this call.
	Generated bool
}

// GenSK loads or creates the key pair in dir exactly as hbbs's gen_sk does:
//
//   - if wait > 0 and id_ed25519 is missing, sleep wait first (hbbr passes
//     300 ms so that hbbs, started at the same time, can create it);
//   - if id_ed25519 opens: read it; not UTF-8 (or unreadable after opening,
//     e.g. a directory) → zero KeyPair; trim and decode (decodeSecret: padding
//     may be missing or partial); not a 64-byte secret → *MalformedKeyError;
//     a secret whose public half is not the seed's → zero KeyPair
//     (measured on 1.1.16: no key check at all); otherwise use it (the
//     public key is bytes 32..64; id_ed25519.pub is never read);
//   - if it does not open (missing, EACCES, ...): generate a pair (retrying up
//     to 300 times for a public key without '/' or ':'), create
//     id_ed25519.pub (truncating an existing one) and then id_ed25519, both
//     without a trailing newline and with mode 0666 minus umask, like Rust's
//     File::create; if either create fails → zero KeyPair.
//
// logf receives the same informational lines hbbs logs.
func GenSK(dir string, wait time.Duration, logf func(format string, args ...any)) (KeyPair, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	skPath := filepath.Join(dir, SecretKeyFile)
	pubPath := filepath.Join(dir, PublicKeyFile)
	if wait > 0 {
		if _, err := os.Stat(skPath); err != nil {
			time.Sleep(wait)
		}
	}
	if f, err := os.Open(skPath); err == nil {
		data, rerr := io.ReadAll(f)
		f.Close()
		if rerr != nil || !utf8.Valid(data) {
			return KeyPair{}, nil
		}
		sk, ok := decodeSecret(strings.TrimSpace(string(data)))
		if !ok {
			return KeyPair{}, &MalformedKeyError{Path: skPath}
		}
		if !halvesAgree(sk) {
			// Measured on 1.1.16: the server starts but has no key at all, as
			// with a file that is not UTF-8.
			return KeyPair{}, nil
		}
		logf("Private key comes from id_ed25519")
		return KeyPair{Public: base64.StdEncoding.EncodeToString(sk[32:]), Secret: sk}, nil
	}
	pub, sk, err := GenerateKeyPair()
	if err != nil {
		return KeyPair{}, err
	}
	if err := os.WriteFile(pubPath, []byte(pub), 0o666); err != nil {
		return KeyPair{}, nil
	}
	if err := os.WriteFile(skPath, []byte(base64.StdEncoding.EncodeToString(sk)), 0o666); err != nil {
		return KeyPair{}, nil
	}
	logf("Private/public key written to id_ed25519/id_ed25519.pub")
	return KeyPair{Public: pub, Secret: sk, Generated: true}, nil
}

// GenerateKeyPair makes a pair the way hbbs does when it has none: up to 300
// attempts to get a public key whose base64 contains neither '/' nor ':'
// (the last attempt is used if all fail, which is practically impossible).
func GenerateKeyPair() (pub string, sk ed25519.PrivateKey, err error) {
	for range genAttempts {
		var p ed25519.PublicKey
		p, sk, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", nil, err
		}
		pub = base64.StdEncoding.EncodeToString(p)
		if !strings.ContainsAny(pub, "/:") {
			break
		}
	}
	return pub, sk, nil
}

// stdAlphabet is the standard base64 alphabet (RFC 4648, section 4), the only
// one the servers' decoder knows: '-' and '_' (URL-safe) are invalid symbols.
const stdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// secretSymbols is how many base64 symbols carry a 64-byte secret: 85⅓
// rounded up. The last one holds 2 data bits and 4 unused ones.
const secretSymbols = 86

// decodeSecret decodes the secret key the way the real servers do (measured
// on 1.1.16), written here from those observations rather than with
// encoding/base64 so that the stand-in stays an independent check of rdctl's
// own decoder:
//
//   - 86 standard-alphabet symbols, followed by "==", "=" or nothing: the
//     servers run with a key whose padding is missing or partial;
//   - rejected: any other length, the URL-safe alphabet, a line break or
//     any other byte inside, padding anywhere else, and non-zero bits past
//     the data in the last symbol.
//
// The caller trims surrounding whitespace first (a trailing newline or CRLF
// is accepted).
func decodeSecret(s string) (ed25519.PrivateKey, bool) {
	if len(s) < secretSymbols {
		return nil, false
	}
	switch s[secretSymbols:] {
	case "", "=", "==":
	default:
		return nil, false
	}
	out := make([]byte, 0, ed25519.PrivateKeySize+1)
	var acc uint32
	var bits uint
	for i := 0; i < secretSymbols; i++ {
		v := strings.IndexByte(stdAlphabet, s[i])
		if v < 0 {
			return nil, false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	// 86 symbols are 516 bits: 64 bytes and 4 left-over bits, which a
	// canonical encoder leaves zero.
	if len(out) != ed25519.PrivateKeySize || acc != 0 {
		return nil, false
	}
	return ed25519.PrivateKey(out), true
}

// halvesAgree reports whether the public half of sk is the one its seed
// derives.
func halvesAgree(sk ed25519.PrivateKey) bool {
	return bytes.Equal(ed25519.NewKeyFromSeed(sk[:ed25519.SeedSize])[ed25519.SeedSize:], sk[ed25519.SeedSize:])
}

// serverKey is the outcome of a server's -k handling.
type serverKey struct {
	// Key is compared with the client's licence_key; "" means no check.
	Key string
	// Secret signs IdPk replies (hbbs only); nil means nothing is signed.
	Secret ed25519.PrivateKey
	// FilePublic is the public key gen_sk produced, if it was called.
	FilePublic string
}

// resolveHBBSKey applies hbbs's key-selection rules (its
// RendezvousServer::get_server_sk):
//
//	base64 of a 64-byte secret → key = base64(sk[32:]), signs with it, no files
//	"-" or "_"                 → gen_sk(0); key = its public key
//	""                         → gen_sk(0) for signing; no enforcement
//	anything else              → that literal string; nothing is signed
func resolveHBBSKey(arg, dir string, logf func(string, ...any)) (serverKey, error) {
	if sk, ok := decodeSecret(arg); ok {
		return serverKey{Key: base64.StdEncoding.EncodeToString(sk[32:]), Secret: sk}, nil
	}
	switch arg {
	case "-", "_", "":
		kp, err := GenSK(dir, 0, logf)
		if err != nil {
			return serverKey{}, err
		}
		sk := serverKey{Secret: kp.Secret, FilePublic: kp.Public}
		if arg != "" {
			sk.Key = kp.Public
		}
		return sk, nil
	}
	return serverKey{Key: arg}, nil
}

// hbbrKeyWait is how long hbbr's gen_sk waits for hbbs to create the files.
const hbbrKeyWait = 300 * time.Millisecond

// resolveHBBRKey applies hbbr's rules: a 64-byte secret becomes its public
// key string; "-"/"_" load or generate the pair after waiting up to 300 ms;
// anything else, including "" (no check), is used literally. hbbr never
// signs, so Secret is always nil.
func resolveHBBRKey(arg, dir string, logf func(string, ...any)) (serverKey, error) {
	if sk, ok := decodeSecret(arg); ok {
		return serverKey{Key: base64.StdEncoding.EncodeToString(sk[32:])}, nil
	}
	if arg == "-" || arg == "_" {
		kp, err := GenSK(dir, hbbrKeyWait, logf)
		if err != nil {
			return serverKey{}, err
		}
		return serverKey{Key: kp.Public, FilePublic: kp.Public}, nil
	}
	return serverKey{Key: arg}, nil
}
