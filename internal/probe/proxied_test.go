package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// proxiedSetup is a stand-in pair with a proxy in front, on one loopback
// address that the name rd.test is pinned to.
type proxiedSetup struct {
	pair   *hbbstest.Pair
	ca     *hbbstest.CA
	target Target
	opts   Options
}

const testName = "rd.test"

// firewalled dials like the fleet, but refuses connections to the pair's
// WebSocket ports, as the firewall in front of a proxied deployment does
// for everyone but the proxy.
func firewalled(pair *hbbstest.Pair) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err == nil && network == "tcp" && (ap == pair.HBBS.Addrs().WS || ap == pair.HBBR.Addrs().RelayWS) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return abortiveDial(ctx, network, addr)
	}
}

func setupProxied(t *testing.T, scheme string, mode hbbstest.ProxyMode, hr *hbbstest.Options) *proxiedSetup {
	t.Helper()
	if hr == nil {
		hr = &hbbstest.Options{}
	}
	pair := hbbstest.StartPair(t, hbbstest.Options{}, hr)
	ca := hbbstest.NewCA(t)
	if scheme == "wss" && mode.TLS == nil {
		c := ca.Leaf(t, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), testName)
		mode.TLS = &c
	}
	port := hbbstest.StartProxy(t, pair.Bind, pair, mode)
	tg := Target{Name: scheme + "://" + testName, Host: testName, Port: pair.Port, Proxy: scheme, ProxyPort: port,
		Dial: firewalled(pair)}
	return &proxiedSetup{pair: pair, ca: ca, target: tg, opts: Options{
		Key: pair.HBBS.Key(), RootCAs: ca.Pool, Timeout: 2 * time.Second,
		Resolve: map[string]netip.Addr{testName: netip.MustParseAddr(pair.Bind)},
	}}
}

func TestProxiedAllPass(t *testing.T) {
	for _, scheme := range []string{"wss", "ws"} {
		t.Run(scheme, func(t *testing.T) {
			s := setupProxied(t, scheme, hbbstest.ProxyMode{}, nil)
			r := check1(t, s.target, s.opts)
			if !r.OK || r.KeyStatus != KeyMatch {
				t.Fatalf("not ok:\n%s", dump(r))
			}
			want := []Name{ProxyTLS, ProxyID, ProxyRealIP, ProxyKey, ProxyRegister, ProxyRelay, ExposedID, ExposedRelay, NATTest, RendezvousTCP, RendezvousUDP, Relay}
			if scheme == "ws" {
				want = want[1:]
			}
			var got []Name
			for _, p := range r.Probes {
				got = append(got, p.Name)
				if p.Warning != "" || p.Cause != "" {
					t.Errorf("%s: warning %q cause %q", p.Name, p.Warning, p.Cause)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("probes %v, want %v", got, want)
			}
			if n := probeOf(t, r, ProxyID).Note; !strings.Contains(n, "port 0") {
				t.Errorf("proxy-id note %q", n)
			}
			if n := probeOf(t, r, ProxyRegister).Note; n != NoteOpenSourceWS {
				t.Errorf("proxy-register note %q", n)
			}
			if p := probeOf(t, r, ProxyID); p.Port != s.target.ProxyPort || p.Proto != scheme {
				t.Errorf("proxy-id reported as %s/%d", p.Proto, p.Port)
			}
			if p := probeOf(t, r, ExposedID); p.Port != s.pair.Port+2 || !strings.Contains(p.Note, "connection refused") {
				t.Errorf("exposed-id: %+v", p)
			}
			if scheme == "wss" && !strings.Contains(probeOf(t, r, ProxyTLS).Note, "certificate for rd.test, issued by CN=rdctl test CA") {
				t.Errorf("proxy-tls note %q", probeOf(t, r, ProxyTLS).Note)
			}
			if r.Address != net.JoinHostPort(s.pair.Bind, strconv.Itoa(s.target.ProxyPort)) {
				t.Errorf("address %s", r.Address)
			}
			// The relay pairing crossed the proxy: hbbr logged its pair.
			if !strings.Contains(s.pair.HBBR.Log(), "got paired") {
				t.Error("hbbr never paired")
			}
		})
	}
}

func TestProxiedWSOnlyAndSelection(t *testing.T) {
	s := setupProxied(t, "wss", hbbstest.ProxyMode{}, nil)
	o := s.opts
	o.WSOnly = true
	r := check1(t, s.target, o)
	for _, p := range r.Probes {
		if !isProxyName(p.Name) {
			t.Errorf("--ws-only ran %s", p.Name)
		}
	}
	if !r.OK {
		t.Fatal(dump(r))
	}
	o = s.opts
	o.Probes = []Name{ProxyKey, NATTest, RendezvousWS}
	r = check1(t, s.target, o)
	if len(r.Probes) != 2 || r.Probes[0].Name != ProxyKey || r.Probes[1].Name != NATTest || !r.OK {
		t.Fatalf("selection:\n%s", dump(r))
	}
}

func TestProxiedKeyMismatch(t *testing.T) {
	s := setupProxied(t, "wss", hbbstest.ProxyMode{}, nil)
	o := s.opts
	o.Key = otherKey()
	o.Probes = []Name{ProxyKey}
	r := check1(t, s.target, o)
	if r.OK || r.KeyStatus != KeyMismatch {
		t.Fatal(dump(r))
	}
	o.Key, o.Strict = s.opts.Key, true
	if r = check1(t, s.target, o); !r.OK || r.KeyStatus != KeyMatch {
		t.Fatal(dump(r))
	}
}

// TestProxiedFailures: each broken configuration is reported by the probe
// it breaks, with its cause.
func TestProxiedFailures(t *testing.T) {
	ca := hbbstest.NewCA(t)
	now := time.Now()
	other := ca.Leaf(t, now.Add(-time.Hour), now.Add(time.Hour), "other.test")
	expired := ca.Leaf(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), testName)
	good := ca.Leaf(t, now.Add(-time.Hour), now.Add(time.Hour), testName)
	cases := []struct {
		name    string
		scheme  string
		mode    hbbstest.ProxyMode
		hr      *hbbstest.Options
		trust   *hbbstest.CA // nil: the CA that signed the certificate
		exposed bool
		probe   Name
		cause   Cause
	}{
		{name: "certificate for another name", scheme: "wss", mode: hbbstest.ProxyMode{TLS: &other}, trust: ca, probe: ProxyTLS, cause: CauseTLSName},
		{name: "expired certificate", scheme: "wss", mode: hbbstest.ProxyMode{TLS: &expired}, trust: ca, probe: ProxyTLS, cause: CauseTLSExpired},
		{name: "untrusted CA", scheme: "wss", mode: hbbstest.ProxyMode{TLS: &good}, trust: hbbstest.NewCA(t), probe: ProxyTLS, cause: CauseTLSUntrusted},
		{name: "no Upgrade headers", scheme: "wss", mode: hbbstest.ProxyMode{NoUpgrade: true}, probe: ProxyID, cause: CauseBadGateway},
		{name: "no Upgrade headers, relay", scheme: "wss", mode: hbbstest.ProxyMode{NoUpgrade: true}, probe: ProxyRelay, cause: CauseBadGateway},
		{name: "wrong location", scheme: "wss", mode: hbbstest.ProxyMode{OnlyRoot: true}, probe: ProxyID, cause: CauseNotRouted},
		{name: "client X-Real-IP passed through", scheme: "wss", mode: hbbstest.ProxyMode{PassRealIP: true}, probe: ProxyRealIP, cause: CauseRealIPForgeable},
		{name: "relay routed to hbbs", scheme: "wss", mode: hbbstest.ProxyMode{RelayToHBBS: true}, probe: ProxyRelay, cause: CauseRelayToHBBS},
		{name: "hbbr with another key", scheme: "wss", hr: &hbbstest.Options{Key: new(otherKey())}, probe: ProxyRelay, cause: CauseRelayRejected},
		{name: "21118 open directly", scheme: "wss", exposed: true, probe: ExposedID, cause: CauseExposed},
		{name: "21119 open directly", scheme: "wss", exposed: true, probe: ExposedRelay, cause: CauseExposed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := setupProxied(t, c.scheme, c.mode, c.hr)
			if c.trust != nil {
				s.opts.RootCAs = c.trust.Pool
			}
			if c.exposed {
				// Unfirewalled, and dialled as from another host (a
				// dialer of its own): the loopback address stands for
				// the server's public one. Dialled directly at
				// loopback it is TestProxiedExposedOnLoopback.
				s.target.Dial = abortiveDial
			}
			s.opts.WSOnly = true
			r := check1(t, s.target, s.opts)
			p := probeOf(t, r, c.probe)
			if r.OK || p.OK || p.Cause != c.cause {
				t.Fatalf("%s: want cause %s:\n%s", c.probe, c.cause, dump(r))
			}
			if c.probe == ProxyTLS {
				// The other wss probes did not run into the same error.
				if q := probeOf(t, r, ProxyID); q.Error != errTLSGate.Error() {
					t.Errorf("proxy-id after a TLS failure: %q", q.Error)
				}
			}
			t.Logf("%s: %s", p.Name, p.Error)
		})
	}
}

// TestProxyWithoutClientAddress: a proxy that sets no X-Real-IP passes,
// with proxy-id's warning; it forwards no forged header either.
func TestProxyWithoutClientAddress(t *testing.T) {
	s := setupProxied(t, "wss", hbbstest.ProxyMode{NoRealIP: true}, nil)
	s.opts.Probes = []Name{ProxyID, ProxyRealIP}
	r := check1(t, s.target, s.opts)
	if !r.OK {
		t.Fatal(dump(r))
	}
	if w := probeOf(t, r, ProxyID).Warning; !strings.Contains(w, "does not pass the client address") {
		t.Errorf("warning %q", w)
	}
}

// TestProxiedPlainTLSPorts: wss:// to a plain port (hbbs's own WebSocket
// port: closed without a byte; an HTTP server: not TLS), ws:// to a TLS
// port (400) and ws:// redirected (301).
func TestProxiedPlainTLSPorts(t *testing.T) {
	pair := hbbstest.StartPair(t, hbbstest.Options{}, &hbbstest.Options{})
	resolve := map[string]netip.Addr{testName: netip.MustParseAddr(pair.Bind)}
	opts := Options{Key: pair.HBBS.Key(), Timeout: 2 * time.Second, Resolve: resolve, WSOnly: true, Probes: []Name{ProxyTLS, ProxyID}}

	ca := hbbstest.NewCA(t)
	cert := ca.Leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), testName)
	tlsPort := hbbstest.StartProxy(t, pair.Bind, pair, hbbstest.ProxyMode{TLS: &cert})
	plainPort := hbbstest.StartProxy(t, pair.Bind, pair, hbbstest.ProxyMode{})
	ln, err := net.Listen("tcp", net.JoinHostPort(pair.Bind, "0"))
	if err != nil {
		t.Fatal(err)
	}
	redirect := &http.Server{ErrorLog: hbbstest.QuietLog(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+r.Host+r.URL.Path, http.StatusMovedPermanently)
	})}
	go redirect.Serve(ln)
	t.Cleanup(func() { redirect.Close() })
	cases := []struct {
		name   string
		scheme string
		port   int
		probe  Name
		cause  Cause
	}{
		{"TLS to hbbs's WebSocket port", "wss", int(pair.HBBS.Addrs().WS.Port()), ProxyTLS, CauseClosedEmpty},
		{"TLS to plain HTTP", "wss", plainPort, ProxyTLS, CauseNotTLS},
		{"ws:// to a TLS port", "ws", tlsPort, ProxyID, CausePlainHTTPToTLS},
		{"ws:// redirected", "ws", ln.Addr().(*net.TCPAddr).Port, ProxyID, CauseRedirect},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := Target{Host: testName, Port: pair.Port, Proxy: c.scheme, ProxyPort: c.port}
			r := check1(t, tg, opts)
			p := probeOf(t, r, c.probe)
			if p.OK || p.Cause != c.cause {
				t.Fatalf("want %s:\n%s", c.cause, dump(r))
			}
			t.Logf("%s", p.Error)
		})
	}
}

func TestProxiedRejectsBadTargets(t *testing.T) {
	for _, tg := range []Target{
		{Host: "h", Proxy: "http"},
		{Host: "h", ProxyPort: 443},
		{Host: "h", Proxy: "wss", ProxyPort: 70000},
	} {
		if _, err := Check(context.Background(), []Target{tg}, Options{}); err == nil {
			t.Errorf("%+v accepted", tg)
		}
	}
}

// TestProxyTLSExpiringSoon: a certificate with less than 14 days left
// passes with a warning.
func TestProxyTLSExpiringSoon(t *testing.T) {
	ca := hbbstest.NewCA(t)
	soon := ca.Leaf(t, time.Now().Add(-time.Hour), time.Now().Add(3*24*time.Hour), testName)
	s := setupProxied(t, "wss", hbbstest.ProxyMode{TLS: &soon}, nil)
	s.opts.RootCAs = ca.Pool
	s.opts.Probes = []Name{ProxyTLS}
	r := check1(t, s.target, s.opts)
	if p := probeOf(t, r, ProxyTLS); !r.OK || !strings.HasPrefix(p.Warning, "the certificate expires in 2 days") {
		t.Fatalf("%+v", p)
	}
}

// A check on the server itself, dialling the WebSocket ports directly at a
// loopback address, cannot tell whether they are exposed: they answer, as
// the proxy on that host needs. That is a warning naming where to check
// from, and the target still passes.
func TestProxiedExposedOnLoopback(t *testing.T) {
	s := setupProxied(t, "wss", hbbstest.ProxyMode{}, nil)
	s.target.Dial = nil
	s.opts.WSOnly = true
	r := check1(t, s.target, s.opts)
	for _, n := range []Name{ExposedID, ExposedRelay} {
		p := probeOf(t, r, n)
		if !p.OK || p.Cause != "" || !strings.Contains(p.Warning, "answers over loopback") || !strings.Contains(p.Warning, "from another host") {
			t.Errorf("%s: %+v", n, p)
		}
	}
	if !r.OK {
		t.Errorf("not ok:\n%s", dump(r))
	}
}
