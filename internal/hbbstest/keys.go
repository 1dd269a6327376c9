package hbbstest

import (
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

// Key file names, relative to the server's working directory (reference §1).
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
//   - if id_ed25519 opens: read it; not UTF-8 (or unreadable after opening)
//     → zero KeyPair; trim, standard-base64 decode, exactly 64 bytes → use it
//     (the public key is bytes 32..64; id_ed25519.pub is never read); anything
//     else → *MalformedKeyError;
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

// decodeSecret decodes s as standard base64 (with padding) of exactly 64
// bytes, as Rust's base64 0.13 does: Go's decoder skips embedded CR/LF,
// Rust's does not, so those are rejected first; and Rust rejects set bits
// past the data in the last symbol (InvalidLastSymbol), so decoding is
// Strict.
func decodeSecret(s string) (ed25519.PrivateKey, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PrivateKeySize {
		return nil, false
	}
	return ed25519.PrivateKey(b), true
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

// resolveHBBSKey applies hbbs's get_server_sk table (reference §1):
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
