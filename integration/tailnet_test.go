//go:build integration

package integration

// TestTailnetTailscaled runs two real tailscaled daemons in userspace
// networking mode against an in-process control server and DERP/STUN on
// 127.0.0.1 (tailscale.com/tstest/integration), and drives rdctl's
// internal/tailnet client over node A's real LocalAPI unix socket.
//
// The harness builds tailscaled and tailscale with `go install` from this
// module at test time; go.mod carries `tool` directives for both so their
// dependencies resolve.
//
// In userspace mode tailscaled forwards inbound tailnet connections for its
// own address to 127.0.0.1:<same port> on its host, so node B's "services"
// here are ordinary host listeners on random loopback ports.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"

	"github.com/rdctl/rdctl/internal/tailnet"
)

func TestTailnetTailscaled(t *testing.T) {
	// Keep magicsock on loopback; the daemons inherit the environment.
	t.Setenv("TS_DEBUG_OMIT_LOCAL_ADDRS", "true")
	t.Setenv("TS_DISABLE_PORTMAPPER", "true")
	const domain = "tail-scale.ts.net"

	t0 := time.Now()
	env := integration.NewTestEnv(t, integration.ConfigureControl(func(c *testcontrol.Server) {
		c.AllOnline = true // testcontrol reports peers offline otherwise
		c.MagicDNSDomain = domain
	}))
	tBuild := time.Since(t0) // dominated by `go install` of tailscale{,d}

	t1 := time.Now()
	nb := integration.NewTestNode(t, env)
	db := nb.StartDaemon()
	t.Cleanup(func() { db.MustCleanShutdown(t) })
	na := integration.NewTestNode(t, env)
	da := na.StartDaemon()
	nb.AwaitResponding()
	na.AwaitResponding()

	// A's daemon runs but is not logged in yet.
	client := tailnet.New(na.LocalClient().Socket)
	na.AwaitNeedsLogin()
	if _, err := client.FindPeer(t.Context(), "rd-server"); !errors.Is(err, tailnet.ErrNotRunning) ||
		!strings.Contains(tailnet.Hint(err), "tailscale up") {
		t.Errorf("before up: %v (hint %q), want ErrNotRunning naming tailscale up", err, tailnet.Hint(err))
	}

	nb.MustUp("--hostname=rd-server")
	na.MustUp("--hostname=rd-client")
	nb.AwaitRunning()
	na.AwaitRunning()
	bIP := nb.AwaitIP4()
	tUp := time.Since(t1)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// Wait until A's netmap carries B.
	var peer *tailnet.Peer
	for {
		p, err := client.FindPeer(ctx, "rd-server")
		if err == nil {
			peer = p
			break
		}
		if !errors.Is(err, tailnet.ErrPeerNotFound) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("A never saw rd-server: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}

	st, err := client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ready(); err != nil {
		t.Fatal(err)
	}
	if st.TUN || st.Mode() != "userspace" {
		t.Errorf("TUN = %v, Mode = %q; want userspace", st.TUN, st.Mode())
	}
	if st.Self.HostName != "rd-client" || st.Self.DNSName != "rd-client."+domain {
		t.Errorf("Self = %+v", st.Self)
	}
	if !peer.Online || peer.DNSName != "rd-server."+domain || peer.Addr() != bIP {
		t.Errorf("peer = %+v, want online rd-server.%s at %v", peer, domain, bIP)
	}
	for _, target := range []string{"rd-server." + domain + ".", bIP.String(), bIP.String() + ":21116"} {
		if p, err := client.FindPeer(ctx, target); err != nil || p.DNSName != peer.DNSName {
			t.Errorf("FindPeer(%q) = %+v, %v", target, p, err)
		}
	}

	for _, kind := range []tailnet.PingKind{tailnet.PingDisco, tailnet.PingTSMP, tailnet.PingICMP} {
		res, err := client.Ping(ctx, bIP, kind)
		if err != nil {
			t.Errorf("ping %s: %v", kind, err)
			continue
		}
		t.Logf("ping %s: path=%s endpoint=%q derp=%q latency=%.3fms", kind, res.Path, res.Endpoint, res.DERPRegion, res.LatencyMS)
		if res.LatencyMS <= 0 || (res.Path != tailnet.PathDirect && res.Path != tailnet.PathDERP) {
			t.Errorf("ping %s: %+v", kind, res)
		}
		if res.Path == tailnet.PathDirect {
			if ap, err := netip.ParseAddrPort(res.Endpoint); err != nil || !ap.Addr().IsLoopback() {
				t.Errorf("ping %s: direct endpoint %q is not loopback", kind, res.Endpoint)
			}
		}
	}

	// B's services: TCP and UDP echo on random loopback ports of its host.
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcpLn.Close()
	go func() {
		for {
			c, err := tcpLn.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	tcpPort := uint16(tcpLn.Addr().(*net.TCPAddr).Port)
	udpPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udpPC.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := udpPC.ReadFrom(buf)
			if err != nil {
				return
			}
			udpPC.WriteTo(buf[:n], from)
		}
	}()
	udpPort := uint16(udpPC.LocalAddr().(*net.UDPAddr).Port)

	for _, host := range []string{"rd-server", "rd-server." + domain, bIP.String()} {
		start := time.Now()
		c, err := client.DialTCP(ctx, host, tcpPort)
		if err != nil {
			t.Errorf("DialTCP(%s:%d): %v", host, tcpPort, err)
			continue
		}
		tailnetEcho(t, c, "tcp via tailscaled to "+host)
		c.Close()
		t.Logf("DialTCP(%s) + echo: %v", host, time.Since(start).Round(time.Microsecond))
	}
	if c, err := client.DialUDP(ctx, bIP.String(), udpPort); err != nil {
		t.Errorf("DialUDP: %v", err)
	} else {
		tailnetEcho(t, c, "udp via tailscaled")
		c.Close()
	}

	// A port nothing listens on: refused, fast, with the hint.
	closed := tailnetFreePort(t)
	start := time.Now()
	if _, err := client.DialTCP(ctx, "rd-server", closed); !errors.Is(err, tailnet.ErrRefused) || tailnet.Hint(err) == "" {
		t.Errorf("closed port: %v (hint %q), want ErrRefused with a hint", err, tailnet.Hint(err))
	} else {
		t.Logf("closed port refused in %v: %v", time.Since(start).Round(time.Microsecond), err)
	}

	// The service stops; the peer stays online.
	tcpLn.Close()
	if _, err := client.DialTCP(ctx, bIP.String(), tcpPort); !errors.Is(err, tailnet.ErrRefused) {
		t.Errorf("after the service stopped: %v, want ErrRefused", err)
	}
	if p, err := client.FindPeer(ctx, "rd-server"); err != nil || !p.Online {
		t.Errorf("peer after the service stopped: %+v, %v; want online", p, err)
	}

	// An address no peer has is refused before anything is sent.
	if _, err := client.DialTCP(ctx, "100.64.99.99", tcpPort); !errors.Is(err, tailnet.ErrPeerNotFound) {
		t.Errorf("DialTCP to a non-peer: %v, want ErrPeerNotFound", err)
	}

	// tailscaled goes away: the same client now says so, with the fix.
	da.MustCleanShutdown(t)
	_, err = client.Status(ctx)
	if !errors.Is(err, tailnet.ErrDaemonUnavailable) || !strings.Contains(tailnet.Hint(err), "systemctl start tailscaled") {
		t.Errorf("after tailscaled stopped: %v (hint %q), want ErrDaemonUnavailable", err, tailnet.Hint(err))
	}
	t.Logf("after shutdown: %v; hint: %s", err, tailnet.Hint(err))
	t.Logf("timings: env+build %v, daemons up %v, checks %v", tBuild.Round(time.Millisecond),
		tUp.Round(time.Millisecond), time.Since(t1.Add(tUp)).Round(time.Millisecond))
}

// tailnetEcho writes msg on c and expects it echoed back.
func tailnetEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}

// tailnetFreePort returns a loopback port that nothing listens on (it was free
// a moment ago).
func tailnetFreePort(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}
