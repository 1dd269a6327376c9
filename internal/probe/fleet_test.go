package probe

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// server is an hbbs stand-in on P and an hbbr stand-in on P+1, both on one
// 127.0.0.x address, laid out exactly as the real servers with -p.
type server struct {
	hbbs, hbbr *hbbstest.Server
	target     Target
}

// startServer starts the pair (see hbbstest.StartPair) and the target
// that names it.
func startServer(t *testing.T, hs hbbstest.Options, hr *hbbstest.Options) *server {
	t.Helper()
	p := hbbstest.StartPair(t, hs, hr)
	return &server{hbbs: p.HBBS, hbbr: p.HBBR,
		target: Target{Name: net.JoinHostPort(p.Bind, fmt.Sprint(p.Port)), Host: p.Bind, Port: p.Port}}
}

func otherKey() string {
	var b [32]byte
	crand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func check1(t *testing.T, target Target, o Options) TargetResult {
	t.Helper()
	rs, err := Check(context.Background(), []Target{target}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d results", len(rs))
	}
	return rs[0]
}

func probeOf(t *testing.T, r TargetResult, n Name) Result {
	t.Helper()
	for _, p := range r.Probes {
		if p.Name == n {
			return p
		}
	}
	t.Fatalf("no %s probe in %+v", n, r.Probes)
	return Result{}
}

func dump(r TargetResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ok=%v key=%s\n", r.Address, r.OK, r.KeyStatus)
	for _, p := range r.Probes {
		fmt.Fprintf(&b, "  %-15s %s %5d ok=%-5v %8s err=%q note=%q\n", p.Name, p.Proto, p.Port, p.OK, p.Duration.Round(time.Microsecond), p.Error, p.Note)
	}
	return b.String()
}

func TestAllUpRightKey(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	r := check1(t, s.target, Options{Key: s.hbbs.Key()})
	if !r.OK || r.KeyStatus != KeyMatch {
		t.Fatalf("want ok and match:\n%s", dump(r))
	}
	if len(r.Probes) != len(Names()) {
		t.Fatalf("want all %d probes:\n%s", len(Names()), dump(r))
	}
	p := s.target.Port
	wantPorts := map[Name]int{NATTest: p - 1, RendezvousTCP: p, RendezvousUDP: p, Relay: p + 1, RendezvousWS: p + 2, RelayWS: p + 3}
	for i, pr := range r.Probes {
		if pr.Name != Names()[i] || pr.Port != wantPorts[pr.Name] || pr.Proto != pr.Name.Proto() {
			t.Errorf("probe %d: %+v", i, pr)
		}
		if pr.Duration <= 0 {
			t.Errorf("%s: no duration", pr.Name)
		}
		if pr.Note == NoteConsole {
			t.Errorf("%s: console reported with consoles off", pr.Name)
		}
	}
	if want := s.target.Name; r.Address != want || r.Via != ViaDirect {
		t.Errorf("address %q via %q, want %q direct", r.Address, r.Via, want)
	}
	if n := probeOf(t, r, Relay).Note; !strings.Contains(n, "relayed") {
		t.Errorf("relay note %q", n)
	}
	if n := probeOf(t, r, RelayWS).Note; !strings.Contains(n, fmt.Sprintf("from a probe connection on TCP port %d", p+1)) {
		t.Errorf("relay-ws note %q", n)
	}
	// The stand-ins really saw the exchanges: hbbr paired the probe's
	// connection on its TCP port with the one on its WebSocket port.
	if got := strings.Count(s.hbbr.Log(), "Relay of rdctl-"); got != 1 {
		t.Errorf("hbbr paired %d relays, want 1:\n%s", got, s.hbbr.Log())
	}
}

func TestWrongKeyMismatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	r := check1(t, s.target, Options{Key: otherKey()})
	if r.OK || r.KeyStatus != KeyMismatch {
		t.Fatalf("want failed, mismatch:\n%s", dump(r))
	}
	if p := probeOf(t, r, RendezvousTCP); !p.OK || !strings.Contains(p.Note, "LICENSE_MISMATCH") {
		t.Errorf("rendezvous-tcp answered, so it is ok with the verdict in its note: %+v", p)
	}
	// hbbr runs with -k _: it drops relay requests with the wrong key.
	for _, n := range []Name{Relay, RelayWS} {
		if p := probeOf(t, r, n); p.OK || !strings.Contains(p.Error, "rejected") {
			t.Errorf("%s: %+v", n, p)
		}
	}
	if !strings.Contains(s.hbbr.Log(), "Relay authentication failed") {
		t.Error("hbbr logged no authentication failure")
	}
	for _, n := range []Name{NATTest, RendezvousUDP, RendezvousWS} {
		if p := probeOf(t, r, n); !p.OK {
			t.Errorf("%s: %+v", n, p)
		}
	}
}

func TestRelayDown(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, &hbbstest.Options{Skip: []hbbstest.Listener{hbbstest.Relay}})
	r := check1(t, s.target, Options{Key: s.hbbs.Key(), Timeout: 2 * time.Second})
	if r.OK || r.KeyStatus != KeyMatch {
		t.Fatalf("want failed with the key matching:\n%s", dump(r))
	}
	if p := probeOf(t, r, Relay); p.OK || p.Error != "connection refused" {
		t.Errorf("relay: %+v", p)
	}
	for _, p := range r.Probes {
		if p.Name != Relay && !p.OK {
			t.Errorf("%s failed: %+v", p.Name, p)
		}
	}

	// No hbbr at all: both relay probes fail.
	s2 := startServer(t, hbbstest.Options{}, nil)
	r = check1(t, s2.target, Options{Key: s2.hbbs.Key()})
	for _, n := range []Name{Relay, RelayWS} {
		if p := probeOf(t, r, n); p.OK || p.Error != "connection refused" {
			t.Errorf("%s: %+v", n, p)
		}
	}
}

// The relay probes pair across hbbr's two ports; when one side cannot be
// reached, the other is still checked on its own and the failure is
// reported against the right port.
func TestRelayPairingFailureNamesThePort(t *testing.T) {
	t.Parallel()
	for _, down := range []hbbstest.Listener{hbbstest.RelayWS, hbbstest.Relay} {
		s := startServer(t, hbbstest.Options{}, &hbbstest.Options{Skip: []hbbstest.Listener{down}})
		r := check1(t, s.target, Options{Key: s.hbbs.Key()})
		failed, passed := RelayWS, Relay
		if down == hbbstest.Relay {
			failed, passed = Relay, RelayWS
		}
		if p := probeOf(t, r, failed); p.OK || p.Error != "connection refused" {
			t.Errorf("%s down: %s: %+v", down, failed, p)
		}
		if p := probeOf(t, r, passed); !p.OK || p.Note != "relayed bytes between two probe connections" {
			t.Errorf("%s down: %s: %+v", down, passed, p)
		}
		if got := strings.Count(s.hbbr.Log(), "Relay of rdctl-"); got != 1 {
			t.Errorf("%s down: hbbr paired %d relays, want 1 (on the live port):\n%s", down, got, s.hbbr.Log())
		}
	}
}

// A host that answers nothing at all (every dial hangs, as when SYNs are
// dropped) costs one timeout: the two sides of the relay pairing dial at
// once, and each failed dial is its probe's verdict.
func TestDeadHostCostsOneTimeout(t *testing.T) {
	t.Parallel()
	target := Target{Name: "dead", Host: "dead.example.ts.net", Via: ViaTailnet,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
	const timeout = 500 * time.Millisecond
	start := time.Now()
	r := check1(t, target, Options{Key: otherKey(), Timeout: timeout})
	elapsed := time.Since(start)
	for _, p := range r.Probes {
		if p.OK || p.Error != "no answer within 500ms" {
			t.Errorf("%s: %+v", p.Name, p)
		}
	}
	if elapsed > timeout+300*time.Millisecond {
		t.Errorf("the check took %s, want about one timeout (%s)", elapsed, timeout)
	}
}

// With one slot the relay probes run one after the other, each pairing two
// connections on its own port.
func TestRelaysSplitAtConcurrencyOne(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	var dials atomic.Int32
	target := s.target
	target.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network == "tcp" {
			dials.Add(1)
		}
		return DirectDial(ctx, network, addr)
	}
	r := check1(t, target, Options{Key: s.hbbs.Key(), Concurrency: 1})
	if !r.OK {
		t.Fatalf("%s", dump(r))
	}
	for _, n := range []Name{Relay, RelayWS} {
		if p := probeOf(t, r, n); p.Note != "relayed bytes between two probe connections" {
			t.Errorf("%s: %+v", n, p)
		}
	}
	if n := dials.Load(); n != 7 {
		t.Errorf("%d TCP dials, want 7 (a pair on each relay port)", n)
	}
}

func TestUDPMutedFailsWithinTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{Mute: []hbbstest.Listener{hbbstest.RendezvousUDP}}, &hbbstest.Options{})
	const timeout = 700 * time.Millisecond
	start := time.Now()
	r := check1(t, s.target, Options{Key: s.hbbs.Key(), Timeout: timeout})
	elapsed := time.Since(start)
	p := probeOf(t, r, RendezvousUDP)
	if p.OK || p.Error != "no answer within 700ms" {
		t.Fatalf("rendezvous-udp: %+v", p)
	}
	if p.Duration < timeout-50*time.Millisecond || p.Duration > timeout+300*time.Millisecond {
		t.Errorf("rendezvous-udp took %s, want about %s", p.Duration, timeout)
	}
	if elapsed > timeout+time.Second {
		t.Errorf("check took %s", elapsed)
	}
	if r.OK {
		t.Error("target ok with a failed probe")
	}
	for _, p := range r.Probes {
		if p.Name != RendezvousUDP && !p.OK {
			t.Errorf("%s failed: %+v", p.Name, p)
		}
	}
}

func TestUDPClosedPortRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{Skip: []hbbstest.Listener{hbbstest.RendezvousUDP}}, &hbbstest.Options{})
	r := check1(t, s.target, Options{Key: s.hbbs.Key(), Probes: []Name{RendezvousUDP}})
	if p := probeOf(t, r, RendezvousUDP); p.OK || p.Error != "connection refused" || p.Duration > time.Second {
		t.Fatalf("rendezvous-udp: %+v", p)
	}
}

func TestUnenforcedToldApartWithStrict(t *testing.T) {
	t.Parallel()
	// hbbs -k "" enforces nothing; hbbr checks no key by default.
	open := startServer(t, hbbstest.Options{Key: new("")}, &hbbstest.Options{Key: new("")})
	pub := open.hbbs.FilePublicKey()
	if pub == "" {
		t.Fatal("the unenforcing hbbs should still have loaded a key pair")
	}
	if r := check1(t, open.target, Options{Key: pub}); r.KeyStatus != KeyMatch || !r.OK {
		t.Errorf("without --strict an unenforcing server looks like a match:\n%s", dump(r))
	}
	r := check1(t, open.target, Options{Key: pub, Strict: true})
	if r.KeyStatus != KeyUnenforced || !r.OK {
		t.Errorf("strict: want unenforced (and ok):\n%s", dump(r))
	}
	if !strings.Contains(probeOf(t, r, RendezvousTCP).Note, "enforces no key") {
		t.Errorf("note: %q", probeOf(t, r, RendezvousTCP).Note)
	}
	// No expected key at all: one punch with an empty key tells.
	if r := check1(t, open.target, Options{Probes: []Name{RendezvousTCP}}); r.KeyStatus != KeyUnenforced {
		t.Errorf("no key, unenforcing server:\n%s", dump(r))
	}

	enforced := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	if r := check1(t, enforced.target, Options{Key: enforced.hbbs.Key(), Strict: true}); r.KeyStatus != KeyMatch || !r.OK {
		t.Errorf("strict, enforcing server: want match:\n%s", dump(r))
	}
	r = check1(t, enforced.target, Options{Probes: []Name{RendezvousTCP}})
	if r.KeyStatus != KeyUnknown || !r.OK || !strings.Contains(probeOf(t, r, RendezvousTCP).Note, "enforces a key") {
		t.Errorf("no key, enforcing server: want unknown:\n%s", dump(r))
	}
}

func TestLoopbackConsoleRecognised(t *testing.T) {
	t.Parallel()
	console := hbbstest.LoopbackConsole
	s := startServer(t, hbbstest.Options{ConsoleRule: console}, &hbbstest.Options{ConsoleRule: console})
	r := check1(t, s.target, Options{Key: s.hbbs.Key()})
	if !r.OK || r.KeyStatus != KeyMatch {
		t.Fatalf("want ok:\n%s", dump(r))
	}
	if p := probeOf(t, r, NATTest); p.Note != NoteConsole {
		t.Errorf("nat-test: %+v", p)
	}
	if p := probeOf(t, r, Relay); !strings.HasPrefix(p.Note, NoteConsole) {
		t.Errorf("relay: %+v", p)
	}
	// WebSocket ports have no console.
	if p := probeOf(t, r, RelayWS); strings.Contains(p.Note, "console") || !p.OK {
		t.Errorf("relay-ws: %+v", p)
	}

	// A console-less port that merely closes is not taken for a console:
	// hbbr without its TCP port's console, wrong key.
	s2 := startServer(t, hbbstest.Options{ConsoleRule: console}, &hbbstest.Options{})
	r = check1(t, s2.target, Options{Key: otherKey(), Probes: []Name{Relay}})
	if p := probeOf(t, r, Relay); p.OK || !strings.Contains(p.Error, "rejected") {
		t.Errorf("relay with the wrong key and no console: %+v", p)
	}
}

func TestConsoleHelp(t *testing.T) {
	t.Parallel()
	console := hbbstest.LoopbackConsole
	s := startServer(t, hbbstest.Options{ConsoleRule: console}, &hbbstest.Options{ConsoleRule: console})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	help, err := Console(ctx, DirectDial, s.hbbs.Addrs().NAT.String(), "h")
	if err != nil || !strings.Contains(help, hbbsConsoleMarker) || strings.Contains(help, hbbrConsoleMarker) {
		t.Errorf("hbbs help %q, %v", help, err)
	}
	help, err = Console(ctx, DirectDial, s.hbbr.Addrs().Relay.String(), "h")
	if err != nil || !strings.Contains(help, hbbrConsoleMarker) || strings.Contains(help, hbbsConsoleMarker) {
		t.Errorf("hbbr help %q, %v", help, err)
	}
}

func allListeners() []hbbstest.Listener {
	return []hbbstest.Listener{hbbstest.NAT, hbbstest.Rendezvous, hbbstest.RendezvousUDP, hbbstest.RendezvousWS, hbbstest.Relay, hbbstest.RelayWS}
}

func TestBlackHoleDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	mute := allListeners()
	dead := startServer(t, hbbstest.Options{Mute: mute}, &hbbstest.Options{Mute: mute})
	good := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	good2 := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	const timeout = time.Second
	start := time.Now()
	rs, err := Check(context.Background(), []Target{dead.target, good.target, good2.target}, Options{Key: good.hbbs.Key(), Timeout: timeout})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].OK {
		t.Fatalf("the black hole passed:\n%s", dump(rs[0]))
	}
	for _, p := range rs[0].Probes {
		if p.OK || p.Error != "no answer within 1s" {
			t.Errorf("black hole %s: %+v", p.Name, p)
		}
		if p.Duration < timeout-50*time.Millisecond || p.Duration > timeout+300*time.Millisecond {
			t.Errorf("black hole %s took %s, want about %s", p.Name, p.Duration, timeout)
		}
	}
	// The stand-ins share one key directory per server; good2 has its own.
	for i, r := range rs[1:2] {
		if !r.OK {
			t.Errorf("target %d:\n%s", i+1, dump(r))
		}
		for _, p := range r.Probes {
			if p.Duration > 300*time.Millisecond {
				t.Errorf("%s of a live target took %s next to a black hole", p.Name, p.Duration)
			}
		}
	}
	if rs[2].KeyStatus != KeyMismatch || probeOf(t, rs[2], RendezvousUDP).Duration > 300*time.Millisecond {
		t.Errorf("good2 (another key):\n%s", dump(rs[2]))
	}
	// A hung hbbr costs its relay probes one timeout: the pairing across
	// its ports times out, and neither side is then probed again on its
	// own. Every other probe is bounded by one too.
	if elapsed > timeout+700*time.Millisecond {
		t.Errorf("the check took %s; the black hole should bound it at about %s", elapsed, timeout)
	}
}

func TestOverallDeadline(t *testing.T) {
	t.Parallel()
	mute := allListeners()
	dead := startServer(t, hbbstest.Options{Mute: mute}, &hbbstest.Options{Mute: mute})
	start := time.Now()
	// Concurrency 2: most probes have not started when the deadline hits.
	r := check1(t, dead.target, Options{Timeout: 5 * time.Second, Deadline: 400 * time.Millisecond, Concurrency: 2})
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
		t.Errorf("took %s with a 400ms deadline", elapsed)
	}
	for _, p := range r.Probes {
		if p.OK || p.Error != "stopped at the overall deadline" {
			t.Errorf("%s: %+v", p.Name, p)
		}
	}
}

func TestProbeSubsetInRunOrder(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, nil)
	r := check1(t, s.target, Options{Key: s.hbbs.Key(), Probes: []Name{RendezvousUDP, NATTest}})
	if len(r.Probes) != 2 || r.Probes[0].Name != NATTest || r.Probes[1].Name != RendezvousUDP {
		t.Fatalf("%s", dump(r))
	}
	// hbbr is down, but no relay probe was asked for; the key was not
	// probed, so it is unknown.
	if !r.OK || r.KeyStatus != KeyUnknown {
		t.Fatalf("%s", dump(r))
	}
}

func TestIPv6Target(t *testing.T) {
	t.Parallel()
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skip("no ::1 here:", err)
	} else {
		ln.Close()
	}
	s := startServer(t, hbbstest.Options{Bind: "::1"}, &hbbstest.Options{})
	r := check1(t, s.target, Options{Key: s.hbbs.Key()})
	if !r.OK || r.Address != fmt.Sprintf("[::1]:%d", s.target.Port) {
		t.Fatalf("%s", dump(r))
	}
}

// A target's own DialFunc (a tailnet, later) carries every probe, by name.
func TestTargetDialFunc(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	var mu sync.Mutex
	seen := map[string]int{}
	var total atomic.Int32
	target := s.target
	target.Host = "hbbs.example.ts.net" // never resolved: the dialler maps it
	target.Via = ViaTailnet
	target.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		total.Add(1)
		host, port, _ := net.SplitHostPort(addr)
		if host != "hbbs.example.ts.net" {
			return nil, fmt.Errorf("dialled %s, not the target's name", addr)
		}
		mu.Lock()
		seen[network]++
		mu.Unlock()
		return DirectDial(ctx, network, net.JoinHostPort(s.target.Host, port))
	}
	r := check1(t, target, Options{Key: s.hbbs.Key()})
	if !r.OK || r.Via != ViaTailnet || r.Address != net.JoinHostPort("hbbs.example.ts.net", fmt.Sprint(s.target.Port)) {
		t.Fatalf("%s", dump(r))
	}
	// One TCP connection per port, as a port scan makes: nat-test,
	// rendezvous-tcp, rendezvous-ws, and relay + relay-ws paired with each
	// other; udp 1.
	if seen["tcp"] != 5 || seen["udp"] != 1 {
		t.Errorf("dials by network: %v", seen)
	}
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	var inFlight, peak atomic.Int32
	target := s.target
	target.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // widen the window
		return DirectDial(ctx, network, addr)
	}
	targets := slices.Repeat([]Target{target}, 5)
	rs, err := Check(context.Background(), targets, Options{Key: s.hbbs.Key(), Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if !r.OK {
			t.Errorf("%s", dump(r))
		}
	}
	// Each probe dials at most one connection at a time.
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak of %d dials in flight, want 2–3 with concurrency 3", p)
	}
}

func TestResolveOncePerTarget(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	target := s.target
	target.Host = "rd.test"
	dns := StartDNSForTest(t, map[string][]netip.Addr{"rd.test": {netip.MustParseAddr(s.target.Host)}})
	for _, first := range []bool{false, true} {
		r := check1(t, target, Options{Key: s.hbbs.Key(), Resolver: dns, FirstAddress: first})
		if !r.OK || r.Address != s.target.Name {
			t.Fatalf("first=%v: %s", first, dump(r))
		}
	}
}

func TestCheckRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		target Target
		opts   Options
	}{
		{Target{}, Options{}},
		{Target{Host: "[::1]"}, Options{}},
		{Target{Host: "127.0.0.1", Port: 1}, Options{}},
		{Target{Host: "127.0.0.1", Port: 65534}, Options{}},
		{Target{Host: "127.0.0.1", Port: 65533}, Options{}}, // relay P+1 leaves no room for R+2
		{Target{Host: "127.0.0.1", RelayPort: 65534}, Options{}},
		{Target{Host: "127.0.0.1"}, Options{Timeout: -1}},
		{Target{Host: "127.0.0.1"}, Options{Probes: []Name{"ping"}}},
	} {
		if _, err := Check(context.Background(), []Target{tc.target}, tc.opts); err == nil {
			t.Errorf("%+v %+v: no error", tc.target, tc.opts)
		}
	}
	if err := (Target{Host: "127.0.0.1", Port: 2, RelayPort: 65533}).Validate(); err != nil {
		t.Errorf("extreme valid ports: %v", err)
	}
}

func TestParseNames(t *testing.T) {
	got, err := ParseNames(" relay-ws,nat-test , relay-ws,")
	if err != nil || !slices.Equal(got, []Name{NATTest, RelayWS}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "nat", "relay,ping"} {
		if _, err := ParseNames(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseNames(f *testing.F) {
	for _, s := range []string{"", "relay", "nat-test,relay-ws", " relay , relay ", "x,relay", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := ParseNames(s)
		if err != nil {
			return
		}
		if len(ns) == 0 {
			t.Fatal("empty list without an error")
		}
		// A subsequence of every probe's name, so in run order and
		// without duplicates.
		all, i := allNames(), 0
		for _, n := range ns {
			for i < len(all) && all[i] != n {
				i++
			}
			if i == len(all) {
				t.Fatalf("%q: %v is not in run order or not a probe", s, ns)
			}
			i++
		}
	})
}

// BenchmarkCheck runs every probe against 50 stand-in pairs in this
// process (server and client share the CPU, as in scripts/bench-check).
func BenchmarkCheck(b *testing.B) {
	var targets []Target
	var key string
	dir := b.TempDir()
	for i := range 50 {
		bind := fmt.Sprintf("127.0.%d.%d", 230+i/250, 2+i%250)
		p, err := hbbstest.FreeBasePort(bind)
		if err != nil {
			b.Fatal(err)
		}
		o := hbbstest.Options{Dir: dir, Bind: bind, Port: p, ConsoleRule: hbbstest.NeverConsole}
		s, err := hbbstest.StartHBBS(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		o.Port, o.Key = p+1, new("_")
		r, err := hbbstest.StartHBBR(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		key = s.Key()
		targets = append(targets, Target{Host: bind, Port: p})
	}
	b.ResetTimer()
	for range b.N {
		rs, err := Check(context.Background(), targets, Options{Key: key, Concurrency: 64})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if !r.OK {
				b.Fatal(dump(r))
			}
		}
	}
	b.ReportMetric(float64(b.N*len(targets)*len(Names()))/b.Elapsed().Seconds(), "probes/s")
}
