package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/adopt"
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

// doctor lints the settings the units and the working directory's .env
// give the servers; each lint reports ok when it finds nothing.
func TestSettingsLintsUnits(t *testing.T) {
	root, rec := image(t)
	cs := run(root, rec)
	for _, id := range settingLints {
		if c, ok := byID(cs, id); !ok || !c.OK {
			t.Errorf("%s on a fresh image: %+v", id, c)
		}
	}
	writeFile(t, root, "/etc/systemd/system/hbbr.service.d/limits.conf", "[Service]\nEnvironment=LIMIT_SPEED=400Mb/s\nEnvironmentFile=/etc/rustdesk/hbbr.env\n", 0o644)
	writeFile(t, root, "/etc/rustdesk/hbbr.env", "TOTAL_BANDWIDTH=2000\n", 0o666)
	writeFile(t, root, rec.WorkingDir+"/.env", "RUST_LOG=debug\n", 0o644)
	cs = run(root, rec)
	c := mustFail(t, cs, adopt.FindingSettingBandwidth, false, "LIMIT_SPEED=400Mb/s in Environment= in")
	if c.Hint != "write LIMIT_SPEED=400 (Mb/s), then restart hbbr" {
		t.Errorf("hint %q", c.Hint)
	}
	mustFail(t, cs, adopt.FindingSettingRustLog, false, "has no effect")
	mustFail(t, cs, adopt.FindingEnvFileUntrusted, false, "/etc/rustdesk/hbbr.env (mode 0666: writable by group or others) was not read")
	if c, _ := byID(cs, adopt.FindingSettingAlwaysUseRelay); !c.OK {
		t.Errorf("always-use-relay: %+v", c)
	}
	// The same file, root's (or the caller's) and not writable by others,
	// is read: its value is a number, so nothing more fires.
	noErr(t, os.Chmod(filepath.Join(root, "/etc/rustdesk/hbbr.env"), 0o644))
	cs = run(root, rec)
	if c, _ := byID(cs, adopt.FindingEnvFileUntrusted); !c.OK {
		t.Errorf("trusted file: %+v", c)
	}
}

// A compose stack: environment: in the recorded compose file and the data
// directory's .env.
func TestSettingsLintsCompose(t *testing.T) {
	root := t.TempDir()
	dir := "/opt/rustdesk-server"
	writeFile(t, root, dir+"/compose.yaml", `name: rustdesk-server
services:
  hbbs:
    image: rustdesk/rustdesk-server:1.1.16
    command: ["hbbs", "-r", "127.0.0.1:21117"]
    environment:
      ALWAYS_USE_RELAY: "true"
  hbbr:
    image: rustdesk/rustdesk-server:1.1.16
    command: ["hbbr", "-k", "_"]
    environment:
      SINGLE_BANDWIDTH: "64 Mbit"
`, 0o644)
	writeFile(t, root, dir+"/data/.env", "RUST_LOG=debug\n", 0o644)
	rec := &deploy.Record{Format: 1, Backend: deploy.BackendCompose, Origin: "compose", IDHost: "rd.example.com", Relay: "127.0.0.1:21117",
		WorkingDir: dir + "/data", Compose: &deploy.ComposeRecord{Dir: dir, Image: "rustdesk/rustdesk-server:1.1.16", Network: "host", Project: "rustdesk-server", MountTarget: "/root"}}
	in := Input{Root: root, Record: rec}
	var cs checks
	in.composeSettingsChecks(&cs)
	mustFail(t, cs, adopt.FindingSettingAlwaysUseRelay, false, "ALWAYS_USE_RELAY=true in environment: of hbbs")
	mustFail(t, cs, adopt.FindingSettingBandwidth, false, "SINGLE_BANDWIDTH=64 Mbit")
	mustFail(t, cs, adopt.FindingSettingRustLog, false, dir+"/data/.env")
	mustFail(t, cs, adopt.FindingSettingRelayAddress, false, "loopback address")
}
