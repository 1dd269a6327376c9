package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// usageError is bad usage: a wrong flag, a missing argument. Exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// checkFailedError means the command printed its own report of what failed
// (a check, a verify); run exits 1 without another message.
type checkFailedError struct{}

func (*checkFailedError) Error() string { return "check failed" }

// hintedError carries hints that name the next command.
type hintedError struct {
	err   error
	hints []string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

func withHints(err error, hints ...string) error {
	if err == nil {
		return nil
	}
	return &hintedError{err: err, hints: hints}
}

// hintsOf collects hints from the error chain, plus the standard ones for
// typed errors.
func hintsOf(err error) []string {
	var hs []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		if h, ok := e.(*hintedError); ok {
			hs = append(hs, h.hints...)
		}
	}
	var locked *safefs.LockedError
	if errors.As(err, &locked) {
		hs = append(hs, "wait for the other rdctl to finish, or pass --lock-wait 30s")
	}
	var keyArg *keys.ArgError
	if errors.As(err, &keyArg) {
		hs = append(hs, "print the public key with: rdctl key show")
	}
	return hs
}

// secretLike matches what a base64 Ed25519 secret key file holds (88
// characters, "==" padded). Messages never carry one by construction (input
// errors withhold key-like values: textsafe.Echo); this is the last line of
// defence, as Tailscale's CLI scrubs auth keys.
var secretLike = regexp.MustCompile(`[A-Za-z0-9+/]{86}==`)

// keyRun matches what else could be a key or a sizeable part of one: a run
// of 40 or more base64, base64url or hex characters (30 bytes of key
// material in base64), padded or not: the unpadded and url-safe forms of a
// 64-byte secret, any encoding of its 32-byte seed, a seed cut short.
var keyRun = regexp.MustCompile(`[A-Za-z0-9+/_-]{40,}={0,2}`)

// redact replaces whatever in s could be key material with [REDACTED].
// A keyRun is left alone when it cannot be a key: when it holds no digit
// and no capital (words and hyphens; any 40 characters of a base64 key have
// one with odds beyond 1 - 10^-14), or when it starts with '/' (a path:
// then each of its '/'-separated parts is judged on its own, by
// textsafe.KeyMaterial).
func redact(s string) string {
	s = secretLike.ReplaceAllString(s, "[REDACTED]")
	return keyRun.ReplaceAllStringFunc(s, redactRun)
}

func redactRun(run string) string {
	if !strings.HasPrefix(run, "/") {
		if strings.IndexFunc(run, func(r rune) bool { return r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' }) < 0 {
			return run
		}
		return "[REDACTED]"
	}
	parts := strings.Split(run, "/")
	for i, p := range parts {
		if textsafe.KeyMaterial("/" + p) { // judged as a part of a path
			parts[i] = "[REDACTED]"
		}
	}
	return strings.Join(parts, "/")
}

// refuseSeedAsKey refuses a --key that is the seed of the deployment's
// secret key: 32 bytes in base64 look like a public key, and would be
// printed and exported as one. When there is no record or the key cannot be
// read (not root), there is nothing to compare with.
func (e *env) refuseSeedAsKey(flag string, rec *deploy.Record, pub ed25519.PublicKey) error {
	if rec == nil {
		return nil
	}
	d, err := safefs.OpenDir(e.under(rec.WorkingDir))
	if err != nil {
		return nil
	}
	defer d.Close()
	data, _, err := d.ReadFile(keys.SecretFile, keys.MaxFileSize)
	if err != nil {
		return nil
	}
	pair, err := keys.ParseSecret(data)
	if err != nil || !pair.HasSeed(pub) {
		return nil
	}
	return &keys.ArgError{Flag: flag, Secret: true,
		Reason: "that is the seed of the server's secret key, not its public key; the secret must never be on a command line"}
}

// refuseKeyPath refuses a path flag whose value holds a key: rdctl prints
// the paths it writes, so a file or directory named after a key would put
// the key on stdout. Where rdctl writes (key gen --dir, export --out,
// rotate --export) any part of the path counts (textsafe.KeyMaterial); for
// the global --root, --config and --tailscale-socket only a key that is not
// a part of an absolute path does (textsafe.KeyRun), as a long temporary
// directory there must keep working.
func refuseKeyPath(flag, path string) error {
	if textsafe.KeyMaterial(path) {
		return &deploy.InputError{Field: flag, Value: path, Reason: "looks like key material; rdctl does not name files after keys"}
	}
	return nil
}

// refuseKeyRoot is refuseKeyPath for the global path flags.
func refuseKeyRoot(flag, path string) error {
	if textsafe.KeyRun(path) {
		return &deploy.InputError{Field: flag, Value: path, Reason: "looks like key material; rdctl does not name files after keys"}
	}
	return nil
}
