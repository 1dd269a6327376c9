package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// Errors the single-port probes return (wrapped with detail). The fleet
// turns them into the short texts of Result.Error.
var (
	// ErrNoAnswer: nothing came back before the deadline.
	ErrNoAnswer = errors.New("no answer")
	// ErrClosed: the server closed the connection without replying.
	ErrClosed = errors.New("closed without a reply")
	// ErrRelayRejected: hbbr dropped the relay request at once, as it does
	// for a wrong licence key, a blocklisted source or a malformed request.
	ErrRelayRejected = errors.New("rejected at once (wrong key, or this address is blocked)")
	// ErrUnexpectedReply: the server answered with something else.
	ErrUnexpectedReply = errors.New("unexpected reply")
)

// NoteConsole is the note of a probe that found the plain-text admin
// console a loopback source gets on TCP P-1 (hbbs) and TCP R (hbbr).
const NoteConsole = "admin console (loopback source)"

// Console markers: text only the help ("h") of that console contains.
const (
	hbbsConsoleMarker = "relay-servers"
	hbbrConsoleMarker = "blacklist"
)

// consoleMax bounds a console reply; the help texts are under 1 KiB.
const consoleMax = 64 << 10

// udpResend is how often the UDP probe repeats its datagram while waiting,
// so one lost datagram does not fail it (hbbs's own self-test sends one a
// second too).
const udpResend = time.Second

// watch makes c's blocking calls return when ctx ends (a cancel as well as
// a deadline) and sets c's deadline to ctx's. Call the returned stop when
// done with c.
func watch(ctx context.Context, c net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// localIsLoopback reports whether c's source address is loopback, the
// condition for hbbs and hbbr to serve their consoles.
func localIsLoopback(c net.Conn) bool {
	if c == nil || c.LocalAddr() == nil {
		return false
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.IP.IsLoopback() // IPv4-mapped counts, as upstream since 1.1.15
	}
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// classify maps a low-level error to the probe errors above where one
// applies.
func classify(err error) error {
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ErrNoAnswer
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrClosed
	}
	return err
}

func randomToken(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// frameExchange dials TCP addr, sends req as one frame and reads one framed
// reply. It reports whether the connection's source was loopback (false
// when the dial failed).
func frameExchange(ctx context.Context, dial DialFunc, addr string, req rendezvous.Message) (rendezvous.Message, bool, error) {
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	defer watch(ctx, c)()
	loop := localIsLoopback(c)
	if err := rendezvous.WriteMessage(c, req); err != nil {
		return nil, loop, classify(err)
	}
	reply, err := rendezvous.ReadMessage(replyReader(c), maxReply)
	return reply, loop, classify(err)
}

// replyReader buffers a connection's replies: a frame read straight off the
// connection costs a read for its header and another for its payload.
// Replies are tens of bytes.
func replyReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 512) }

// Console sends one command to the plain-text admin console that hbbs (TCP
// P-1) and hbbr (TCP R) serve to loopback sources, and returns the reply
// (the server closes after replying). "h" is harmless: it prints the help.
func Console(ctx context.Context, dial DialFunc, addr, command string) (string, error) {
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	defer watch(ctx, c)()
	if _, err := io.WriteString(c, command); err != nil {
		return "", classify(err)
	}
	// The console reads one command; a half-close also ends the wait of
	// a server that is not a console and now expects more of a frame.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	b, err := io.ReadAll(io.LimitReader(c, consoleMax))
	if err != nil {
		return string(b), classify(err)
	}
	return string(b), nil
}

// isConsole confirms on a second connection that addr serves the admin
// console whose help contains marker.
func isConsole(ctx context.Context, dial DialFunc, addr, marker string) bool {
	if ctx.Err() != nil {
		return false
	}
	help, err := Console(ctx, dial, addr, "h")
	return err == nil && strings.Contains(help, marker)
}

// mayBeConsole says whether a failed exchange is worth a console check: the
// server sees a loopback source when we dial from loopback, and also when we
// dial through a proxy such as a userspace-mode tailscaled on the server,
// which hands tailnet traffic to it from 127.0.0.1. Only a direct dial from
// a non-loopback address rules the console out.
func mayBeConsole(loop, proxied bool, err error) bool {
	return err != nil && (loop || proxied)
}

// natTest is the nat-test probe: TestNatRequest on TCP P-1. From a loopback
// source hbbs serves its console there, which drops the frame (it is not
// text) without a reply; the probe then asks the console for its help on a
// second connection and reports NoteConsole.
func natTest(ctx context.Context, dial DialFunc, addr string, proxied bool) (note string, err error) {
	reply, loop, err := frameExchange(ctx, dial, addr, &rendezvous.TestNatRequest{})
	if err == nil {
		if _, ok := reply.(*rendezvous.TestNatResponse); ok {
			return "", nil
		}
		err = fmt.Errorf("%w %s to TestNatRequest", ErrUnexpectedReply, messageName(reply))
	}
	if mayBeConsole(loop, proxied, err) && isConsole(ctx, dial, addr, hbbsConsoleMarker) {
		return NoteConsole, nil
	}
	return "", err
}

// TestNatTCP sends TestNatRequest to hbbs TCP P and checks the reply is a
// TestNatResponse. It returns the source port the server saw.
func TestNatTCP(ctx context.Context, dial DialFunc, addr string) (int32, error) {
	reply, _, err := frameExchange(ctx, dial, addr, &rendezvous.TestNatRequest{})
	if err != nil {
		return 0, err
	}
	r, ok := reply.(*rendezvous.TestNatResponse)
	if !ok {
		return 0, fmt.Errorf("%w %s to TestNatRequest", ErrUnexpectedReply, messageName(reply))
	}
	return r.Port, nil
}

func messageName(m rendezvous.Message) string {
	if m == nil {
		return "(empty message)"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", m), "*rendezvous.")
}

// RegisterUDP sends hbbs's UDP port an unframed RegisterPeer for a random
// id and waits for RegisterPeerResponse, repeating the datagram every
// second until ctx ends. hbbs stores nothing for an unknown id; the probe
// never sends RegisterPk. No answer in time is ErrNoAnswer; a port that is
// closed usually shows as "connection refused" (ICMP port unreachable).
func RegisterUDP(ctx context.Context, dial DialFunc, addr string) error {
	c, err := dial(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	msg := rendezvous.Marshal(&rendezvous.RegisterPeer{ID: RandomID()})
	buf := make([]byte, 2048)
	for {
		if _, err := c.Write(msg); err != nil {
			return classify(err)
		}
		next := time.Now().Add(udpResend)
		if deadline.Before(next) {
			next = deadline
		}
		c.SetReadDeadline(next)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if classify(err) == ErrNoAnswer && ctx.Err() == nil && time.Now().Before(deadline) {
					break // resend
				}
				return classify(err)
			}
			if m, err := rendezvous.Unmarshal(buf[:n]); err == nil {
				if _, ok := m.(*rendezvous.RegisterPeerResponse); ok {
					return nil
				}
			}
			// anything else is not our answer; keep waiting
		}
	}
}

// relayPayload is what the relay probes send through the pair; random so a
// stale connection cannot echo it by accident.
func relayPayload() []byte { return []byte(randomToken("rdctl-relay-probe-")) }

// RelayTCP proves that hbbr at addr relays for key: it opens two
// connections, sends each a framed RequestRelay with the same random uuid
// and licence key (hbbr pairs connections by uuid and then copies bytes
// raw), writes a random payload on the second and reads it back on the
// first. A wrong key (or a blocklisted source) makes hbbr close both at
// once: ErrRelayRejected. Nothing is stored on the server; the pair ends
// when the probe closes it.
func RelayTCP(ctx context.Context, dial DialFunc, addr, key string) error {
	_, err := relayTCP(ctx, dial, addr, key)
	return err
}

func relayTCP(ctx context.Context, dial DialFunc, addr, key string) (loop bool, err error) {
	req := &rendezvous.RequestRelay{UUID: randomToken("rdctl-"), LicenceKey: key}
	a, err := dial(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer a.Close()
	defer watch(ctx, a)()
	loop = localIsLoopback(a)
	if err := rendezvous.WriteMessage(a, req); err != nil {
		return loop, relayErr(err)
	}
	b, err := dial(ctx, "tcp", addr)
	if err != nil {
		return loop, err
	}
	defer b.Close()
	defer watch(ctx, b)()
	payload := relayPayload()
	frame, err := rendezvous.AppendMessage(nil, req)
	if err != nil {
		return loop, err
	}
	if _, err := b.Write(append(frame, payload...)); err != nil {
		return loop, relayErr(err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(a, got); err != nil {
		return loop, relayErr(err)
	}
	if !bytes.Equal(got, payload) {
		return loop, fmt.Errorf("%w: relayed bytes differ from those sent", ErrUnexpectedReply)
	}
	return loop, nil
}

// relayErr: a close or reset while waiting for the relayed bytes is hbbr
// dropping the request.
func relayErr(err error) error {
	switch err := classify(err); {
	case err == ErrClosed, isReset(err):
		return ErrRelayRejected
	default:
		return err
	}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// relay is the relay probe: RelayTCP, or the console hbbr serves a loopback
// source there (which drops the non-text frames, so the pairing looks
// rejected).
func relay(ctx context.Context, dial DialFunc, addr, key string, proxied bool) (note string, err error) {
	loop, err := relayTCP(ctx, dial, addr, key)
	if err == nil {
		return "relayed bytes between two probe connections", nil
	}
	if mayBeConsole(loop, proxied, err) && isConsole(ctx, dial, addr, hbbrConsoleMarker) {
		return NoteConsole + "; relay key not checked", nil
	}
	return "", err
}

// TestNatWS sends TestNatRequest as one binary message to hbbs's WebSocket
// port and expects TestNatResponse. host is sent in the Host header ("" =
// addr).
func TestNatWS(ctx context.Context, dial DialFunc, addr, host string) error {
	c, err := wsDial(ctx, dial, addr, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.WriteBinary(rendezvous.Marshal(&rendezvous.TestNatRequest{})); err != nil {
		return wsErr(ctx, err)
	}
	b, err := c.ReadBinary()
	if err != nil {
		return wsReadErr(ctx, err)
	}
	m, err := rendezvous.Unmarshal(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnexpectedReply, err)
	}
	if _, ok := m.(*rendezvous.TestNatResponse); !ok {
		return fmt.Errorf("%w %s to TestNatRequest", ErrUnexpectedReply, messageName(m))
	}
	return nil
}

// RelayWSPair is RelayTCP over hbbr's WebSocket port: two upgraded
// connections send RequestRelay with the same uuid as one binary message
// each, and a payload sent on the second must arrive on the first.
func RelayWSPair(ctx context.Context, dial DialFunc, addr, host, key string) error {
	req := rendezvous.Marshal(&rendezvous.RequestRelay{UUID: randomToken("rdctl-"), LicenceKey: key})
	a, err := wsDial(ctx, dial, addr, host)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.WriteBinary(req); err != nil {
		return wsRelayErr(ctx, err)
	}
	b, err := wsDial(ctx, dial, addr, host)
	if err != nil {
		return err
	}
	defer b.Close()
	payload := relayPayload()
	if err := b.WriteBinary(req, payload); err != nil {
		return wsRelayErr(ctx, err)
	}
	var got []byte
	for len(got) < len(payload) {
		m, err := a.ReadBinary()
		if err != nil {
			return wsRelayErr(ctx, err)
		}
		got = append(got, m...)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("%w: relayed bytes differ from those sent", ErrUnexpectedReply)
	}
	return nil
}

// wsReadErr classifies a failed read of a reply message.
func wsReadErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return wsErr(ctx, err)
	}
	switch err = classify(err); {
	case errors.Is(err, ErrNoAnswer), errors.Is(err, ErrClosed):
		return err
	case isReset(err):
		return ErrClosed
	}
	return fmt.Errorf("%w: %v", ErrUnexpectedReply, err)
}

func wsRelayErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return wsErr(ctx, err)
	}
	return ErrRelayRejected // the server ended the connection
}

// RelayAcross proves in one pairing that hbbr relays on both its ports:
// a TCP connection to tcpAddr (R) and a WebSocket connection to wsAddr
// (R+2, Host header wsHost) send RequestRelay with the same random uuid and
// key, and a payload sent as a binary message on the WebSocket must arrive
// on the TCP connection. hbbr keeps one table of waiting requests for both
// ports, and a pair with a WebSocket side stays message by message: the TCP
// side gets each relayed message as one frame (only a pair of two TCP
// connections switches to raw bytes).
//
// That is one connection per port, where a pair on each port takes two.
// The two sides connect at once, so a dead host costs one timeout, not
// two. A failure is a *SideError: Final when it is one side's verdict
// (that side could not be reached; when neither could, Other holds the
// other side's); otherwise neither verdict is known and each side needs its
// own probe.
func RelayAcross(ctx context.Context, dial DialFunc, tcpAddr, wsAddr, wsHost, key string) error {
	req := &rendezvous.RequestRelay{UUID: randomToken("rdctl-"), LicenceKey: key}
	type wsSide struct {
		c   *wsClient
		err error
	}
	wsDone := make(chan wsSide, 1)
	workers.Go(func() {
		c, err := wsDial(ctx, dial, wsAddr, wsHost)
		wsDone <- wsSide{c, err}
	})
	// The TCP side's request goes out as soon as it is connected, a round
	// trip (the upgrade) before the WebSocket side's: upstream hbbr looks
	// a uuid up and parks it under two separate locks, so two requests
	// arriving together could both be parked, and the pairing time out.
	a, errA := dial(ctx, "tcp", tcpAddr)
	var sentA error
	if errA == nil {
		defer a.Close()
		defer watch(ctx, a)()
		sentA = rendezvous.WriteMessage(a, req)
	}
	ws := <-wsDone
	if ws.c != nil {
		defer ws.c.Close()
	}
	switch {
	case errA != nil && ws.err != nil:
		return &SideError{Probe: Relay, Err: errA, Final: true, Other: ws.err}
	case errA != nil:
		return &SideError{Probe: Relay, Err: errA, Final: true}
	case ws.err != nil:
		return &SideError{Probe: RelayWS, Err: ws.err, Final: true}
	case sentA != nil:
		return &SideError{Probe: Relay, Err: relayErr(sentA)}
	}
	payload := relayPayload()
	if err := ws.c.WriteBinary(rendezvous.Marshal(req), payload); err != nil {
		return &SideError{Probe: RelayWS, Err: wsRelayErr(ctx, err)}
	}
	got, err := rendezvous.ReadFrame(replyReader(a), maxReply)
	if err != nil {
		return &SideError{Probe: Relay, Err: relayErr(err)}
	}
	if !bytes.Equal(got, payload) {
		return &SideError{Probe: Relay, Err: fmt.Errorf("%w: relayed bytes differ from those sent", ErrUnexpectedReply)}
	}
	return nil
}

// SideError is a failure of RelayAcross, which covers two probes' ports.
type SideError struct {
	// Probe is the side that failed: Relay (TCP R) or RelayWS (R+2).
	Probe Name
	Err   error
	// Final: Err is Probe's verdict (its port could not be reached); the
	// other probe still needs its own exchange, unless Other is set: then
	// the other side could not be reached either, and Other is its verdict.
	// Without Final both need their own exchange.
	Final bool
	Other error
}

func (e *SideError) Error() string { return fmt.Sprintf("%s: %v", e.Probe, e.Err) }
func (e *SideError) Unwrap() error { return e.Err }
