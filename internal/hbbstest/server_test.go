package hbbstest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// Framed byte examples of these messages, worked out by hand from
// hbb_common's BytesCodec and rendezvous.proto, as raw hex.
const (
	frameTestNatRequest     = "0c a2 01 00"
	udpRegisterPeerABC      = "32 05 0a 03 61 62 63"
	udpRegisterPeerResponse = "3a 02 10 01"
	frameLicenseMismatch    = "10 5a 02 18 03"
	frameIDNotExist         = "08 5a 00"
)

// framedPunch builds a framed PunchHoleRequest{id, licence_key} by hand.
func framedPunch(t *testing.T, id, key string) []byte {
	t.Helper()
	inner := append([]byte{0x0a, byte(len(id))}, id...)
	if key != "" {
		inner = append(append(inner, 0x1a, byte(len(key))), key...)
	}
	msg := append([]byte{0x42, byte(len(inner))}, inner...)
	f, err := rendezvous.AppendFrame(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHBBSRepliesByteForByte(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole})
	key := s.Key()
	if key == "" || key != s.FilePublicKey() || !s.Signs() {
		t.Fatalf("default -k - should enforce the generated key: key %q file %q", key, s.FilePublicKey())
	}
	if !strings.Contains(s.Log(), "Key: "+key+"\n") {
		t.Fatalf("log lacks the Key line:\n%s", s.Log())
	}
	a := s.Addrs()

	t.Run("nat port TestNatRequest", func(t *testing.T) {
		c := dial(t, a.NAT)
		write(t, c, unhex(t, frameTestNatRequest))
		got, closed := readAll(t, c, 2*time.Second)
		if want := testNatResponseFrame(localPort(c)); !bytes.Equal(got, want) || !closed {
			t.Fatalf("got % x (closed %v), want % x then close", got, closed, want)
		}
	})
	t.Run("tcp TestNatRequest", func(t *testing.T) {
		c := dial(t, a.TCP)
		write(t, c, unhex(t, frameTestNatRequest))
		got, closed := readAll(t, c, 2*time.Second)
		if want := testNatResponseFrame(localPort(c)); !bytes.Equal(got, want) || !closed {
			t.Fatalf("got % x (closed %v), want % x then close", got, closed, want)
		}
	})
	t.Run("punch with the right key: ID_NOT_EXIST", func(t *testing.T) {
		c := dial(t, a.TCP)
		write(t, c, framedPunch(t, "nosuchpeer1", key))
		if got := readN(t, c, 3, 2*time.Second); !bytes.Equal(got, unhex(t, frameIDNotExist)) {
			t.Fatalf("got % x", got)
		}
		// The connection stays open, and a second punch on it gets nothing.
		write(t, c, framedPunch(t, "nosuchpeer2", key))
		if got, closed := readAll(t, c, 300*time.Millisecond); len(got) != 0 || closed {
			t.Fatalf("second punch: % x closed %v", got, closed)
		}
	})
	t.Run("punch with a wrong key: LICENSE_MISMATCH", func(t *testing.T) {
		for _, wrong := range []string{"", "wrong", key + "x"} {
			c := dial(t, a.TCP)
			write(t, c, framedPunch(t, "nosuchpeer", wrong))
			if got := readN(t, c, 5, 2*time.Second); !bytes.Equal(got, unhex(t, frameLicenseMismatch)) {
				t.Fatalf("key %q: got % x", wrong, got)
			}
		}
	})
	t.Run("udp RegisterPeer", func(t *testing.T) {
		c, err := net.Dial("udp", a.UDP.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		write(t, c, unhex(t, udpRegisterPeerABC))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], unhex(t, udpRegisterPeerResponse)) {
			t.Fatalf("got % x %v", buf[:n], err)
		}
		// Framing a UDP datagram makes it garbage: no reply.
		write(t, c, append([]byte{0x1c}, unhex(t, udpRegisterPeerABC)...))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			t.Fatalf("framed datagram answered: % x", buf[:n])
		}
	})
	t.Run("websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+a.WS.String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		if err := ws.Write(ctx, websocket.MessageBinary, framedPunch(t, "x", "wrong")[1:]); err != nil {
			t.Fatal(err)
		}
		typ, got, err := ws.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, unhex(t, "5a 02 18 03")) {
			t.Fatalf("got %v % x %v", typ, got, err)
		}
		ws2, _, err := websocket.Dial(ctx, "ws://"+a.WS.String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws2.CloseNow()
		ws2.Write(ctx, websocket.MessageBinary, framedPunch(t, "x", key)[1:])
		if _, got, err := ws2.Read(ctx); err != nil || !bytes.Equal(got, unhex(t, "5a 00")) {
			t.Fatalf("got % x %v", got, err)
		}
	})
}

func TestHBBSKeyModes(t *testing.T) {
	pub, sk := newSecret(t)
	cases := []struct {
		name     string
		key      *string
		wantKey  string // "" = none; "file" = the generated one
		accepted []string
		rejected []string
	}{
		{"unenforced", new(""), "", []string{"", "anything"}, nil},
		{"literal", new("literalKey"), "literalKey", []string{"literalKey"}, []string{"", pub}},
		{"secret", new(base64.StdEncoding.EncodeToString(sk)), pub, []string{pub}, []string{"", "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startT(t, HBBS, Options{Key: c.key, ConsoleRule: NeverConsole})
			if s.Key() != c.wantKey {
				t.Fatalf("key %q, want %q", s.Key(), c.wantKey)
			}
			if hasLine := strings.Contains(s.Log(), "Key: "); hasLine != (c.wantKey != "") {
				t.Fatalf("Key line present = %v:\n%s", hasLine, s.Log())
			}
			for _, k := range c.accepted {
				c := dial(t, s.Addrs().TCP)
				write(t, c, framedPunch(t, "nobody", k))
				if got := readN(t, c, 3, 2*time.Second); !bytes.Equal(got, unhex(t, frameIDNotExist)) {
					t.Fatalf("key %q: % x", k, got)
				}
			}
			for _, k := range c.rejected {
				c := dial(t, s.Addrs().TCP)
				write(t, c, framedPunch(t, "nobody", k))
				if got := readN(t, c, 5, 2*time.Second); !bytes.Equal(got, unhex(t, frameLicenseMismatch)) {
					t.Fatalf("key %q: % x", k, got)
				}
			}
		})
	}
}

func TestStartFailures(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, dir, SecretKeyFile, "short")
	_, err := StartHBBS(context.Background(), Options{Dir: dir, Bind: "127.0.0.1"})
	var mk *MalformedKeyError
	if !errors.As(err, &mk) {
		t.Fatalf("malformed key: %v", err)
	}
	// hbbr without -k never reads the file, so it starts.
	r, err := StartHBBR(context.Background(), Options{Dir: dir, Bind: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	dir = t.TempDir()
	pub, sk := newSecret(t)
	writeKey(t, dir, SecretKeyFile, base64.StdEncoding.EncodeToString(sk))
	_, err = StartHBBS(context.Background(), Options{Dir: dir, Bind: "127.0.0.1", RefuseKey: pub})
	if !errors.Is(err, ErrRefusedKey) {
		t.Fatalf("refuse: %v", err)
	}
	s, err := StartHBBS(context.Background(), Options{Dir: dir, Bind: "127.0.0.1", RefuseKey: "someOtherKey"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	if _, err := StartHBBS(context.Background(), Options{Dir: dir, Bind: "localhost"}); err == nil {
		t.Fatal("a bind address must be an IP")
	}
}

func TestNATConsoleAndOnline(t *testing.T) {
	s := startT(t, HBBS, Options{Relays: []string{"relay1.example:21117", "10.0.0.1", "bad.invalid", "x:notaport"}})
	if got := s.Relays(); fmt.Sprint(got) != "[relay1.example:21117 10.0.0.1]" {
		t.Fatalf("relays %q", got)
	}
	for _, bad := range []string{"Invalid relay-servers bad.invalid", "Invalid relay-servers x:notaport"} {
		if !strings.Contains(s.Log(), bad) {
			t.Fatalf("log lacks %q:\n%s", bad, s.Log())
		}
	}
	a := s.Addrs()
	console := func(cmd []byte) ([]byte, bool) {
		c := dial(t, a.NAT)
		if cmd != nil {
			write(t, c, cmd)
		}
		return readAll(t, c, 3*time.Second)
	}
	if got, _ := console([]byte("h")); !strings.Contains(string(got), "relay-servers(rs)") {
		t.Fatalf("h: %q", got)
	}
	if got, _ := console([]byte("rs")); string(got) != "relay1.example:21117\n10.0.0.1\n" {
		t.Fatalf("rs: %q", got)
	}
	if got, closed := console([]byte("rs a:1,b:2")); len(got) != 0 || !closed {
		t.Fatalf("rs set: %q", got)
	}
	if got, _ := console([]byte("relay-servers\n")); string(got) != "a:1\nb:2\n" {
		t.Fatalf("rs after set: %q", got)
	}
	if got, closed := console([]byte("nonsense")); len(got) != 0 || !closed {
		t.Fatalf("unknown: %q %v", got, closed)
	}
	if got, closed := console([]byte{0xff, 0xfe, 'h'}); len(got) != 0 || !closed {
		t.Fatalf("non-UTF-8: %q %v", got, closed)
	}
	// A TestNatRequest from loopback is a (non-UTF-8) console command: no reply.
	if got, closed := console(unhex(t, frameTestNatRequest)); len(got) != 0 || !closed {
		t.Fatalf("TestNat from loopback: % x %v", got, closed)
	}
	start := time.Now()
	if got, closed := console(nil); len(got) != 0 || !closed || time.Since(start) > 2500*time.Millisecond {
		t.Fatalf("silent console client: %q closed %v after %v", got, closed, time.Since(start))
	}
	// Port P has no console even from loopback.
	c := dial(t, a.TCP)
	write(t, c, unhex(t, frameTestNatRequest))
	if got, _ := readAll(t, c, 2*time.Second); !bytes.Equal(got, testNatResponseFrame(localPort(c))) {
		t.Fatalf("tcp P from loopback: % x", got)
	}
}

func TestOnlineRequest(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole})
	s.AddPeer("p0", []byte("pk0"))
	s.AddPeer("p9", nil)
	u, err := net.Dial("udp", s.Addrs().UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	buf := make([]byte, 64)
	for _, id := range []string{"p0", "p9"} {
		write(t, u, rendezvous.Marshal(&rendezvous.RegisterPeer{ID: id}))
		u.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := u.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := rendezvous.Unmarshal(buf[:n])
		if want := id == "p9"; m.(*rendezvous.RegisterPeerResponse).RequestPK != want {
			t.Fatalf("%s: request_pk %v", id, !want)
		}
	}
	s.AddPeer("offline", []byte("pk"))
	c := dial(t, s.Addrs().NAT)
	peers := []string{"p0", "x", "offline", "x", "x", "x", "x", "x", "x", "p9"}
	if err := rendezvous.WriteMessage(c, &rendezvous.OnlineRequest{ID: "me", Peers: peers}); err != nil {
		t.Fatal(err)
	}
	got, closed := readAll(t, c, 2*time.Second)
	if want := unhex(t, "1c c2 01 04 0a 02 80 40"); !bytes.Equal(got, want) || !closed {
		t.Fatalf("got % x, want % x", got, want)
	}
	// Known but offline → OFFLINE; online → no immediate reply.
	c = dial(t, s.Addrs().TCP)
	write(t, c, framedPunch(t, "offline", s.Key()))
	if got := readN(t, c, 5, 2*time.Second); !bytes.Equal(got, unhex(t, "10 5a 02 18 02")) {
		t.Fatalf("offline: % x", got)
	}
	c = dial(t, s.Addrs().TCP)
	write(t, c, framedPunch(t, "p0", s.Key()))
	if got, closed := readAll(t, c, 300*time.Millisecond); len(got) != 0 || closed {
		t.Fatalf("online: % x", got)
	}
}

// TestRelayResponseSigned is the signed-key proof over one connection (hbbs's
// handle_tcp RelayResponse branch): RequestRelay stores the connection's
// sink, RelayResponse naming our own address comes back with pk = IdPk signed
// by the server key.
func TestRelayResponseSigned(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole, Relays: []string{"relay.example:21117"}})
	peerPK := bytes.Repeat([]byte{5}, 32)
	s.AddPeer("123456789", peerPK)
	c := dial(t, s.Addrs().TCP)
	if err := rendezvous.WriteMessage(c, &rendezvous.RequestRelay{ID: "no-such-id", UUID: "x"}); err != nil {
		t.Fatal(err)
	}
	self := netip.MustParseAddrPort(c.LocalAddr().String())
	rr := &rendezvous.RelayResponse{SocketAddr: rendezvous.EncodeAddr(self), Union: rendezvous.RelayResponseID("123456789"), Version: "1"}
	if err := rendezvous.WriteMessage(c, rr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	m, err := rendezvous.ReadMessage(c, 4096)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*rendezvous.RelayResponse)
	signed, ok := got.Union.(rendezvous.RelayResponsePK)
	if !ok || got.RelayServer != "relay.example:21117" || len(got.SocketAddr) != 0 {
		t.Fatalf("reply %#v", got)
	}
	pub, _ := base64.StdEncoding.DecodeString(s.Key())
	idpk, err := rendezvous.VerifyIDPK(ed25519.PublicKey(pub), signed)
	if err != nil || idpk.ID != "123456789" || !bytes.Equal(idpk.PK, peerPK) {
		t.Fatalf("verify: %#v %v", idpk, err)
	}
}

func TestHBBR(t *testing.T) {
	pub, _ := newSecret(t)
	r := startT(t, HBBR, Options{Key: new(pub), ConsoleRule: NeverConsole, IdleTimeout: 3 * time.Second})
	if r.Key() != pub || !strings.Contains(r.Log(), "Key: "+pub) {
		t.Fatalf("key %q log:\n%s", r.Key(), r.Log())
	}
	relay := func(key, uuid string) net.Conn {
		c := dial(t, r.Addrs().Relay)
		if err := rendezvous.WriteMessage(c, &rendezvous.RequestRelay{UUID: uuid, LicenceKey: key}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("wrong key: closed without a reply, logged", func(t *testing.T) {
		start := time.Now()
		got, closed := readAll(t, relay("wrong", "u1"), 2*time.Second)
		if len(got) != 0 || !closed || time.Since(start) > time.Second {
			t.Fatalf("got % x closed %v after %v", got, closed, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := r.WaitLog(ctx, "Relay authentication failed from 127.0.0.1:"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Log(), " - invalid key") {
			t.Fatal(r.Log())
		}
	})
	t.Run("right key: parked open", func(t *testing.T) {
		got, closed := readAll(t, relay(pub, "u2"), 500*time.Millisecond)
		if len(got) != 0 || closed {
			t.Fatalf("got % x closed %v", got, closed)
		}
	})
	t.Run("right key, empty uuid: closed", func(t *testing.T) {
		if got, closed := readAll(t, relay(pub, ""), 2*time.Second); len(got) != 0 || !closed {
			t.Fatalf("got % x closed %v", got, closed)
		}
	})
	t.Run("not a RequestRelay: closed", func(t *testing.T) {
		c := dial(t, r.Addrs().Relay)
		write(t, c, unhex(t, frameTestNatRequest))
		if got, closed := readAll(t, c, 2*time.Second); len(got) != 0 || !closed {
			t.Fatalf("got % x closed %v", got, closed)
		}
	})
	t.Run("parked request times out", func(t *testing.T) {
		start := time.Now()
		_, closed := readAll(t, relay(pub, "lonely"), 6*time.Second)
		if el := time.Since(start); !closed || el < 2500*time.Millisecond {
			t.Fatalf("closed %v after %v, want closed after the 3 s idle timeout", closed, el)
		}
	})
	t.Run("pairing copies raw bytes both ways", func(t *testing.T) {
		a := relay(pub, "pair")
		write(t, a, []byte("early bytes from a;")) // sent before the partner arrives
		time.Sleep(100 * time.Millisecond)
		b := relay(pub, "pair")
		if got := readN(t, b, 19, 2*time.Second); string(got) != "early bytes from a;" {
			t.Fatalf("b got %q", got)
		}
		write(t, b, []byte("hello from b"))
		if got := readN(t, a, 12, 2*time.Second); string(got) != "hello from b" {
			t.Fatalf("a got %q", got)
		}
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
		go a.Write(big)
		if got := readN(t, b, len(big), 5*time.Second); !bytes.Equal(got, big) {
			t.Fatal("big payload corrupted")
		}
		a.Close()
		if _, closed := readAll(t, b, 2*time.Second); !closed {
			t.Fatal("b not closed after a left")
		}
	})
	t.Run("a quiet pair is closed after the idle timeout", func(t *testing.T) {
		a := relay(pub, "quiet")
		b := relay(pub, "quiet")
		write(t, b, []byte("x"))
		if got := readN(t, a, 1, 2*time.Second); string(got) != "x" {
			t.Fatalf("a got %q", got)
		}
		start := time.Now()
		_, closed := readAll(t, a, 6*time.Second)
		if el := time.Since(start); !closed || el < 2500*time.Millisecond {
			t.Fatalf("closed %v after %v, want closed after the 3 s idle timeout", closed, el)
		}
	})
	t.Run("websocket pairs with tcp, message by message", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+r.Addrs().RelayWS.String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		ws.Write(ctx, websocket.MessageBinary, rendezvous.Marshal(&rendezvous.RequestRelay{UUID: "mixed", LicenceKey: pub}))
		time.Sleep(100 * time.Millisecond)
		c := relay(pub, "mixed")
		// Upstream switches a pair to raw bytes only when both sides are
		// TCP: here the TCP side stays framed, each frame's payload one
		// binary message.
		if err := rendezvous.WriteFrame(c, []byte("to ws")); err != nil {
			t.Fatal(err)
		}
		if typ, got, err := ws.Read(ctx); err != nil || typ != websocket.MessageBinary || string(got) != "to ws" {
			t.Fatalf("ws got %v %q %v", typ, got, err)
		}
		// A text message is not relayed (upstream reads it as no bytes).
		ws.Write(ctx, websocket.MessageText, []byte("text"))
		ws.Write(ctx, websocket.MessageBinary, []byte("to tcp"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if got, err := rendezvous.ReadFrame(c, 1<<10); err != nil || string(got) != "to tcp" {
			t.Fatalf("tcp got %q %v", got, err)
		}
		// Wrong key over WebSocket: closed, no message.
		ws2, _, err := websocket.Dial(ctx, "ws://"+r.Addrs().RelayWS.String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws2.CloseNow()
		ws2.Write(ctx, websocket.MessageBinary, rendezvous.Marshal(&rendezvous.RequestRelay{UUID: "z", LicenceKey: "bad"}))
		if typ, got, err := ws2.Read(ctx); err == nil {
			t.Fatalf("wrong key over ws answered: %v %q", typ, got)
		}
	})
}

func TestHBBRNoKeyAcceptsAnyKey(t *testing.T) {
	r := startT(t, HBBR, Options{ConsoleRule: NeverConsole})
	if r.Key() != "" || strings.Contains(r.Log(), "Key: ") {
		t.Fatalf("hbbr without -k must not check: %q", r.Key())
	}
	c := dial(t, r.Addrs().Relay)
	rendezvous.WriteMessage(c, &rendezvous.RequestRelay{UUID: "u", LicenceKey: "whatever"})
	if got, closed := readAll(t, c, 500*time.Millisecond); len(got) != 0 || closed {
		t.Fatalf("got % x closed %v", got, closed)
	}
}

func TestHBBRConsole(t *testing.T) {
	r := startT(t, HBBR, Options{})
	cmd := func(s string) string {
		c := dial(t, r.Addrs().Relay)
		write(t, c, []byte(s))
		got, closed := readAll(t, c, 3*time.Second)
		if !closed {
			t.Fatalf("%q: console did not close", s)
		}
		return string(got)
	}
	if got := cmd("h"); !strings.Contains(got, "blacklist-add(ba)") || !strings.Contains(got, "usage(u)") {
		t.Fatalf("h: %q", got)
	}
	cmd("ba 10.1.1.1|10.1.1.2")
	if got := cmd("b 10.1.1.1"); got != "true" {
		t.Fatalf("b ip: %q", got)
	}
	if got := cmd("b"); got != "10.1.1.1\n10.1.1.2\n" {
		t.Fatalf("b: %q", got)
	}
	cmd("br all")
	if got := cmd("blacklist 10.1.1.1"); got != "false" {
		t.Fatalf("after br all: %q", got)
	}
	cmd("Ba 10.9.9.9")
	if got := cmd("B 10.9.9.9"); got != "true" {
		t.Fatalf("B: %q", got)
	}
	if got := cmd("b 10.9.9.9"); got != "false" {
		t.Fatal("blocklist and blacklist must be separate")
	}
	if got := cmd("u"); got != "" {
		t.Fatalf("usage with no relays: %q", got)
	}
	if got := cmd("what"); got != "" {
		t.Fatalf("unknown: %q", got)
	}
}

func TestBlocklistDropsRelayClients(t *testing.T) {
	var console bool
	r := startT(t, HBBR, Options{ConsoleRule: func(a netip.Addr) bool { return console }})
	c := dial(t, r.Addrs().Relay)
	rendezvous.WriteMessage(c, &rendezvous.RequestRelay{UUID: "u"})
	if _, closed := readAll(t, c, 300*time.Millisecond); closed {
		t.Fatal("should be parked")
	}
	r.mu.Lock()
	r.blocklist["127.0.0.1"] = true
	r.mu.Unlock()
	c = dial(t, r.Addrs().Relay)
	rendezvous.WriteMessage(c, &rendezvous.RequestRelay{UUID: "u2"})
	if _, closed := readAll(t, c, 2*time.Second); !closed {
		t.Fatal("blocklisted client kept")
	}
}

func TestFixedLayoutAndMuteSkip(t *testing.T) {
	var s, r *Server
	for attempt := 0; ; attempt++ {
		p, err := FreeBasePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		s, err = StartHBBS(context.Background(), Options{Dir: dir, Bind: "127.0.0.1", Port: p,
			Mute: []Listener{RendezvousUDP}, Skip: []Listener{RendezvousWS}})
		if err != nil {
			if attempt < 5 {
				continue
			}
			t.Fatal(err)
		}
		r, err = StartHBBR(context.Background(), Options{Dir: dir, Bind: "127.0.0.1", Port: p + 1, Mute: []Listener{Relay}})
		if err != nil {
			s.Close()
			if attempt < 5 {
				continue
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); r.Close() })
		a, b := s.Addrs(), r.Addrs()
		if int(a.NAT.Port()) != p-1 || int(a.TCP.Port()) != p || int(a.UDP.Port()) != p || a.WS.IsValid() ||
			int(b.Relay.Port()) != p+1 || int(b.RelayWS.Port()) != p+3 {
			t.Fatalf("P=%d: hbbs %+v hbbr %+v", p, a, b)
		}
		break
	}
	// Muted UDP: datagrams vanish.
	u, err := net.Dial("udp", s.Addrs().UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	write(t, u, unhex(t, udpRegisterPeerABC))
	u.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := u.Read(make([]byte, 10)); err == nil {
		t.Fatal("muted UDP answered")
	}
	// Muted TCP (hbbr R, even from loopback): accepted, silent, open.
	c := dial(t, r.Addrs().Relay)
	write(t, c, []byte("h"))
	if got, closed := readAll(t, c, 300*time.Millisecond); len(got) != 0 || closed {
		t.Fatalf("muted relay: % x closed %v", got, closed)
	}
	// Close ends even held connections.
	r.Close()
	if _, closed := readAll(t, c, 2*time.Second); !closed {
		t.Fatal("Close left a muted connection open")
	}
}

func TestBindOn127x(t *testing.T) {
	s := startT(t, HBBS, Options{Bind: "127.0.0.7", ConsoleRule: NeverConsole})
	if s.Addrs().TCP.Addr() != netip.MustParseAddr("127.0.0.7") {
		t.Fatalf("%v", s.Addrs())
	}
	c := dial(t, s.Addrs().NAT)
	write(t, c, unhex(t, frameTestNatRequest))
	if got, _ := readAll(t, c, 2*time.Second); !bytes.Equal(got, testNatResponseFrame(localPort(c))) {
		t.Fatalf("% x", got)
	}
}

func TestIPv6LoopbackConsole(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	ln.Close()
	s := startT(t, HBBS, Options{Bind: "::1"})
	c := dial(t, s.Addrs().NAT)
	write(t, c, []byte("h"))
	if got, _ := readAll(t, c, 3*time.Second); !strings.Contains(string(got), "relay-servers") {
		t.Fatalf("::1 is a console source: %q", got)
	}
	if !LoopbackConsole(netip.MustParseAddr("::ffff:127.0.0.1")) || LoopbackConsole(netip.MustParseAddr("10.0.0.1")) {
		t.Fatal("LoopbackConsole")
	}
}

func TestContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := StartHBBS(ctx, Options{Dir: t.TempDir(), Bind: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("not stopped")
	}
	s.Close()
	if _, err := net.DialTimeout("tcp", s.Addrs().TCP.String(), time.Second); err == nil {
		t.Fatal("still listening")
	}
}
