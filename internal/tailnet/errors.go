package tailnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// SocketFlag is the rdctl flag that points at tailscaled's LocalAPI socket.
// Hints name it so users can act on them.
const SocketFlag = "--tailscale-socket"

// Kind classifies a tailnet failure. Each Kind is itself an error, so callers
// match with errors.Is(err, tailnet.ErrRefused).
type Kind string

// Error implements error so a Kind can be the target of errors.Is.
func (k Kind) Error() string { return string(k) }

// The kinds of failure the package reports. The string of each is the short
// message that starts [Error.Error].
const (
	// ErrDaemonUnavailable: nothing answers on the LocalAPI socket (missing
	// socket, stale socket, tailscaled stopped).
	ErrDaemonUnavailable Kind = "tailscaled is not running"
	// ErrAccessDenied: tailscaled refused this user, or the socket is not
	// accessible to it.
	ErrAccessDenied Kind = "access to tailscaled denied"
	// ErrNotRunning: tailscaled answers but is not connected to a tailnet
	// (BackendState other than "Running": NeedsLogin, Stopped, ...).
	ErrNotRunning Kind = "tailscale is not connected"
	// ErrPeerNotFound: no peer matches the name or address.
	ErrPeerNotFound Kind = "no such tailnet peer"
	// ErrAmbiguousPeer: a short name matches more than one peer.
	ErrAmbiguousPeer Kind = "tailnet name matches several peers"
	// ErrPeerOffline: the coordination server reports the peer offline.
	ErrPeerOffline Kind = "tailnet peer is offline"
	// ErrRefused: the peer answered, but nothing accepts connections on the
	// port.
	ErrRefused Kind = "connection refused"
	// ErrTimeout: no answer before the context's deadline.
	ErrTimeout Kind = "timed out"
	// ErrPingFailed: tailscaled reported the ping as failed for another reason.
	ErrPingFailed Kind = "ping failed"
	// ErrDialFailed: tailscaled could not open the connection for another
	// reason.
	ErrDialFailed Kind = "dial failed"
	// ErrLocalAPI: tailscaled answered with an error not covered above.
	ErrLocalAPI Kind = "tailscaled request failed"
)

// Error is the error type of every failing call in this package.
type Error struct {
	// Kind classifies the failure; errors.Is(err, Kind) matches it.
	Kind Kind
	// Op is what was attempted: "status", "ping disco", "dial tcp", ...
	Op string
	// Target is what the operation was aimed at: a peer name, an ip:port,
	// or the LocalAPI socket path. May be empty.
	Target string
	// Detail is the underlying cause in a few words, lower-case. May be empty.
	Detail string
	// Hint names the fix ("start it: sudo systemctl start tailscaled").
	// May be empty when there is nothing the user can do.
	Hint string
	// Err is the underlying error, if any.
	Err error
}

// Error returns "OP TARGET: KIND: DETAIL" without the hint; callers print the
// hint on its own line (see [Hint]).
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Target != "" {
		b.WriteString(" " + e.Target)
	}
	b.WriteString(": " + string(e.Kind))
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's Kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// Hint returns the hint of the first [*Error] in err's chain, or "".
func Hint(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Hint
	}
	return ""
}

// Hints, shared so they read the same wherever they appear.
const (
	hintStartDaemon = "start it: sudo systemctl start tailscaled, or pass its socket with " + SocketFlag + " PATH"
	hintOperator    = "run with sudo, or once: sudo tailscale set --operator=$USER"
	hintUp          = "connect this host: sudo tailscale up"
	hintListPeers   = "list the peers this host can see: tailscale status"
	hintRefused     = "the peer is reachable but nothing listens on that port: start the service there " +
		"(with tailscaled in userspace mode on the peer, the service must listen on its 127.0.0.1)"
	hintOffline = "start tailscaled on the peer, or check it with: tailscale status"
	hintTimeout = "the peer may be offline, or the tailnet policy (ACLs) may block this port; check: tailscale ping "
)

// classify turns an error from the LocalAPI client into an *Error. socket is the
// LocalAPI socket path, used in the daemon-unavailable message.
func classify(op, target, socket string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	e := &Error{Op: op, Target: target, Err: err}
	if errors.Is(err, context.Canceled) {
		// The caller gave up; that is not a tailnet condition.
		return err
	}
	if _, ok := errors.AsType[*accessDeniedError](err); ok {
		e.Kind, e.Hint = ErrAccessDenied, hintOperator
		e.Detail = strings.TrimPrefix(innermost(err), "Access denied: ")
		return e
	}
	// A failed connect to the LocalAPI socket itself. The client keeps the
	// *net.OpError in the chain (%w). Net "unix" distinguishes it from the
	// direct dial UserDial does when tailscaled answers "Dial-Self".
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" && oe.Net == "unix" {
		e.Target = socket
		var errno syscall.Errno
		if errors.As(oe.Err, &errno) && (errno == syscall.EACCES || errno == syscall.EPERM) {
			e.Kind, e.Detail = ErrAccessDenied, fmt.Sprintf("cannot open socket: %v", errno)
			e.Hint = hintOperator
			return e
		}
		e.Kind, e.Hint = ErrDaemonUnavailable, hintStartDaemon
		if errors.As(oe.Err, &errno) {
			e.Detail = errno.Error()
		} else {
			e.Detail = oe.Err.Error()
		}
		return e
	}
	msg := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(msg, "i/o timeout"),
		strings.Contains(msg, "timed out"), strings.Contains(msg, "deadline exceeded"):
		e.Kind = ErrTimeout
		e.Hint = hintTimeout + hostOf(target)
	// A refused dial is not an errno: netstack reports "connection was
	// refused", and through the LocalAPI it arrives as the text of a
	// "502 Bad Gateway, dial failure: ..." response.
	case strings.Contains(msg, "connection was refused"), strings.Contains(msg, "connection refused"):
		e.Kind, e.Hint = ErrRefused, hintRefused
	case strings.Contains(msg, "403 forbidden"):
		e.Kind, e.Hint = ErrAccessDenied, hintOperator
	case strings.Contains(msg, "resolve failure"), strings.Contains(msg, "no matching peer"),
		strings.Contains(msg, "no such host"):
		e.Kind, e.Hint = ErrPeerNotFound, hintListPeers
	case strings.HasPrefix(op, "dial"):
		e.Kind = ErrDialFailed
	case strings.HasPrefix(op, "ping"):
		e.Kind = ErrPingFailed
	default:
		e.Kind = ErrLocalAPI
	}
	e.Detail = innermost(err)
	return e
}

// innermost returns the most specific part of an error message: the text of
// the last error in the Unwrap chain, trimmed of the LocalAPI's HTTP framing.
func innermost(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	s := strings.TrimSpace(err.Error())
	// local.Client.UserDial: "unexpected HTTP response: 403 Forbidden, <body>"
	if _, rest, ok := strings.Cut(s, "unexpected HTTP response: "); ok {
		if _, body, ok := strings.Cut(rest, ", "); ok {
			s = body
		}
	}
	// "dial failure: connect tcp 1.2.3.4:5: connection was refused"
	if i := strings.LastIndex(s, "dial failure: "); i >= 0 {
		s = s[i+len("dial failure: "):]
	}
	if i := strings.LastIndex(s, "resolve failure: "); i >= 0 {
		s = s[i+len("resolve failure: "):]
	}
	return strings.TrimRight(s, ".")
}
