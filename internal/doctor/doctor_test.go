package doctor

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/systemd"
)

func me() keys.Owner { return keys.Owner{UID: os.Getuid(), GID: os.Getgid()} }

func rdctlRecord() *deploy.Record {
	return &deploy.Record{Format: 1, Backend: "systemd", Origin: "rdctl", IDHost: "rd.example.com", Relay: "rd.example.com:21117",
		WorkingDir: deploy.DefaultWorkingDir, BinDir: deploy.DefaultBinDir, ServiceUser: "rustdesk",
		HBBSUnit: "hbbs.service", HBBRUnit: "hbbr.service", HBBREnforcesKey: true}
}

// image builds an rdctl image tree the way `rdctl install systemd --root`
// does, with the key files owned by the running user, who is also the
// image's service user (so the test needs no root).
func image(t *testing.T) (string, *deploy.Record) {
	t.Helper()
	root := t.TempDir()
	rec := rdctlRecord()
	p, _, err := systemd.InstallPlan(systemd.InstallOptions{Root: root, Record: rec,
		RecordPath: filepath.Join(root, deploy.DefaultRecordPath), KeyOwner: me()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(false); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "/etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nrustdesk:x:%d:%d::/var/lib/rustdesk:/usr/sbin/nologin\n", me().UID, me().GID), 0o644)
	return root, rec
}

// noErr stops the test on a setup step's error, so that a step that failed
// cannot pass for the behaviour under test.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, root, p, data string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	noErr(t, os.Chmod(full, mode))
}

func input(root string, rec *deploy.Record) Input {
	return Input{Root: root, Record: rec, Accounts: Accounts{Root: root}, BackupOwner: me()}
}

func run(root string, rec *deploy.Record) []Check {
	return Run(context.Background(), input(root, rec))
}

// fix applies the fixes of cs as rdctl doctor --fix does: FixPlan run for
// real, reported as doctor's "fixed".
func fix(root string, rec *deploy.Record, cs []Check) []FixResult {
	p := &plan.Plan{}
	p.Add(FixPlan(input(root, rec), cs)...)
	rs, err := p.Run(false)
	return Fixed(plan.NewReport(rs, false), err)
}

func byID(cs []Check, id string) (Check, bool) {
	for _, c := range cs {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

func mustFail(t *testing.T, cs []Check, id string, fixable bool, contains string) Check {
	t.Helper()
	c, ok := byID(cs, id)
	if !ok {
		t.Fatalf("no check %q in %v", id, ids(cs))
	}
	if c.OK || c.Fixable != fixable || !strings.Contains(c.Message, contains) {
		t.Errorf("%s: ok=%v fixable=%v %q; want failed, fixable=%v, containing %q", id, c.OK, c.Fixable, c.Message, fixable, contains)
	}
	return c
}

func ids(cs []Check) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func problems(cs []Check) []string {
	var out []string
	for _, c := range cs {
		if c.Problem() {
			out = append(out, c.ID+": "+c.Message)
		}
	}
	return out
}

func TestHealthyImage(t *testing.T) {
	root, rec := image(t)
	cs := run(root, rec)
	if p := problems(cs); len(p) > 0 {
		t.Fatalf("a fresh image has problems:\n%s", strings.Join(p, "\n"))
	}
	for _, id := range []string{"working-dir", "secret-key", "secret-mode", "secret-owner", "public-key-file", "working-dir-mode",
		"backups-private", "staged-private", "rotation-journal", "duplicate-keys", "units-installed", "units-as-written",
		"record-matches-units", "service-user", "hbbr-enforces-key", "relay-resolves", "units-running", "ports-listening"} {
		if _, ok := byID(cs, id); !ok {
			t.Errorf("check %s missing", id)
		}
	}
	// nothing live is looked at in an image
	for _, id := range []string{"units-running", "ports-listening", "relay-resolves"} {
		if c, _ := byID(cs, id); !c.Skipped {
			t.Errorf("%s ran under --root", id)
		}
	}
}

// The breakages the guide's troubleshooting table lists, fixed and checked
// again; the secret's bytes never change.
func TestFixRepairsWhatIsSafe(t *testing.T) {
	root, rec := image(t)
	wd := filepath.Join(root, rec.WorkingDir)
	secret, err := os.ReadFile(filepath.Join(wd, keys.SecretFile))
	noErr(t, err)
	other, _ := keys.Generate(nil)
	noErr(t, os.Chmod(filepath.Join(wd, keys.SecretFile), 0o644))
	writeFile(t, wd, keys.PublicFile, other.PublicBase64(), 0o644)
	sd := filepath.Join(root, deploy.StateDirFor(rec.WorkingDir))
	noErr(t, os.MkdirAll(filepath.Join(sd, "backups"), 0o700))
	noErr(t, os.Chmod(filepath.Join(sd, "backups"), 0o755))
	noErr(t, os.Chmod(wd, 0o757))

	cs := run(root, rec)
	mustFail(t, cs, "secret-mode", true, "other local users can read")
	mustFail(t, cs, "public-key-file", true, "Key mismatch")
	mustFail(t, cs, "backups-private", true, "mode 0755")
	mustFail(t, cs, "working-dir-mode", true, "0757")

	results := fix(root, rec, cs)
	if len(results) != 4 {
		t.Fatalf("fixes: %+v", results)
	}
	for _, r := range results {
		if r.Error != "" || r.Change == "" {
			t.Errorf("fix %s: change %q error %q", r.ID, r.Change, r.Error)
		}
	}
	if p := problems(run(root, rec)); len(p) > 0 {
		t.Fatalf("problems after fixing:\n%s", strings.Join(p, "\n"))
	}
	after, err := os.ReadFile(filepath.Join(wd, keys.SecretFile))
	noErr(t, err)
	if !bytes.Equal(after, secret) {
		t.Fatal("the secret key changed")
	}
	st, _ := inspect(wd)
	if !st.PubMatches || st.SecretInfo.Mode.Perm() != 0o600 {
		t.Errorf("after fix: pub matches %v, mode %04o", st.PubMatches, st.SecretInfo.Mode.Perm())
	}
	// a missing .pub is rewritten too
	noErr(t, os.Remove(filepath.Join(wd, keys.PublicFile)))
	cs = run(root, rec)
	mustFail(t, cs, "public-key-file", true, "there is no")
	fix(root, rec, cs)
	if st, _ := inspect(wd); !st.PubMatches {
		t.Error(".pub not restored")
	}
}

// Owners need root to change.
func TestFixOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	root, rec := image(t)
	wd := filepath.Join(root, rec.WorkingDir)
	noErr(t, os.Chown(filepath.Join(wd, keys.SecretFile), 4321, 4321))
	sd := filepath.Join(root, deploy.StateDirFor(rec.WorkingDir))
	noErr(t, os.MkdirAll(filepath.Join(sd, "staged"), 0o700))
	noErr(t, os.Chown(filepath.Join(sd, "staged"), 4321, 4321))
	cs := run(root, rec)
	mustFail(t, cs, "secret-owner", true, "owned by 4321:4321")
	mustFail(t, cs, "staged-private", true, "owner 4321:4321")
	for _, r := range fix(root, rec, cs) {
		if r.Error != "" {
			t.Errorf("%s: %s", r.ID, r.Error)
		}
	}
	if p := problems(run(root, rec)); len(p) > 0 {
		t.Fatalf("problems after fixing:\n%s", strings.Join(p, "\n"))
	}
	// in an image, root-owned keys are what install leaves for systemd
	noErr(t, os.Chown(filepath.Join(wd, keys.SecretFile), 0, 0))
	noErr(t, os.Chown(filepath.Join(wd, keys.PublicFile), 0, 0))
	if c, _ := byID(run(root, rec), "secret-owner"); !c.OK {
		t.Errorf("root-owned key in an image: %s", c.Message)
	}
}

func TestFixRefusesSymlink(t *testing.T) {
	root, rec := image(t)
	wd := filepath.Join(root, rec.WorkingDir)
	outside := filepath.Join(t.TempDir(), "victim")
	writeFile(t, "/", outside, "not a key", 0o644)
	noErr(t, os.Remove(filepath.Join(wd, keys.PublicFile)))
	noErr(t, os.Symlink(outside, filepath.Join(wd, keys.PublicFile)))
	cs := run(root, rec)
	mustFail(t, cs, "public-key-file", true, "unusable")
	rs := fix(root, rec, cs)
	if len(rs) != 1 || !strings.Contains(rs[0].Error, "symbolic link") {
		t.Errorf("fix through a symlink: %+v", rs)
	}
	if data, _ := os.ReadFile(outside); string(data) != "not a key" {
		t.Fatal("the symlink's target was written")
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o644 {
		t.Fatal("the symlink's target was chmod'ed")
	}
}

func TestDuplicateKeys(t *testing.T) {
	root, rec := image(t)
	other, _ := keys.Generate(nil)
	writeFile(t, root, "/root/id_ed25519", string(other.SecretFileBytes()), 0o600)
	c := mustFail(t, run(root, rec), "duplicate-keys", false, "/root ("+other.Fingerprint()+")")
	if !strings.Contains(c.Message, "served one is in /var/lib/rustdesk") {
		t.Error(c.Message)
	}
	// a copy of the served key is a different warning
	noErr(t, os.Remove(filepath.Join(root, "/root/id_ed25519")))
	served, err := os.ReadFile(filepath.Join(root, rec.WorkingDir, keys.SecretFile))
	noErr(t, err)
	writeFile(t, root, "/data/id_ed25519", string(served), 0o600)
	mustFail(t, run(root, rec), "duplicate-keys", false, "copies of the served secret key lie in /data")
}

// A Debian install adopted as is: root, hbbr open, and no key files yet.
func TestDebianUnits(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "/lib/systemd/system/rustdesk-hbbs.service",
		"[Service]\nExecStart=/usr/bin/hbbs\nWorkingDirectory=/var/lib/rustdesk-server/\nUser=\n", 0o644)
	writeFile(t, root, "/lib/systemd/system/rustdesk-hbbr.service",
		"[Service]\nExecStart=/usr/bin/hbbr\nWorkingDirectory=/var/lib/rustdesk-server/\nUser=\n", 0o644)
	noErr(t, os.MkdirAll(filepath.Join(root, "/var/lib/rustdesk-server"), 0o755))
	rec := &deploy.Record{Format: 1, Backend: "systemd", Origin: "debian", IDHost: "203.0.113.9", Relay: "203.0.113.9:21117",
		WorkingDir: "/var/lib/rustdesk-server", ServiceUser: "root", HBBSUnit: "rustdesk-hbbs.service", HBBRUnit: "rustdesk-hbbr.service"}
	cs := run(root, rec)
	mustFail(t, cs, "service-user", false, "rustdesk-hbbs.service and rustdesk-hbbr.service run as root")
	mustFail(t, cs, "hbbr-enforces-key", false, "anyone can relay")
	mustFail(t, cs, "secret-key", false, "there is no id_ed25519")
	mustFail(t, cs, "purge-deletes-keys", false, "apt purge")
	if c, _ := byID(cs, "relay-resolves"); !c.OK || c.Skipped {
		t.Errorf("an IP relay: %+v", c)
	}
	if _, ok := byID(cs, "units-as-written"); ok {
		t.Error("units-as-written checked on units rdctl did not write")
	}
	// the record and the units disagree
	rec.WorkingDir = "/srv/elsewhere"
	mustFail(t, run(root, rec), "record-matches-units", false, "rotate would change a key hbbs does not serve")
}

func TestUnitsAsWritten(t *testing.T) {
	root, rec := image(t)
	p := filepath.Join(root, "/etc/systemd/system/hbbr.service")
	data, err := os.ReadFile(p)
	noErr(t, err)
	noErr(t, os.WriteFile(p, bytes.Replace(data, []byte(" -k _"), nil, 1), 0o644))
	cs := run(root, rec)
	mustFail(t, cs, "units-as-written", false, "/etc/systemd/system/hbbr.service differs")
	mustFail(t, cs, "hbbr-enforces-key", false, "anyone can relay")
	writeFile(t, root, "/etc/systemd/system/hbbs.service.d/override.conf", "[Service]\nUser=\n", 0o644)
	cs = run(root, rec)
	mustFail(t, cs, "units-as-written", false, "override.conf")
	mustFail(t, cs, "service-user", false, "hbbs.service runs as root")
}

func TestRotationJournal(t *testing.T) {
	root, rec := image(t)
	sd := deploy.StateDirFor(rec.WorkingDir)
	noErr(t, os.MkdirAll(filepath.Join(root, sd), 0o700))
	writeFile(t, root, filepath.Join(sd, rotate.JournalFile), "{}", 0o600)
	mustFail(t, run(root, rec), "rotation-journal", false, "rdctl rotate --resume")

	// One an older rdctl left in the working directory is reported too;
	// the next mutating run removes it without resuming it.
	root, rec = image(t)
	writeFile(t, root, filepath.Join(rec.WorkingDir, rotate.LegacyJournalFile), "{}", 0o600)
	mustFail(t, run(root, rec), "rotation-journal", false, "removes it, without resuming it")
}

func TestLiveUnitAndPortChecks(t *testing.T) {
	rec := rdctlRecord()
	in := Input{Record: rec, Units: []systemd.UnitState{
		{Name: "hbbs.service", ActiveState: "active", SubState: "running", NRestarts: 3},
		{Name: "hbbr.service", ActiveState: "failed", SubState: "failed", Result: "exit-code"},
	}, Listeners: []Listener{{Proto: "tcp", Port: 21116}, {Proto: "udp", Port: 21117}}}
	var cs checks
	in.liveChecks(&cs)
	mustFail(t, cs, "units-running", false, "hbbr.service is failed/failed (exit-code)")
	mustFail(t, cs, "units-restarting", false, "hbbs.service restarted 3 times")
	c := mustFail(t, cs, "ports-listening", false, "tcp 21115")
	if strings.Contains(c.Message, "tcp 21116") || !strings.Contains(c.Message, "udp 21116") {
		t.Errorf("ports: %s", c.Message)
	}
}

// dnsServer answers A queries for known names on a loopback UDP socket and
// NXDOMAIN for everything else; the resolver under test dials only it.
func dnsServer(t *testing.T, known map[string][4]byte) *net.Resolver {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if n < 17 {
				continue
			}
			// the question: labels, then qtype and qclass
			i, name := 12, []string{}
			for i < n && q[i] != 0 {
				l := int(q[i])
				if i+1+l > n {
					break
				}
				name = append(name, string(q[i+1:i+1+l]))
				i += 1 + l
			}
			if i+5 > n {
				continue
			}
			qtype := int(q[i+1])<<8 | int(q[i+2])
			question := q[12 : i+5]
			resp := append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, question...)
			ip, ok := known[strings.Join(name, ".")]
			switch {
			case !ok:
				resp[3] = 0x83 // NXDOMAIN
			case qtype == 1:
				resp[7] = 1
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ip[0], ip[1], ip[2], ip[3])
			}
			pc.WriteTo(resp, from)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func TestRelayResolves(t *testing.T) {
	r := dnsServer(t, map[string][4]byte{"rd.example.com": {192, 0, 2, 10}})
	rec := rdctlRecord()
	in := Input{Record: rec, Resolver: r, ResolveTimeout: 2 * time.Second}
	var cs checks
	in.relayCheck(context.Background(), &cs)
	if !cs[0].OK || !strings.Contains(cs[0].Message, "192.0.2.10") {
		t.Errorf("resolving relay: %+v", cs[0])
	}
	rec.Relay = "gone.example.com:21117"
	cs = nil
	in.relayCheck(context.Background(), &cs)
	mustFail(t, cs, "relay-resolves", false, "gone.example.com does not resolve")
	// an IP literal is never looked up; in an image nothing is
	rec.Relay = "[2001:db8::1]:21117"
	cs = nil
	in.relayCheck(context.Background(), &cs)
	if !cs[0].OK || cs[0].Skipped {
		t.Errorf("IP relay: %+v", cs[0])
	}
	rec.Relay = "gone.example.com"
	in.Root = t.TempDir()
	cs = nil
	in.relayCheck(context.Background(), &cs)
	if !cs[0].OK || !cs[0].Skipped {
		t.Errorf("relay under a root: %+v", cs[0])
	}
}

func TestAccounts(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nbroken\nrustdesk:x:998:997::/var/lib/rustdesk:/usr/sbin/nologin\n", 0o644)
	writeFile(t, root, "/etc/group", "root:x:0:\nrustdesk:x:997:\n", 0o644)
	a := Accounts{Root: root}
	if o, ok := a.LookupUser("rustdesk"); !ok || o != (keys.Owner{UID: 998, GID: 997}) {
		t.Errorf("rustdesk: %v %v", o, ok)
	}
	if _, ok := a.LookupUser("nobody"); ok {
		t.Error("nobody found in the image")
	}
	if a.UserName(998) != "rustdesk" || a.GroupName(997) != "rustdesk" || a.UserName(5) != "" || a.UserName(0) != "root" {
		t.Error("names")
	}
}

func TestParseProcNet(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:5274 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:5274 0100007F:C350 01 00000000:00000000 00:00000000 00000000   998        0 4243 1 0000000000000000 100 0 0 10 0
`
	ls, err := ParseProcNet([]byte(tcp), "tcp")
	if err != nil || len(ls) != 1 {
		t.Fatalf("%v %v", ls, err)
	}
	if ls[0].AddrPort().String() != "127.0.0.1:21108" || ls[0].UID != 998 || ls[0].Inode != 4242 {
		t.Errorf("%+v", ls[0])
	}
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:526C 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:526D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
`
	ls, err = ParseProcNet([]byte(tcp6), "tcp6")
	if err != nil || len(ls) != 2 || ls[0].AddrPort().String() != "[::]:21100" || ls[1].AddrPort().String() != "[::1]:21101" {
		t.Fatalf("%v %v", ls, err)
	}
	if _, err := ParseProcNet([]byte("h\n 0: zz:1 00000000:0000 0A 0 0 0 0 0 0\n"), "tcp"); err == nil {
		t.Error("bad address accepted")
	}
}

// Real sockets: what this process listens on shows up in /proc/net.
func TestReadListenersSeesRealSockets(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	ul, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	// a connected UDP socket is not a listener
	uc, err := net.Dial("udp", ul.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	tport := uint16(tl.Addr().(*net.TCPAddr).Port)
	uport := uint16(ul.LocalAddr().(*net.UDPAddr).Port)
	cport := uint16(uc.LocalAddr().(*net.UDPAddr).Port)
	ls, err := ReadListeners("/proc")
	if err != nil {
		t.Fatal(err)
	}
	states := MatchPorts([]Port{{"tcp", tport, "t"}, {"udp", uport, "u"}, {"udp", cport, "c"}, {"tcp", uport, "x"}}, ls)
	want := []bool{true, true, false, false}
	for i, st := range states {
		if st.Listening != want[i] {
			t.Errorf("%s %d: listening %v, want %v (%v)", st.Proto, st.Port.Port, st.Listening, want[i], st.Addresses)
		}
	}
	if !slices.Contains(states[0].Addresses, fmt.Sprintf("127.0.0.1:%d", tport)) {
		t.Errorf("addresses %v", states[0].Addresses)
	}
}

// A compose deployment has no unit files, and its keys belong to root (the
// images run as root).
func TestComposeRecord(t *testing.T) {
	root := t.TempDir()
	dir := "/opt/rustdesk-server/data"
	p, _ := keys.Generate(nil)
	writeFile(t, root, dir+"/id_ed25519", string(p.SecretFileBytes()), 0o600)
	writeFile(t, root, dir+"/id_ed25519.pub", p.PublicBase64(), 0o644)
	noErr(t, os.Chmod(filepath.Join(root, dir), 0o700))
	rec := &deploy.Record{Format: 1, Backend: "compose", Origin: "rdctl", IDHost: "rd.example.com", Relay: "rd.example.com:21117",
		WorkingDir: dir, HBBREnforcesKey: true}
	cs := run(root, rec)
	if c, _ := byID(cs, "units-installed"); !c.Skipped {
		t.Errorf("units-installed on compose: %+v", c)
	}
	c, _ := byID(cs, "secret-owner")
	if os.Getuid() == 0 {
		if !c.OK {
			t.Errorf("root-owned key of a compose stack: %s", c.Message)
		}
	} else if c.OK || !strings.Contains(c.Message, "service user root") {
		t.Errorf("a key not owned by root in a compose stack: %+v", c)
	}
	if p := problems(cs); os.Getuid() == 0 && len(p) > 0 {
		t.Errorf("problems: %v", p)
	}
}
