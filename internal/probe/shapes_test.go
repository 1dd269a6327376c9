package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// hbbs -r a,b hands relays out in turn with no health check: each relay
// gets its own probes, so a dead one fails its own and no other.
func TestSeveralRelaysOneDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startServer(t, hbbstest.Options{Dir: dir}, &hbbstest.Options{})
	b := startServer(t, hbbstest.Options{Dir: dir}, &hbbstest.Options{})
	dead := startServer(t, hbbstest.Options{Dir: dir}, nil) // no hbbr behind its relay port
	target := a.target
	target.Relays = []Endpoint{
		{Host: a.target.Host, Port: a.target.Port + 1},
		{Host: b.target.Host, Port: b.target.Port + 1},
		{Host: dead.target.Host, Port: dead.target.Port + 1},
	}
	r := check1(t, target, Options{Key: a.hbbs.Key(), Timeout: 2 * time.Second})
	if r.OK {
		t.Fatalf("want failed:\n%s", dump(r))
	}
	if len(r.Probes) != len(Names())+4 || len(r.Relays) != 3 {
		t.Fatalf("want %d probes and 3 relays, got %d, %v:\n%s", len(Names())+4, len(r.Probes), r.Relays, dump(r))
	}
	deadLabel := fmt.Sprintf("[%s:%d]", dead.target.Host, dead.target.Port+1)
	seen := map[string]bool{}
	for _, p := range r.Probes {
		label := r.ProbeLabel(p)
		seen[label] = true
		wantOK := !strings.HasSuffix(label, deadLabel)
		if p.OK != wantOK {
			t.Errorf("%s ok=%v, want %v: %+v", label, p.OK, wantOK, p)
		}
		if !wantOK && p.Error != "connection refused" {
			t.Errorf("%s: error %q", label, p.Error)
		}
		if (p.Name == Relay || p.Name == RelayWS) && r.RelayOf(p) == "" {
			t.Errorf("%s: no relay", label)
		}
	}
	for _, e := range target.Relays {
		for _, n := range []Name{Relay, RelayWS} {
			if l := fmt.Sprintf("%s[%s]", n, e); !seen[l] {
				t.Errorf("no probe %s in %v", l, seen)
			}
		}
	}
	if got := strings.Count(b.hbbr.Log(), "Relay of rdctl-"); got != 1 {
		t.Errorf("relay b paired %d relays, want 1:\n%s", got, b.hbbr.Log())
	}

	// One relay keeps the plain names.
	one := a.target
	one.Relays = target.Relays[:1]
	r = check1(t, one, Options{Key: a.hbbs.Key()})
	if !r.OK || r.Relays != nil || r.ProbeLabel(probeOf(t, r, Relay)) != "relay" {
		t.Fatalf("one relay:\n%s", dump(r))
	}
}

// A name with an A record that reaches the server and one that does not:
// every address is probed and reported, unless FirstAddress.
func TestEveryAddressOfAName(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{}, &hbbstest.Options{})
	live := netip.MustParseAddr(s.target.Host)
	dead := netip.MustParseAddr(hbbstest.RandomLoopback())
	for dead == live {
		dead = netip.MustParseAddr(hbbstest.RandomLoopback())
	}
	dns := StartDNSForTest(t, map[string][]netip.Addr{"rd.test": {live, dead}})
	target := Target{Name: "rd.test", Host: "rd.test", Port: s.target.Port}
	rs, err := Check(context.Background(), []Target{target}, Options{Key: s.hbbs.Key(), Resolver: dns, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want one per address", len(rs))
	}
	port := fmt.Sprint(s.target.Port)
	for _, r := range rs {
		switch r.Address {
		case net.JoinHostPort(live.String(), port):
			if !r.OK {
				t.Errorf("live address failed:\n%s", dump(r))
			}
		case net.JoinHostPort(dead.String(), port):
			if r.OK || r.KeyStatus != KeyUnknown {
				t.Errorf("dead address passed:\n%s", dump(r))
			}
			for _, p := range r.Probes {
				if p.OK {
					t.Errorf("dead address: %s passed", p.Name)
				}
			}
		default:
			t.Errorf("unexpected address %s", r.Address)
		}
		if r.Target.Name != "rd.test" {
			t.Errorf("target %q", r.Target.Name)
		}
	}

	rs, err = Check(context.Background(), []Target{target}, Options{Key: s.hbbs.Key(), Resolver: dns, FirstAddress: true, Timeout: 2 * time.Second})
	if err != nil || len(rs) != 1 {
		t.Fatalf("--first-address: %d results, %v", len(rs), err)
	}

	// An unknown name is one failed result, every probe saying why.
	rs, err = Check(context.Background(), []Target{{Host: "nx.test", Port: s.target.Port}}, Options{Resolver: dns, Timeout: 2 * time.Second})
	if err != nil || len(rs) != 1 || rs[0].OK || !strings.Contains(rs[0].Probes[0].Error, "cannot resolve nx.test") {
		t.Fatalf("unknown name: %v %+v", err, rs)
	}
}

// At most MaxAddresses addresses of one name are probed.
func TestAddressesBounded(t *testing.T) {
	t.Parallel()
	var addrs []netip.Addr
	for i := range MaxAddresses + 4 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{127, 0, 9, byte(i + 1)}))
	}
	dns := StartDNSForTest(t, map[string][]netip.Addr{"many.test": addrs})
	rs, err := Check(context.Background(), []Target{{Host: "many.test", Port: 9}},
		Options{Resolver: dns, Probes: []Name{RendezvousTCP}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != MaxAddresses {
		t.Fatalf("%d results, want %d", len(rs), MaxAddresses)
	}
}

// StartDNSForTest is a resolver asking a DNS server on loopback that
// knows only records.
func StartDNSForTest(t *testing.T, records map[string][]netip.Addr) Resolver {
	return ResolverAt(hbbstest.StartDNS(t, records))
}
