package hbbstest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// The tests in this file pin the stand-in to what the real hbbs and hbbr
// 1.1.16 were measured to do (built from upstream source, run side by side
// with the stand-in on the same key), item by item, with the reply bytes
// written out by hand.

// wsKey is RFC 6455's sample nonce; wsKeyAccept is its accept value.
const (
	wsKey       = "dGhlIHNhbXBsZSBub25jZQ=="
	wsKeyAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// want101 is the whole handshake reply: lower-case header names, as 1.1.16
// sends them.
const want101 = "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: " + wsKeyAccept + "\r\n\r\n"

// wsRequest is a client handshake with extra header lines (each ending in
// CRLF).
func wsRequest(extra string) string {
	return "GET /ws/id HTTP/1.1\r\nHost: rd.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + wsKey +
		"\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// rawWS is a hand-driven WebSocket client: it sends masked binary messages
// and reads the server's frames as raw bytes.
type rawWS struct {
	c  net.Conn
	br *bufio.Reader
}

// dialWS upgrades a connection to addr with the extra header lines and
// checks the 101 reply byte for byte.
func dialWS(t *testing.T, addr netip.AddrPort, extra string) *rawWS {
	t.Helper()
	c := dial(t, addr)
	write(t, c, []byte(wsRequest(extra)))
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var head strings.Builder
	for !strings.HasSuffix(head.String(), "\r\n\r\n") {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			t.Fatalf("handshake reply %q: %v", head.String(), err)
		}
	}
	if head.String() != want101 {
		t.Fatalf("handshake reply %q, want %q", head.String(), want101)
	}
	return &rawWS{c: c, br: br}
}

func (w *rawWS) send(t *testing.T, msg []byte) {
	t.Helper()
	write(t, w.c, rendezvous.AppendWSMessages(nil, ws.StateClientSide, msg))
}

// readRaw reads what the server sends within d; closed reports that it
// closed the connection.
func (w *rawWS) readRaw(t *testing.T, d time.Duration) ([]byte, bool) {
	t.Helper()
	w.c.SetReadDeadline(time.Now().Add(d))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, w.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return buf.Bytes(), false
	}
	return buf.Bytes(), true
}

// wsFrame is a server's (unmasked) binary message of a short payload.
func wsFrame(payload []byte) []byte {
	if len(payload) > 125 {
		panic("short payloads only")
	}
	return append([]byte{0x82, byte(len(payload))}, payload...)
}

// TestRendezvousMessagesMeasured: which messages on TCP P and WebSocket P+2
// get a reply, and which close the connection, as measured on 1.1.16.
func TestRendezvousMessagesMeasured(t *testing.T) {
	// With a relay configured, so "relay_server not filled in" means something.
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole, Relays: []string{"relay.example:21117"}})
	key := s.Key()
	h := func(s string) []byte { return unhex(t, s) }
	cases := []struct {
		name   string
		msg    []byte // a RendezvousMessage
		reply  []byte // nil = none
		closed bool
	}{
		{"RegisterPk: NOT_SUPPORT, then closed", h("7a 03 0a 01 78"), h("82 01 02 08 06"), true},
		{"empty RegisterPk: NOT_SUPPORT, then closed", h("7a 00"), h("82 01 02 08 06"), true},
		{"RegisterPeer: closed, no reply", h("32 05 0a 03 61 62 63"), nil, true},
		{"OnlineRequest: closed, no reply", h("ba 01 04 0a 02 6d 65"), nil, true},
		{"empty message: closed", h(""), nil, true},
		{"garbage: closed", h("ff ff ff"), nil, true},
		{"an unhandled member (KeyExchange): closed", h("ca 01 00"), nil, true},
		{"a non-member field: closed", h("08 01"), nil, true},
		{"PunchHoleSent: handled, no reply, open", h("52 03 12 01 78"), nil, false},
		{"LocalAddr: handled, no reply, open", h("6a 00"), nil, false},
		{"TestNatRequest: one-shot", h("a2 01 00"), nil, true}, // reply checked separately: it holds the port
		{"unroutable RelayResponse: echoed without relay_server, closed", h("9a 01 03 12 01 75"), h("9a 01 03 12 01 75"), true},
		{"unroutable RelayResponse naming an unknown id: pk empty", h("9a 01 08 12 01 75 22 03 61 62 63"), h("9a 01 05 12 01 75 2a 00"), true},
		{"unroutable RelayResponse with a socket_addr: the address is dropped", h("9a 01 06 0a 01 05 12 01 75"), h("9a 01 03 12 01 75"), true},
		{"PunchHoleRequest, right key, unknown id: empty reply, open", framedPunch(t, "x", key)[1:], h("5a 00"), false},
		{"PunchHoleRequest, no key: LICENSE_MISMATCH, open", h("42 03 0a 01 78"), h("5a 02 18 03"), false},
	}
	for _, c := range cases {
		t.Run("tcp/"+c.name, func(t *testing.T) {
			conn := dial(t, s.Addrs().TCP)
			f, err := rendezvous.AppendFrame(nil, c.msg)
			noErr(t, err)
			write(t, conn, f)
			got, closed := readAll(t, conn, 500*time.Millisecond)
			want := []byte{}
			if c.reply != nil {
				want, err = rendezvous.AppendFrame(nil, c.reply)
				noErr(t, err)
			}
			if c.name == "TestNatRequest: one-shot" {
				want = testNatResponseFrame(localPort(conn))
			}
			if !bytes.Equal(got, want) || closed != c.closed {
				t.Fatalf("got % x closed %v, want % x closed %v", got, closed, want, c.closed)
			}
		})
		t.Run("ws/"+c.name, func(t *testing.T) {
			w := dialWS(t, s.Addrs().WS, "")
			w.send(t, c.msg)
			got, closed := w.readRaw(t, 500*time.Millisecond)
			want := []byte{}
			if c.reply != nil {
				want = wsFrame(c.reply)
			}
			if c.name == "TestNatRequest: one-shot" {
				want = wsFrame(testNatResponseFrame(localPort(w.c))[1:])
			}
			if !bytes.Equal(got, want) || closed != c.closed {
				t.Fatalf("got % x closed %v, want % x closed %v", got, closed, want, c.closed)
			}
		})
	}
}

// TestNoFrameSizeLimit: a header announcing up to 1 GiB makes the server wait
// for the bytes (until the idle timeout) instead of closing; a 2 MiB frame is
// read and answered (as measured on 1.1.16).
func TestNoFrameSizeLimit(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole, IdleTimeout: 1500 * time.Millisecond})
	c := dial(t, s.Addrs().TCP)
	hdr, err := rendezvous.AppendHeader(nil, rendezvous.MaxFrameLen)
	noErr(t, err)
	write(t, c, append(hdr, 0xa2, 0x01))
	start := time.Now()
	if got, closed := readAll(t, c, 700*time.Millisecond); len(got) != 0 || closed {
		t.Fatalf("1 GiB header: % x closed %v, want an open connection", got, closed)
	}
	if got, closed := readAll(t, c, 3*time.Second); len(got) != 0 || !closed || time.Since(start) < time.Second {
		t.Fatalf("closed %v after %v with % x, want closed at the idle timeout", closed, time.Since(start), got)
	}

	// TestNatRequest plus a 2 MiB field that is no oneof member: still a
	// TestNatRequest.
	msg := unhex(t, "a2 01 00")
	msg = append(msg, 0x12) // field 2, length-delimited
	big := bytes.Repeat([]byte{'x'}, 2<<20)
	msg = append(append(msg, 0x80, 0x80, 0x80, 0x01), big...) // varint 2 MiB
	c = dial(t, s.Addrs().TCP)
	f, err := rendezvous.AppendFrame(nil, msg)
	noErr(t, err)
	go c.Write(f)
	if got, closed := readAll(t, c, 5*time.Second); !bytes.Equal(got, testNatResponseFrame(localPort(c))) || !closed {
		t.Fatalf("2 MiB frame: % x closed %v", got, closed)
	}
}

// TestWebSocketHandshakeFailures: a failed handshake closes the connection
// with no HTTP reply at all (as measured on 1.1.16), on hbbs's and hbbr's
// WebSocket ports.
func TestWebSocketHandshakeFailures(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole})
	r := startT(t, HBBR, Options{ConsoleRule: NeverConsole})
	tlsHello := unhex(t, "16 03 01 00 2f 01 00 00 2b 03 03"+strings.Repeat(" 00", 32)+" 00 00 02 13 01 01 00")
	cases := []struct {
		name string
		req  []byte
	}{
		{"plain GET, no Upgrade", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"version 8", []byte(strings.Replace(wsRequest(""), "Version: 13", "Version: 8", 1))},
		{"no key", []byte(strings.Replace(wsRequest(""), "Sec-WebSocket-Key: "+wsKey+"\r\n", "", 1))},
		{"POST", []byte(strings.Replace(wsRequest(""), "GET", "POST", 1))},
		{"TLS ClientHello", tlsHello},
		{"garbage", []byte("hello\r\n\r\n")},
	}
	for _, port := range []struct {
		name string
		addr netip.AddrPort
	}{{"hbbs", s.Addrs().WS}, {"hbbr", r.Addrs().RelayWS}} {
		for _, c := range cases {
			t.Run(port.name+"/"+c.name, func(t *testing.T) {
				conn := dial(t, port.addr)
				write(t, conn, c.req)
				if got, closed := readAll(t, conn, 2*time.Second); len(got) != 0 || !closed {
					t.Fatalf("got %q closed %v, want a close with no reply", got, closed)
				}
			})
		}
		t.Run(port.name+"/valid: 101 with lower-case names, any path and Host", func(t *testing.T) {
			dialWS(t, port.addr, "Origin: http://elsewhere\r\n")
		})
	}
}

// TestWebSocketClientAddress: X-Real-IP (else X-Forwarded-For) holding a bare
// IP makes the client IP:0, so TestNatResponse.port is 0; IP:port, a list or
// garbage is ignored (as measured on 1.1.16; read since 1.1.12).
func TestWebSocketClientAddress(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole})
	cases := []struct {
		name    string
		headers string
		port0   bool
	}{
		{"no header", "", false},
		{"X-Real-IP IPv4", "X-Real-IP: 203.0.113.9\r\n", true},
		{"X-Real-IP IPv6", "X-Real-IP: 2001:db8::1\r\n", true},
		{"lower-case name", "x-real-ip: 203.0.113.9\r\n", true},
		{"X-Forwarded-For single", "X-Forwarded-For: 198.51.100.1\r\n", true},
		{"X-Forwarded-For list", "X-Forwarded-For: 198.51.100.1, 10.0.0.1\r\n", false},
		{"X-Real-IP with a port", "X-Real-IP: 203.0.113.9:1234\r\n", false},
		{"X-Real-IP bracketed IPv6", "X-Real-IP: [2001:db8::1]\r\n", false},
		{"X-Real-IP IPv4-mapped IPv6", "X-Real-IP: ::ffff:203.0.113.9\r\n", false},
		{"X-Real-IP garbage", "X-Real-IP: proxy.example\r\n", false},
		{"X-Real-IP wins, even unparsable", "X-Real-IP: garbage\r\nX-Forwarded-For: 198.51.100.1\r\n", false},
		{"X-Real-IP wins over X-Forwarded-For", "X-Forwarded-For: 10.0.0.1:5\r\nX-Real-IP: 203.0.113.9\r\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := dialWS(t, s.Addrs().WS, c.headers)
			w.send(t, unhex(t, "a2 01 00"))
			want := wsFrame(unhex(t, "aa 01 00")) // TestNatResponse{port: 0}
			if !c.port0 {
				want = wsFrame(testNatResponseFrame(localPort(w.c))[1:])
			}
			if got, closed := w.readRaw(t, 2*time.Second); !bytes.Equal(got, want) || !closed {
				t.Fatalf("got % x closed %v, want % x then close", got, closed, want)
			}
		})
	}
	// hbbr logs the header's address with port 0.
	r := startT(t, HBBR, Options{ConsoleRule: NeverConsole})
	w := dialWS(t, r.Addrs().RelayWS, "X-Real-IP: 203.0.113.50\r\n")
	w.send(t, rendezvous.Marshal(&rendezvous.RequestRelay{UUID: "via-proxy"}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	noErr(t, r.WaitLog(ctx, "New relay request via-proxy from 203.0.113.50:0"))
}

// TestHBBRBlocklistCoversWebSocket: a blocklisted IP is reset on hbbr's
// WebSocket port before any HTTP (as measured on 1.1.16), while its TCP port
// stays the console for loopback.
func TestHBBRBlocklistCoversWebSocket(t *testing.T) {
	r := startT(t, HBBR, Options{})
	dialWS(t, r.Addrs().RelayWS, "") // not blocked yet: 101
	console := dial(t, r.Addrs().Relay)
	write(t, console, []byte("Ba 127.0.0.1"))
	if _, closed := readAll(t, console, 2*time.Second); !closed {
		t.Fatal("console did not close")
	}
	c, err := net.DialTimeout("tcp", r.Addrs().RelayWS.String(), 2*time.Second)
	if errors.Is(err, syscall.ECONNRESET) {
		return // the reset beat the end of connect: reset before any HTTP too
	}
	noErr(t, err)
	defer c.Close()
	// The reset can arrive before the request is written. Linux reports a
	// socket's error once: when the write returns it, a later read sees a
	// plain EOF (CI saw that), so the write's reset counts too.
	if _, err := c.Write([]byte(wsRequest(""))); errors.Is(err, syscall.ECONNRESET) {
		return
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(make([]byte, 64))
	if n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %d bytes, %v; want a reset before any HTTP", n, err)
	}
}

// TestUDPRegistrationMeasured walks the UDP exchanges measured on 1.1.16 in
// order: the replies are whole datagrams, pinned byte for byte.
func TestUDPRegistrationMeasured(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole, Serial: 5, RendezvousServers: []string{"rs1"}})
	u, err := net.Dial("udp", s.Addrs().UDP.String())
	noErr(t, err)
	defer u.Close()
	steps := []struct {
		name    string
		send    string
		replies []string // datagrams, in order
	}{
		{"RegisterPeer with an empty id: no reply", "32 00", nil},
		{"RegisterPeer with an empty id and a serial: no reply", "32 02 10 01", nil},
		{"RegisterPeer, unknown id, current serial: request_pk", "32 07 0a 03 61 62 63 10 05", []string{"3a 02 10 01"}},
		{"RegisterPeer, lower serial: an extra ConfigUpdate", "32 07 0a 03 61 62 63 10 03", []string{"3a 02 10 01", "72 07 08 05 12 03 72 73 31"}},
		{"RegisterPk without anything: ignored", "7a 00", nil},
		{"RegisterPk without uuid: ignored", "7a 07 0a 02 70 31 1a 01 6b", nil},
		{"RegisterPk without id: ignored", "7a 07 12 02 75 31 1a 01 6b", nil},
		{"RegisterPk: OK", "7a 0b 0a 02 70 31 12 02 75 31 1a 01 6b", []string{"82 01 00"}},
		{"RegisterPeer after RegisterPk: request_pk false", "32 06 0a 02 70 31 10 05", []string{"3a 00"}},
		{"RegisterPk with another uuid: UUID_MISMATCH", "7a 0b 0a 02 70 31 12 02 75 32 1a 01 6b", []string{"82 01 02 08 02"}},
		{"RegisterPk again with the first uuid: OK", "7a 0b 0a 02 70 31 12 02 75 31 1a 01 6b", []string{"82 01 00"}},
	}
	buf := make([]byte, 256)
	for _, st := range steps {
		write(t, u, unhex(t, st.send))
		for _, want := range st.replies {
			u.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := u.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], unhex(t, want)) {
				t.Fatalf("%s: got % x (%v), want %s", st.name, buf[:n], err, want)
			}
		}
		u.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := u.Read(buf); err == nil {
			t.Fatalf("%s: unexpected datagram % x", st.name, buf[:n])
		}
	}
}

// FuzzParseRegisterPk: the stand-in's RegisterPk parser never panics, and
// what it accepts re-encodes to a message it reads back the same.
func FuzzParseRegisterPk(f *testing.F) {
	for _, s := range []string{"", "0a 02 70 31 12 02 75 31 1a 01 6b", "0a 01 ff", "12 05 75", "08 01 0a 01 78", "22 00 28 01"} {
		b, _ := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseRegisterPk(b)
		if err != nil {
			if !errors.Is(err, errBadRegisterPk) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		var enc []byte
		enc = append(append(enc, 0x0a), byte(len(m.ID)))
		if len(m.ID) > 127 || len(m.UUID) > 127 || len(m.PK) > 127 {
			return
		}
		enc = append(enc, m.ID...)
		enc = append(append(append(enc, 0x12), byte(len(m.UUID))), m.UUID...)
		enc = append(append(append(enc, 0x1a), byte(len(m.PK))), m.PK...)
		again, err := parseRegisterPk(enc)
		if err != nil || again.ID != m.ID || !bytes.Equal(again.UUID, m.UUID) || !bytes.Equal(again.PK, m.PK) {
			t.Fatalf("round trip: %+v → %+v %v", m, again, err)
		}
	})
}

// consoleCmd sends one console command from src (a loopback address) to addr
// and returns the reply; the console always closes after it.
func consoleCmd(t *testing.T, src string, addr netip.AddrPort, cmd string) string {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr.String())
	noErr(t, err)
	defer c.Close()
	write(t, c, []byte(cmd))
	got, closed := readAll(t, c, 3*time.Second)
	if !closed {
		t.Fatalf("%q: the console did not close", cmd)
	}
	return string(got)
}

// TestHBBSConsoleMeasured: the commands 1.1.16 was measured to answer with
// content do, and "rs  x" (two spaces) and "aur Y" change state. Steps run in order.
func TestHBBSConsoleMeasured(t *testing.T) {
	s := startT(t, HBBS, Options{Relays: []string{"r1.example:21117", "r2.example"}})
	s.AddPeer("peer1", []byte("pk1"))
	a := s.Addrs()
	// Give ib, ic and pr something to list: a RegisterPk from 127.0.0.1, the
	// peer registering from 127.0.0.2 and then 127.0.0.3, and a punch
	// request to it (over TCP P, which has no console).
	udp := func(src, msg string) []byte {
		u, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(a.UDP))
		noErr(t, err)
		defer u.Close()
		write(t, u, unhex(t, msg))
		u.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		n, err := u.Read(buf)
		noErr(t, err)
		return buf[:n]
	}
	if got := udp("127.0.0.1", "7a 0b 0a 02 70 32 12 02 75 31 1a 01 6b"); !bytes.Equal(got, unhex(t, "82 01 00")) {
		t.Fatalf("RegisterPk: % x", got)
	}
	udp("127.0.0.2", "32 07 0a 05 70 65 65 72 31")
	udp("127.0.0.3", "32 07 0a 05 70 65 65 72 31")
	c := dial(t, a.TCP)
	write(t, c, framedPunch(t, "peer1", s.Key()))
	if got, closed := readAll(t, c, 300*time.Millisecond); len(got) != 0 || closed {
		t.Fatalf("punch to an online peer: % x %v", got, closed) // forwarded, not answered
	}

	const lo = "127.0.0.1"
	steps := []struct {
		cmd  string
		want string // exact reply; a trailing "*": starts with; a leading "*": one line ending with
	}{
		{"rs", "r1.example:21117\nr2.example\n"},
		{"ib", "127.0.0.1 1 *"},
		{"ib 127.0.0.9", ""},
		{"ib 1", "127.0.0.1 1 *"},
		{"ib -", "127.0.0.1 1 *"}, // lists, then removes
		{"ib", ""},
		{"ic", "peer1 *"},
		{"ip-changes peer1", "peer1 *"},
		{"pr", "*-> peer1@127.0.0.3\n"},
		{"pr -", ""},
		{"pr", ""},
		{"tg 192.0.2.1 192.0.2.2", "192.0.2.1: no geo data\n192.0.2.2: no geo data\n"},
		{"tg", "test-geo(tg) <ip1> <ip2>\n"},
		{"aur", "ALWAYS_USE_RELAY=N\n"},
		{"rs  x", ""}, // two spaces: an empty argument
		{"rs", ""},    // ... so the list is now empty
		{"rs a:1,b:2", ""},
		{"rs", "a:1\nb:2\n"},
		{"aur Y", ""},
		{"aur", "ALWAYS_USE_RELAY=Y\n"},
		{"rs", ""}, // "aur Y" also fed "Y" into the relay list
		{"always-use-relay N", ""},
		{"aur", "ALWAYS_USE_RELAY=N\n"},
		{"nonsense", ""},
	}
	for _, st := range steps {
		got := consoleCmd(t, lo, a.NAT, st.cmd)
		var ok bool
		switch {
		case strings.HasSuffix(st.want, "*"):
			ok = strings.HasPrefix(got, strings.TrimSuffix(st.want, "*"))
		case strings.HasPrefix(st.want, "*"):
			ok = strings.HasSuffix(got, strings.TrimPrefix(st.want, "*")) && strings.Count(got, "\n") == 1
		default:
			ok = got == st.want
		}
		if !ok {
			t.Fatalf("%q: %q, want %q", st.cmd, got, st.want)
		}
	}
	if got := s.Relays(); len(got) != 0 {
		t.Fatalf("relays %q after aur", got)
	}
}

// TestHBBRConsoleMeasured: hbbr's dt, t, ls, tb and sb answer with content
// and change state; "u" during a pair prints one line per pair, with the
// "::ffff:" form of an IPv4 client on a dual-stack listener (as measured on
// 1.1.16).
func TestHBBRConsoleMeasured(t *testing.T) {
	// Relay clients come from 127.0.0.1, the console from 127.0.0.2.
	rule := func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") }
	r, err := Start(context.Background(), HBBR, Options{Dir: t.TempDir(), Bind: "::", ConsoleRule: rule})
	if err != nil {
		t.Skipf("no dual-stack listener: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	relayAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), r.Addrs().Relay.Port())
	cmd := func(c string) string { return consoleCmd(t, "127.0.0.2", relayAddr, c) }
	steps := []struct{ cmd, want string }{
		{"dt", "0.66\n"}, {"dt 0.5", ""}, {"downgrade-threshold", "0.5\n"},
		{"t", "1800s\n"}, {"t 60", ""}, {"t", "60s\n"},
		{"ls", "32Mb/s\n"}, {"ls 8", ""}, {"limit-speed", "8Mb/s\n"},
		{"tb", "1024Mb/s\n"}, {"tb 2048", ""}, {"tb", "2048Mb/s\n"},
		{"sb", "128Mb/s\n"}, {"sb x", ""}, {"sb", "128Mb/s\n"}, {"sb 64", ""}, {"single-bandwidth", "64Mb/s\n"},
		{"u", ""},
	}
	for _, st := range steps {
		if got := cmd(st.cmd); got != st.want {
			t.Fatalf("%q: %q, want %q", st.cmd, got, st.want)
		}
	}
	a := dial(t, relayAddr)
	noErr(t, rendezvous.WriteMessage(a, &rendezvous.RequestRelay{UUID: "pair-1"}))
	time.Sleep(50 * time.Millisecond)
	b := dial(t, relayAddr)
	noErr(t, rendezvous.WriteMessage(b, &rendezvous.RequestRelay{UUID: "pair-1"}))
	write(t, a, []byte("ping"))
	if got := readN(t, b, 4, 2*time.Second); string(got) != "ping" {
		t.Fatalf("relay: %q", got)
	}
	got := cmd("u")
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	wantPrefix := "[::ffff:127.0.0.1]:" + strings.TrimPrefix(b.LocalAddr().String(), "127.0.0.1:") + ": "
	if len(lines) != 1 || !strings.HasPrefix(lines[0], wantPrefix) || !strings.HasSuffix(lines[0], " 64000kb/s") {
		t.Fatalf("usage %q, want one line %q... ending in the 64 Mb/s limit", got, wantPrefix)
	}
}

// TestLogLevels: the log lines rdctl and operators look for, with the level
// upstream logs them at, in the "[time] LEVEL [module] message" shape.
func TestLogLevels(t *testing.T) {
	pub, _ := newSecret(t)
	r := startT(t, HBBR, Options{Key: new(pub), ConsoleRule: NeverConsole})
	c := dial(t, r.Addrs().Relay)
	noErr(t, rendezvous.WriteMessage(c, &rendezvous.RequestRelay{UUID: "u", LicenceKey: "wrong"}))
	readAll(t, c, 2*time.Second)
	for _, u := range []string{"lv", "lv"} {
		c := dial(t, r.Addrs().Relay)
		noErr(t, rendezvous.WriteMessage(c, &rendezvous.RequestRelay{UUID: u, LicenceKey: pub}))
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	noErr(t, r.WaitLog(ctx, "Both are raw"))
	for _, want := range []string{
		"] INFO [hbbr] Key: " + pub + "\n",
		"] WARN [hbbr] Relay authentication failed from 127.0.0.1:",
		"] INFO [hbbr] New relay request lv from 127.0.0.1:",
		"] INFO [hbbr] Relayrequest lv got paired\n",
		"] INFO [hbbr] Both are raw\n",
	} {
		if !strings.Contains(r.Log(), want) {
			t.Errorf("log lacks %q:\n%s", want, r.Log())
		}
	}
}

// TestWebSocketIdle: hbbs closes a WebSocket after the idle timeout with no
// frame at all, without a close frame; pings reset the timer
// (as measured on the real hbbs, whose idle timeout is 30 s).
func TestWebSocketIdle(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole, IdleTimeout: time.Second})
	w := dialWS(t, s.Addrs().WS, "")
	var pingFrame bytes.Buffer
	noErr(t, ws.WriteHeader(&pingFrame, ws.Header{Fin: true, OpCode: ws.OpPing, Masked: true, Mask: ws.NewMask()}))
	start := time.Now()
	for time.Since(start) < 2500*time.Millisecond {
		write(t, w.c, pingFrame.Bytes())
		got, closed := w.readRaw(t, 400*time.Millisecond)
		if closed || !bytes.Equal(got, []byte{0x8a, 0x00}) { // the pong
			t.Fatalf("after %v of pings: % x closed %v, want a pong and an open connection", time.Since(start), got, closed)
		}
	}
	quiet := time.Now()
	got, closed := w.readRaw(t, 3*time.Second)
	if el := time.Since(quiet); len(got) != 0 || !closed || el < 500*time.Millisecond {
		t.Fatalf("quiet: % x closed %v after %v, want a bare close after about 1 s", got, closed, el)
	}
}

// TestWebSocketTextFrames: hbbs ignores text messages that are valid UTF-8
// and closes on one that is not (a protobuf byte >= 0x80 in a text frame)
// (measured on the real hbbs).
func TestWebSocketTextFrames(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole})
	text := func(payload []byte) []byte {
		var b bytes.Buffer
		h := ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(payload)), Masked: true, Mask: ws.NewMask()}
		noErr(t, ws.WriteHeader(&b, h))
		masked := append([]byte(nil), payload...)
		ws.Cipher(masked, h.Mask, 0)
		return append(b.Bytes(), masked...)
	}
	cases := []struct {
		name    string
		payload []byte
		closed  bool
	}{
		{"valid UTF-8: ignored", []byte("hello"), false},
		{"a RegisterPeer as text (valid UTF-8): not processed", unhex(t, "32 05 0a 03 61 62 63"), false}, // as binary it would close
		{"invalid UTF-8: closed", unhex(t, "42 03 0a 01 ff"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := dialWS(t, s.Addrs().WS, "")
			write(t, w.c, text(c.payload))
			got, closed := w.readRaw(t, 500*time.Millisecond)
			if len(got) != 0 || closed != c.closed {
				t.Fatalf("got % x closed %v, want no reply, closed %v", got, closed, c.closed)
			}
			if !closed { // still serving binary messages
				w.send(t, unhex(t, "a2 01 00"))
				if got, _ := w.readRaw(t, 2*time.Second); !bytes.Equal(got, wsFrame(testNatResponseFrame(localPort(w.c))[1:])) {
					t.Fatalf("TestNat after the text message: % x", got)
				}
			}
		})
	}
}
