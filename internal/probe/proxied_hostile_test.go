package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// TestHostileProxies holds the proxied probes' own exchanges (the upgrade
// through a proxy, its TLS, the messages after it) to the hostile-server
// bounds: memory (hostileMem) and time (the probe's timeout).
func TestHostileProxies(t *testing.T) {
	chunk := bytes.Repeat([]byte("a"), 32<<10)
	const timeout = 1500 * time.Millisecond
	ca := hbbstest.NewCA(t)
	leaf := ca.Leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "127.0.0.1")
	// A chain padded with 300 KiB of certificates: more than crypto/tls
	// takes in one handshake message.
	huge := leaf
	for size := 0; size < 300<<10; size += len(leaf.Certificate[0]) {
		huge.Certificate = append(huge.Certificate, leaf.Certificate[0])
	}
	tests := []struct {
		name  string
		tls   *tls.Certificate // serve wss with it (the handler then sees the plain stream)
		serve func(c net.Conn)
		want  error // errors.Is
		cause Cause // or this cause
		fast  bool
	}{
		{name: "endless header line", want: ErrHandshakeTooLarge, fast: true, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nX-Endless: ")
			endless(c, chunk)
		}},
		{name: "endless headers", want: ErrHandshakeTooLarge, fast: true, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 404 Not Found\r\n")
			endless(c, bytes.Repeat([]byte("X-A: b\r\n"), 4096))
		}},
		{name: "404 with an endless body", cause: CauseNotRouted, fast: true, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 100000000000\r\n\r\n")
			endless(c, chunk)
		}},
		{name: "redirect with a huge Location", cause: CauseRedirect, fast: true, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 301 Moved\r\nLocation: https://"+string(chunk[:6000])+"\r\n\r\n")
			io.Copy(io.Discard, c)
		}},
		{name: "never answers", want: ErrNoAnswer, serve: func(c net.Conn) { io.Copy(io.Discard, c) }},
		{name: "101 without a valid accept", cause: CauseUpgradeRefused, fast: true, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
			io.Copy(io.Discard, c)
		}},
		{name: "huge frame after the upgrade", want: ErrUnexpectedReply, fast: true, serve: func(c net.Conn) {
			if acceptWS(c) {
				c.Write(wsFrame(ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1 << 62}))
				endless(c, chunk)
			}
		}},
		{name: "slow frame after the upgrade", want: ErrNoAnswer, serve: func(c net.Conn) {
			if acceptWS(c) {
				slowly(c, append(wsFrame(ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 60000}), chunk...))
			}
		}},
		{name: "closed without a byte", cause: CauseClosedEmpty, fast: true, serve: func(c net.Conn) {}},
		{name: "tls: huge certificate chain", tls: &huge, cause: CauseTLSFailed, fast: true, serve: func(c net.Conn) {}},
		{name: "tls: never answers the upgrade", tls: &leaf, want: ErrNoAnswer, serve: func(c net.Conn) { io.Copy(io.Discard, c) }},
		{name: "tls: endless headers", tls: &leaf, want: ErrHandshakeTooLarge, fast: true, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			endless(c, bytes.Repeat([]byte("X-A: b\r\n"), 4096))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serve := tt.serve
			scheme := "ws"
			if tt.tls != nil {
				scheme = "wss"
				cert := tt.tls
				serve = func(c net.Conn) {
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}})
					if tc.Handshake() == nil {
						tt.serve(tc)
					}
				}
			}
			addr := hostileTCP(t, serve)
			_, port, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(port)
			tg := Target{Host: "127.0.0.1", Proxy: scheme, ProxyPort: p}
			pr := newProxied(tg, Options{Timeout: timeout, RootCAs: ca.Pool}, false)
			var err error
			var elapsed time.Duration
			total, peak := memUse(func() {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				start := time.Now()
				_, _, err = pr.probeID(ctx)
				elapsed = time.Since(start)
			})
			t.Logf("%v in %s; allocated %d KiB, peak heap +%d KiB", err, elapsed.Round(time.Millisecond), total>>10, peak>>10)
			var pe *ProxyError
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("error %v, want %v", err, tt.want)
			case tt.cause != "" && (!errors.As(err, &pe) || pe.Cause != tt.cause):
				t.Errorf("error %v, want cause %s", err, tt.cause)
			}
			if tt.fast && elapsed > timeout/2 {
				t.Errorf("took %s; the bound should stop it at once", elapsed)
			}
			if elapsed > timeout+hostileSlack {
				t.Errorf("took %s with a %s timeout", elapsed, timeout)
			}
			if peak > hostileMem || total > hostileMem {
				t.Errorf("allocated %d MiB (peak heap +%d MiB); the bound is %d MiB", total>>20, peak>>20, hostileMem>>20)
			}
		})
	}
}

// TestProxyRelayNotDelivered: both /ws/relay upgrades succeed but nothing
// behind them pairs or answers (a proxy that swallows the bytes): the relay
// probe fails with relay-not-delivered within its timeout plus the routing
// diagnosis.
func TestProxyRelayNotDelivered(t *testing.T) {
	addr := hostileTCP(t, func(c net.Conn) {
		if acceptWS(c) {
			io.Copy(io.Discard, c)
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	const timeout = time.Second
	pr := newProxied(Target{Host: "127.0.0.1", Proxy: "ws", ProxyPort: p}, Options{Timeout: timeout}, false)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	_, err := pr.probeRelay(ctx)
	var pe *ProxyError
	if !errors.As(err, &pe) || pe.Cause != CauseRelayNotDelivered {
		t.Fatalf("error %v, want relay-not-delivered", err)
	}
	if el := time.Since(start); el > 2*timeout+hostileSlack {
		t.Fatalf("took %s", el)
	}
}
