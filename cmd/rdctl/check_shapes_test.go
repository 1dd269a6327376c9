package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// Two relays, one of them dead: its probes fail, the other's pass, exit 1,
// and every relay probe is named after its relay in text and JSON.
func TestCheckSeveralRelaysOneDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startStandins(t, dir, hbbstest.Options{}, &hbbstest.Options{})
	dead := startStandins(t, dir, hbbstest.Options{}, nil)
	good, bad := fmt.Sprintf("%s:%d", a.bind, a.port+1), fmt.Sprintf("%s:%d", dead.bind, dead.port+1)
	code, stdout, stderr := runInProcess(t, "check", a.target, "--key", a.hbbs.Key(), "--relay", good+","+bad, "--json")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	out := decodeCheck(t, stdout)
	if len(out.Targets) != 1 {
		t.Fatalf("%d targets", len(out.Targets))
	}
	tr := out.Targets[0]
	for _, relay := range []string{good, bad} {
		for _, n := range []string{"relay", "relay-ws"} {
			p := probeNamed(t, tr, n+"["+relay+"]")
			if p.OK != (relay == good) || p.Relay != relay {
				t.Errorf("%s[%s]: %+v", n, relay, p)
			}
		}
	}
	for _, n := range []string{"nat-test", "rendezvous-tcp", "rendezvous-udp", "rendezvous-ws"} {
		if p := probeNamed(t, tr, n); !p.OK {
			t.Errorf("%s: %+v", n, p)
		}
	}
	// Repeated --relay is the same list; the text names the relays too.
	code, stdout, stderr = runInProcess(t, "check", a.target, "--key", a.hbbs.Key(), "--relay", good, "--relay", bad)
	if code != 1 || !strings.Contains(stdout, "relay["+bad+"]") || !strings.Contains(stdout, "relay-ws["+good+"]") ||
		!strings.Contains(stdout, "6 of 8 probes passed") || !strings.Contains(stderr, "no health check") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// A bad list is bad input.
	for _, list := range []string{good + ",," + bad, good + "," + good, "a b"} {
		if code, _, stderr := runInProcess(t, "check", a.target, "--key", a.hbbs.Key(), "--relay", list); code != 2 {
			t.Errorf("--relay %q: exit %d %s", list, code, stderr)
		}
	}
}

// A name with two addresses, one answering: a row per address, the dead
// one failing with a hint, exit 1; --first-address probes one.
func TestCheckEveryAddress(t *testing.T) {
	t.Parallel()
	s := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{})
	live := netip.MustParseAddr(s.bind)
	dead := netip.MustParseAddr(hbbstest.RandomLoopback())
	for dead == live {
		dead = netip.MustParseAddr(hbbstest.RandomLoopback())
	}
	dns := hbbstest.StartDNS(t, map[string][]netip.Addr{"rd.test": {live, dead}})
	target := fmt.Sprintf("rd.test:%d", s.port)
	start := time.Now()
	code, stdout, stderr := runInProcess(t, "check", target, "--key", s.hbbs.Key(), "--dns-server", dns, "--json")
	t.Logf("two addresses checked in %s", time.Since(start))
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	out := decodeCheck(t, stdout)
	if len(out.Targets) != 2 {
		t.Fatalf("%d rows, want one per address:\n%s", len(out.Targets), stdout)
	}
	for _, tr := range out.Targets {
		wantOK := tr.Address == fmt.Sprintf("%s:%d", live, s.port)
		if tr.Target != target || tr.OK != wantOK {
			t.Errorf("row %+v", tr)
		}
	}
	code, stdout, stderr = runInProcess(t, "check", target, "--key", s.hbbs.Key(), "--dns-server", dns)
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("%s:%d does not reach the server", dead, s.port)) ||
		!strings.Contains(stderr, "remove the DNS record") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// --first-address: one row.
	code, stdout, stderr = runInProcess(t, "check", target, "--key", s.hbbs.Key(), "--dns-server", dns, "--first-address", "--json")
	if out := decodeCheck(t, stdout); len(out.Targets) != 1 || code == 2 {
		t.Fatalf("exit %d, %d rows\n%s\n%s", code, len(out.Targets), stdout, stderr)
	}
	// An IP literal is one address.
	code, stdout, _ = runInProcess(t, "check", s.target, "--key", s.hbbs.Key(), "--dns-server", dns, "--json")
	if out := decodeCheck(t, stdout); code != 0 || len(out.Targets) != 1 {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runInProcess(t, "check", target, "--dns-server", "dns.example.com"); code != 2 {
		t.Errorf("--dns-server by name: exit %d %s", code, stderr)
	}
}

// A record with two relays (install --relay a,b): check probes both.
func TestCheckRecordRelays(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startStandins(t, dir, hbbstest.Options{}, &hbbstest.Options{})
	b := startStandins(t, dir, hbbstest.Options{}, &hbbstest.Options{})
	root := filepath.Join(t.TempDir(), "img")
	relays := fmt.Sprintf("%s:%d,%s:%d", a.bind, a.port+1, b.bind, b.port+1)
	if code, _, stderr := runInProcess(t, "-q", "install", "systemd", "--root", root, "--no-start", "--relay", relays, "--id-host", a.target); code != 0 {
		t.Fatalf("install: exit %d: %s", code, stderr)
	}
	rec, err := os.ReadFile(filepath.Join(root, "etc/rdctl/rdctl.toml"))
	if err != nil || !strings.Contains(string(rec), "relay = '"+relays+"'") {
		t.Fatalf("record: %v\n%s", err, rec)
	}
	code, stdout, stderr := runInProcess(t, "--root", root, "check", "--key", a.hbbs.Key(), "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := decodeCheck(t, stdout); len(out.Targets[0].Probes) != 8 {
		t.Fatalf("%s", stdout)
	}
}

// A name with two addresses (one answering) and two relays named by
// address: two rows of eight probes; the dead address fails its four
// rendezvous probes, and both relays pass at either row (they are probed
// at their own addresses). The time is logged (go test -v), not judged.
func TestCheckTwoRelaysTwoAddresses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startStandins(t, dir, hbbstest.Options{}, &hbbstest.Options{})
	r2 := startStandins(t, dir, hbbstest.Options{}, &hbbstest.Options{})
	dead := netip.MustParseAddr(hbbstest.RandomLoopback())
	for dead.String() == s.bind {
		dead = netip.MustParseAddr(hbbstest.RandomLoopback())
	}
	dns := hbbstest.StartDNS(t, map[string][]netip.Addr{"rd.test": {netip.MustParseAddr(s.bind), dead}})
	liveRelay, otherRelay := fmt.Sprintf("%s:%d", s.bind, s.port+1), fmt.Sprintf("%s:%d", r2.bind, r2.port+1)
	start := time.Now()
	code, stdout, stderr := runInProcess(t, "check", fmt.Sprintf("rd.test:%d", s.port), "--key", s.hbbs.Key(), "--dns-server", dns,
		"--relay", liveRelay+","+otherRelay, "--json")
	t.Logf("2 addresses x 2 relays checked in %s", time.Since(start))
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	out := decodeCheck(t, stdout)
	if len(out.Targets) != 2 {
		t.Fatalf("%d rows", len(out.Targets))
	}
	for _, tr := range out.Targets {
		if len(tr.Probes) != 8 {
			t.Errorf("%s: %d probes", tr.Address, len(tr.Probes))
		}
		live := tr.Address == fmt.Sprintf("%s:%d", s.bind, s.port)
		if tr.OK != live {
			t.Errorf("%s ok=%v", tr.Address, tr.OK)
		}
		for _, p := range tr.Probes {
			// Relays have their own addresses: both pass at either row.
			if want := live || p.Relay != ""; p.OK != want {
				t.Errorf("%s %s ok=%v, want %v: %s", tr.Address, p.Name, p.OK, want, p.Error)
			}
		}
	}
}
