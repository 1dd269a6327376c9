package doctor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/hbbstest"
)

// Several relays: one check per relay; one that does not resolve fails
// with what hbbs does about it, the others pass.
func TestSeveralRelaysResolve(t *testing.T) {
	r := dnsServer(t, map[string][4]byte{"a.example.com": {192, 0, 2, 10}})
	rec := rdctlRecord()
	rec.Relay = "a.example.com:21117,gone.example.com:21117,192.0.2.7:21117"
	in := Input{Record: rec, Resolver: r, ResolveTimeout: 2 * time.Second}
	var cs checks
	in.relayCheck(context.Background(), &cs)
	if len(cs) != 3 {
		t.Fatalf("%d checks, want one per relay: %+v", len(cs), cs)
	}
	if !cs[0].OK || !cs[2].OK {
		t.Errorf("resolving relays: %+v", cs)
	}
	c := cs[1]
	if c.OK || c.ID != "relay-resolves" || !strings.Contains(c.Message, "gone.example.com does not resolve") ||
		!strings.Contains(c.Message, "Invalid relay-servers") || !strings.Contains(c.Message, "the other relays are handed out") || c.Hint == "" {
		t.Errorf("unresolvable relay: %+v", c)
	}
}

// One relay down, one up (stand-ins on loopback): relay-reachable fails
// for the dead one only, with a hint.
func TestRelayReachable(t *testing.T) {
	dir := t.TempDir()
	up := hbbstest.StartPair(t, hbbstest.Options{Dir: dir}, &hbbstest.Options{})
	down := hbbstest.StartPair(t, hbbstest.Options{Dir: dir}, nil)
	upRelay := fmt.Sprintf("%s:%d", up.Bind, up.Port+1)
	downRelay := fmt.Sprintf("%s:%d", down.Bind, down.Port+1)
	rec := rdctlRecord()
	rec.Relay = upRelay + "," + downRelay
	rec.WorkingDir = dir // the stand-ins' key: hbbr enforces it
	in := Input{Record: rec, ResolveTimeout: 2 * time.Second}
	var cs checks
	in.relayReachable(context.Background(), &cs)
	if len(cs) != 2 {
		t.Fatalf("%d checks: %+v", len(cs), cs)
	}
	if !cs[0].OK || !strings.Contains(cs[0].Message, upRelay) {
		t.Errorf("live relay: %+v", cs[0])
	}
	if c := cs[1]; c.OK || c.ID != "relay-reachable" || !strings.Contains(c.Message, downRelay) ||
		!strings.Contains(c.Message, "connection refused") || !strings.Contains(c.Message, "1 relayed session in 2") ||
		!strings.Contains(c.Hint, "rdctl check --relay "+downRelay) {
		t.Errorf("dead relay: %+v", c)
	}
	// The prober can be replaced, and a record without relays probes none.
	var asked []deploy.HostPort
	in.RelayProber = func(_ context.Context, hp deploy.HostPort, _ string) error { asked = append(asked, hp); return nil }
	cs = nil
	in.relayReachable(context.Background(), &cs)
	if len(asked) != 2 || len(cs) != 2 || !cs[1].OK {
		t.Errorf("asked %v: %+v", asked, cs)
	}
	rec.Relay, cs = "", nil
	in.relayReachable(context.Background(), &cs)
	if len(cs) != 0 {
		t.Errorf("no relay: %+v", cs)
	}
}
