// Package probe proves from the outside that a RustDesk server answers on
// its ports with the real protocol and enforces the expected key. Every
// probe is one real exchange; none registers a peer or writes anything on
// the server (no RegisterPk).
package probe

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// DialFunc dials a connection: net.Dialer.DialContext, or a dial through
// tailscaled.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DirectDial dials with the host's network stack.
var DirectDial DialFunc = (&net.Dialer{}).DialContext

// KeyStatus says what the punch-hole probe learned about the server's key.
type KeyStatus string

const (
	// KeyMatch: the server accepted the expected key (and, with the strict
	// probe, rejected a wrong one).
	KeyMatch KeyStatus = "match"
	// KeyMismatch: the server enforces a different key (LICENSE_MISMATCH).
	KeyMismatch KeyStatus = "mismatch"
	// KeyUnenforced: the server accepts any key (strict probe only).
	KeyUnenforced KeyStatus = "unenforced"
	// KeyUnknown: no answer to tell.
	KeyUnknown KeyStatus = "unknown"
)

// maxReply bounds a reply frame; real replies are tens of bytes.
const maxReply = 64 << 10

// RandomID returns a peer id no server has registered: probes ask for it so
// the server only does a lookup and forwards nothing.
func RandomID() string {
	var b [6]byte
	rand.Read(b[:])
	return "rdctl-probe-" + hex.EncodeToString(b[:])
}

// exchange sends one framed message on a fresh TCP connection and reads one
// framed reply, all within ctx.
func exchange(ctx context.Context, dial DialFunc, addr string, req rendezvous.Message) (rendezvous.Message, error) {
	reply, _, err := frameExchange(ctx, dial, addr, req)
	return reply, err
}

// TestNat sends TestNatRequest to a TCP port of hbbs (21116, or 21115 from
// a non-loopback source) and returns the source port the server saw.
func TestNat(ctx context.Context, dial DialFunc, addr string) (int32, error) {
	reply, err := exchange(ctx, dial, addr, &rendezvous.TestNatRequest{})
	if err != nil {
		return 0, err
	}
	r, ok := reply.(*rendezvous.TestNatResponse)
	if !ok {
		return 0, fmt.Errorf("unexpected reply %T to TestNatRequest", reply)
	}
	return r.Port, nil
}

// PunchHole asks hbbs (TCP 21116) to punch a hole to a random, unregistered
// id, presenting key. hbbs checks the key before anything else: the reply
// is LICENSE_MISMATCH when it enforces another key, else ID_NOT_EXIST.
// Each connection answers one request, so every call dials anew.
func PunchHole(ctx context.Context, dial DialFunc, addr, key string) (accepted bool, err error) {
	reply, err := exchange(ctx, dial, addr, &rendezvous.PunchHoleRequest{ID: RandomID(), LicenceKey: key})
	if err != nil {
		return false, err
	}
	r, ok := reply.(*rendezvous.PunchHoleResponse)
	if !ok {
		return false, fmt.Errorf("unexpected reply %T to PunchHoleRequest", reply)
	}
	return r.Failure != rendezvous.LicenseMismatch, nil
}

// Key runs the punch-hole key probe. With strict it also presents a wrong
// key on a second connection, to tell an enforced key from none: that costs
// one logged authentication failure on the server.
//
// The wrong key is fresh random bytes on every call: a server that does not
// have the key cannot know which wrong key to reject, so it cannot pass for
// one that enforces it (a constant wrong key could be answered
// LICENSE_MISMATCH by rote).
func Key(ctx context.Context, dial DialFunc, addr, key string, strict bool) (KeyStatus, error) {
	return keyCheck(ctx, dial, addr, key, strict, rand.Reader)
}

// keyCheck is Key with the wrong key drawn from rnd.
func keyCheck(ctx context.Context, dial DialFunc, addr, key string, strict bool, rnd io.Reader) (KeyStatus, error) {
	return keyCheckWith(func(k string) (bool, error) { return PunchHole(ctx, dial, addr, k) }, key, strict, rnd)
}

// keyCheckWith is keyCheck with each punch-hole exchange made by punch
// (over TCP, or over a WebSocket through a proxy), which reports whether
// the server accepted the key.
func keyCheckWith(punch func(key string) (bool, error), key string, strict bool, rnd io.Reader) (KeyStatus, error) {
	ok, err := punch(key)
	if err != nil {
		return KeyUnknown, err
	}
	if !ok {
		return KeyMismatch, nil
	}
	if !strict {
		return KeyMatch, nil
	}
	wrong, err := wrongKey(rnd, key)
	if err != nil {
		return KeyUnknown, err
	}
	wrongOK, err := punch(wrong)
	if err != nil {
		return KeyUnknown, err
	}
	if wrongOK {
		return KeyUnenforced, nil
	}
	return KeyMatch, nil
}

// wrongKey is a well-formed key (32 bytes, standard base64, as
// id_ed25519.pub) made of random bytes from rnd, and certainly not key.
func wrongKey(rnd io.Reader, key string) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("drawing a wrong key: %w", err)
	}
	k := base64.StdEncoding.EncodeToString(b[:])
	if k == key {
		b[0] ^= 1
		k = base64.StdEncoding.EncodeToString(b[:])
	}
	return k, nil
}

// ErrOldKeyAccepted reports a server that still accepts the key it should
// have dropped.
var ErrOldKeyAccepted = errors.New("the server still accepts the old key")

// VerifyRotation checks that hbbs at addr accepts newKey and rejects oldKey
// with LICENSE_MISMATCH, retrying until ctx ends or timeout passes (hbbs
// may still be binding its ports).
func VerifyRotation(ctx context.Context, dial DialFunc, addr, newKey, oldKey string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := Key(pctx, dial, addr, newKey, false)
		if err == nil && st == KeyMatch {
			var oldOK bool
			oldOK, err = PunchHole(pctx, dial, addr, oldKey)
			if err == nil && oldOK {
				err = ErrOldKeyAccepted
			}
		} else if err == nil {
			err = fmt.Errorf("the server rejects the new key (%s)", st)
		}
		pcancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("verifying the new key at %s: %w", addr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
