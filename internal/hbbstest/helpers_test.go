package hbbstest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startT(t *testing.T, kind Kind, o Options) *Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Bind == "" {
		o.Bind = "127.0.0.1"
	}
	if testing.Verbose() && o.LogWriter == nil {
		o.LogWriter = os.Stderr
	}
	s, err := Start(context.Background(), kind, o)
	if err != nil {
		t.Fatalf("start %s: %v", kind, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, ap netip.AddrPort) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", ap.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", ap, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localPort(c net.Conn) int { return int(c.LocalAddr().(*net.TCPAddr).Port) }

// readAll reads until EOF or the deadline; it reports whether the server
// closed the connection (EOF) as opposed to the deadline passing.
func readAll(t *testing.T, c net.Conn, d time.Duration) (data []byte, closed bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return buf.Bytes(), false
	}
	return buf.Bytes(), true // EOF (err nil) or reset: closed either way
}

// readN reads exactly n bytes within d.
func readN(t *testing.T, c net.Conn, n int, d time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v (got % x)", n, err, b)
	}
	return b
}

// noErr stops the test on a setup step's error, so that a step that failed
// cannot pass for the behaviour under test.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// testNatResponseFrame builds the framed reply TestNatResponse{port} by hand
// with protowire only, independently of package rendezvous's message code:
// RendezvousMessage field 21 (tag aa 01) around TestNatResponse field 1.
func testNatResponseFrame(port int) []byte {
	inner := protowire.AppendVarint([]byte{0x08}, uint64(port))
	msg := append([]byte{0xaa, 0x01, byte(len(inner))}, inner...)
	if len(msg) > 0x3f {
		panic("unexpected size")
	}
	return append([]byte{byte(len(msg) << 2)}, msg...)
}
