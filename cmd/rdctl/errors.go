package main

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
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
// characters, "==" padded). Messages never carry one by construction; this
// is the last line of defence, as Tailscale's CLI scrubs auth keys.
var secretLike = regexp.MustCompile(`[A-Za-z0-9+/]{86}==`)

func redact(s string) string { return secretLike.ReplaceAllString(s, "[REDACTED]") }
