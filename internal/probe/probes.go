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
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"

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
	reply, err := rendezvous.ReadMessage(c, maxReply)
	return reply, loop, classify(err)
}

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

// wsDial upgrades a connection to addr (host:port to dial) into a
// WebSocket, sending host in the Host header. It never uses a proxy: the
// probe must reach the target itself.
func wsDial(ctx context.Context, dial DialFunc, addr, host string) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: upgradeTransport{dial: dial, addr: addr}},
		Host:       host,
	})
	if err != nil {
		return nil, wsErr(ctx, err)
	}
	c.SetReadLimit(maxReply)
	return c, nil
}

// upgradeTransport carries one WebSocket handshake: it dials addr, writes
// the request and reads the response straight off the connection, which it
// hands over as the response body (coder/websocket needs it writable).
// Unlike http.Transport it keeps no pool and starts no goroutines per
// connection, which matters when a check runs thousands of probes.
type upgradeTransport struct {
	dial DialFunc
	addr string
}

func (t upgradeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	c, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	body := &connBody{conn: c, stop: watch(ctx, c)}
	if err := req.Write(c); err != nil {
		body.Close()
		return nil, err
	}
	body.r = bufio.NewReader(c)
	resp, err := http.ReadResponse(body.r, req)
	if err != nil {
		body.Close()
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = body
	} else {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{resp.Body, body}
	}
	return resp, nil
}

// connBody is an upgraded connection as a response body: reads drain what
// the response reader already buffered, then the connection.
type connBody struct {
	r    *bufio.Reader
	conn net.Conn
	stop func() bool
}

func (b *connBody) Read(p []byte) (int, error)  { return b.r.Read(p) }
func (b *connBody) Write(p []byte) (int, error) { return b.conn.Write(p) }
func (b *connBody) Close() error {
	b.stop()
	return b.conn.Close()
}

// wsErr classifies a WebSocket error: the library reports a context end
// in its own words.
func wsErr(ctx context.Context, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return ErrNoAnswer
	}
	return classify(err)
}

// TestNatWS sends TestNatRequest as one binary message to hbbs's WebSocket
// port and expects TestNatResponse. host is sent in the Host header ("" =
// addr).
func TestNatWS(ctx context.Context, dial DialFunc, addr, host string) error {
	c, err := wsDial(ctx, dial, addr, host)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageBinary, rendezvous.Marshal(&rendezvous.TestNatRequest{})); err != nil {
		return wsErr(ctx, err)
	}
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				return ErrClosed
			}
			return wsErr(ctx, err)
		}
		if typ != websocket.MessageBinary {
			continue
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
	defer a.CloseNow()
	if err := a.Write(ctx, websocket.MessageBinary, req); err != nil {
		return wsRelayErr(ctx, err)
	}
	b, err := wsDial(ctx, dial, addr, host)
	if err != nil {
		return err
	}
	defer b.CloseNow()
	payload := relayPayload()
	if err := b.Write(ctx, websocket.MessageBinary, req); err != nil {
		return wsRelayErr(ctx, err)
	}
	if err := b.Write(ctx, websocket.MessageBinary, payload); err != nil {
		return wsRelayErr(ctx, err)
	}
	var got []byte
	for len(got) < len(payload) {
		_, m, err := a.Read(ctx)
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

func wsRelayErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return wsErr(ctx, err)
	}
	return ErrRelayRejected // the server ended the connection
}
