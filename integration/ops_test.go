//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/probe"
)

// debianUnit is the Debian package's unit, as rustdesk-server ships it
// (its systemd/rustdesk-hbbs.service): no arguments, root, a shared
// working dir.
const debianUnit = `[Unit]
Description=Rustdesk %s Server
[Service]
Type=simple
LimitNOFILE=1000000
ExecStart=/usr/bin/%s
WorkingDirectory=/var/lib/rustdesk-server/
User=
Group=
Restart=always
StandardOutput=append:/var/log/rustdesk-server/%s.log
StandardError=append:/var/log/rustdesk-server/%s.error
RestartSec=10
[Install]
WantedBy=multi-user.target
`

// TestSystemdAdoptDebianStatusDoctor installs the server the way the Debian
// packages do, adopts it, and shows status, doctor, doctor --fix and a
// verified rotation on it.
// debianInstall lays out the Debian package's files in m, with the
// stand-in as /usr/bin/hbbs and hbbr, not yet started.
func debianInstall(t *testing.T, m *harness.Machine) {
	t.Helper()
	_, standin := binaries(t)
	for _, b := range []string{"hbbs", "hbbr"} {
		if err := m.CopyFile(standin, "/usr/bin/"+b, 0o755); err != nil {
			t.Fatal(err)
		}
		unit := strings.ReplaceAll(debianUnit, "%s", b)
		if err := m.WriteFile("/lib/systemd/system/rustdesk-"+b+".service", []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSystemdAdoptDebianStatusDoctor(t *testing.T) {
	m := serverMachine(t)
	debianInstall(t, m)
	m.MustExec(t, "mkdir", "-p", "/var/lib/rustdesk-server", "/var/log/rustdesk-server")
	m.MustExec(t, "systemctl", "daemon-reload")
	m.MustExec(t, "systemctl", "enable", "--now", "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	// hbbs creates its key itself, world-readable (0666 &^ umask)
	m.MustExec(t, "sh", "-c", "for i in $(seq 100); do [ -s /var/lib/rustdesk-server/id_ed25519 ] && exit 0; sleep 0.05; done; exit 1")

	out, errOut, code := rdctlIn(t, m, nil, "--json", "adopt", "--id-host", "rd.example.com")
	if code != 0 {
		t.Fatalf("adopt: %d\n%s\n%s", code, out, errOut)
	}
	var adopted struct {
		Written  bool `json:"written"`
		Recorded struct {
			Origin     string `json:"origin"`
			WorkingDir string `json:"working_dir"`
			HBBSUnit   string `json:"hbbs_unit"`
		} `json:"recorded"`
		Install struct {
			Findings []struct{ ID, Severity, Message string } `json:"findings"`
		} `json:"install"`
	}
	if err := json.Unmarshal([]byte(out), &adopted); err != nil {
		t.Fatal(err, out)
	}
	if !adopted.Written || adopted.Recorded.Origin != "debian" || adopted.Recorded.WorkingDir != "/var/lib/rustdesk-server" || adopted.Recorded.HBBSUnit != "rustdesk-hbbs.service" {
		t.Fatalf("adopt recorded %+v", adopted.Recorded)
	}
	found := strings.ToLower(out)
	for _, want := range []string{"root", "readable", "-k"} {
		if !strings.Contains(found, want) {
			t.Errorf("adopt findings do not mention %q:\n%s", want, out)
		}
	}

	// status sees the running units and the key
	var st struct {
		Units []struct {
			Name        string `json:"name"`
			ActiveState string `json:"active_state"`
			MainPID     int    `json:"main_pid"`
		} `json:"units"`
		Key struct {
			Valid       bool   `json:"valid"`
			Fingerprint string `json:"fingerprint"`
			PublicKey   string `json:"public_key"`
			Secret      struct {
				Mode string `json:"mode"`
			} `json:"secret"`
		} `json:"key"`
		Ports []struct {
			Proto     string `json:"proto"`
			Port      int    `json:"port"`
			Listening bool   `json:"listening"`
		} `json:"ports"`
	}
	out = mustRdctl(t, m, "--json", "status")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err, out)
	}
	if len(st.Units) != 2 || st.Units[0].ActiveState != "active" || st.Units[0].MainPID == 0 || !st.Key.Valid {
		t.Errorf("status: %s", out)
	}
	listening := 0
	for _, p := range st.Ports {
		if p.Listening {
			listening++
		}
	}
	if listening < 6 {
		t.Errorf("status sees %d listening ports, want tcp 21115-21119 and udp 21116:\n%s", listening, out)
	}
	if st.Key.Secret.Mode == "0600" {
		t.Errorf("hbbs should have left its secret world-readable; status says %s", st.Key.Secret.Mode)
	}

	// doctor finds the readable secret; --fix repairs it without touching the key
	if _, _, code := rdctlIn(t, m, nil, "doctor"); code != 1 {
		t.Errorf("doctor on a Debian install exited %d, want 1", code)
	}
	out = mustRdctlAllowFail(t, m, "doctor", "--fix")
	if !strings.Contains(out, "0600") {
		t.Errorf("doctor --fix did not report the mode fix:\n%s", out)
	}
	if mode := strings.TrimSpace(m.MustExec(t, "stat", "-c", "%a", "/var/lib/rustdesk-server/id_ed25519")); mode != "600" {
		t.Errorf("secret mode after --fix: %s", mode)
	}
	if k := keyStatus(t, m, st.Key.PublicKey); k != probe.KeyMatch {
		t.Errorf("after doctor --fix hbbs serves: %s", k)
	}

	// a verified rotation works on the adopted install
	raw := mustRdctl(t, m, "--json", "rotate")
	var r struct {
		New      string `json:"new_public_key"`
		Verified bool   `json:"verified"`
	}
	json.Unmarshal([]byte(raw), &r)
	if !r.Verified || keyStatus(t, m, r.New) != probe.KeyMatch || keyStatus(t, m, st.Key.PublicKey) != probe.KeyMismatch {
		t.Errorf("rotation on the adopted Debian install: %s", raw)
	}
}

// mustRdctlAllowFail runs rdctl and accepts exit 0 or 1 (a check that
// reports problems), returning stdout and stderr together.
func mustRdctlAllowFail(t *testing.T, m *harness.Machine, args ...string) string {
	t.Helper()
	out, errOut, code := rdctlIn(t, m, nil, args...)
	if code > 1 {
		t.Fatalf("rdctl %v: exit %d\n%s\n%s", args, code, out, errOut)
	}
	return out + errOut
}

// TestSystemdUninstallPurgeLive runs uninstall --purge on a live install
// with real systemd, nftables and the shadow tools: the units (the
// exporter's too), rdctl's firewall table, the service user rdctl made and
// the binaries it wrote go;
// a binary replaced since stays with a warning; the key pair stays
// byte-for-byte and never shows in the output.
func TestSystemdUninstallPurgeLive(t *testing.T) {
	m := serverMachine(t)
	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	mustRdctl(t, m, "firewall", "--apply", "--backend", "nftables")
	mustRdctl(t, m, "install", "exporter")
	if !unitActive(t, m, "rdctl-exporter.service") {
		t.Fatal("the exporter is not running after install exporter")
	}
	secretSum := m.MustExec(t, "sha256sum", "/var/lib/rustdesk/id_ed25519")
	secret := strings.TrimSpace(m.MustExec(t, "cat", "/var/lib/rustdesk/id_ed25519"))
	if m.MustExec(t, "getent", "passwd", "rustdesk") == "" {
		t.Fatal("install made no rustdesk user")
	}
	// hbbr replaced after install (a rename: it is running).
	m.MustExec(t, "sh", "-c", "cp /usr/local/bin/hbbr /usr/local/bin/hbbr.new && echo >>/usr/local/bin/hbbr.new && mv /usr/local/bin/hbbr.new /usr/local/bin/hbbr")

	out, errOut, code := rdctlIn(t, m, nil, "--json", "uninstall", "--purge")
	if code != 0 {
		t.Fatalf("uninstall --purge: exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		DeletedUser string `json:"deleted_user"`
		Firewall    []struct {
			Command string `json:"command"`
		} `json:"firewall"`
		RecordRemoved bool `json:"record_removed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.DeletedUser != "rustdesk" || !res.RecordRemoved || len(res.Firewall) == 0 {
		t.Errorf("uninstall --purge: %s", out)
	}
	if strings.Contains(out+errOut, secret) {
		t.Fatal("the secret key is in uninstall's output")
	}
	if !strings.Contains(errOut, "/usr/local/bin/hbbr is not the binary rdctl installed") {
		t.Errorf("no warning for the replaced hbbr: %s", errOut)
	}
	gone := func(argv ...string) bool {
		_, _, code, _ := m.Exec(t.Context(), argv...)
		return code != 0
	}
	if unitActive(t, m, "rdctl-exporter.service") {
		t.Error("the exporter still runs after uninstall --purge")
	}
	for _, f := range []string{"/usr/local/bin/hbbs", "/etc/systemd/system/hbbs.service", "/etc/systemd/system/hbbr.service", "/etc/sysusers.d/rdctl-rustdesk.conf", "/etc/rdctl/rdctl.toml",
		"/etc/systemd/system/rdctl-exporter.service", "/etc/systemd/system/multi-user.target.wants/rdctl-exporter.service", "/etc/rdctl/prometheus-rustdesk.yml"} {
		if !gone("test", "-e", f) {
			t.Errorf("%s is still there after uninstall --purge", f)
		}
	}
	if gone("test", "-x", "/usr/local/bin/hbbr") {
		t.Error("the replaced hbbr was removed")
	}
	if !gone("getent", "passwd", "rustdesk") || !gone("getent", "group", "rustdesk") {
		t.Error("the rustdesk user or group is still there")
	}
	if !gone("nft", "list", "table", "inet", "rdctl") {
		t.Error("rdctl's nftables table is still there")
	}
	if got := m.MustExec(t, "sha256sum", "/var/lib/rustdesk/id_ed25519"); got != secretSum {
		t.Errorf("the secret key changed: %s, was %s", got, secretSum)
	}
	if gone("sh", "-c", "test -s /var/lib/rdctl/*/backups/*-uninstall/id_ed25519") {
		t.Error("no uninstall backup of the key")
	}
}

// TestSystemdUninstallKeepsKeysAndFirewall uninstalls an rdctl install
// (keys stay, with a backup), reinstalls it serving the same key, and
// applies the nftables rules inside the machine's own network namespace.
func TestSystemdUninstallKeepsKeysAndFirewall(t *testing.T) {
	m := serverMachine(t)
	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	pub, _ := keyShow(t, m)

	out := mustRdctl(t, m, "uninstall")
	if unitActive(t, m, "hbbs.service") {
		t.Error("hbbs still active after uninstall")
	}
	if _, _, code, _ := m.Exec(t.Context(), "test", "-e", "/etc/systemd/system/hbbs.service"); code == 0 {
		t.Error("unit file left after uninstall")
	}
	if _, _, code, _ := m.Exec(t.Context(), "test", "-s", "/var/lib/rustdesk/id_ed25519"); code != 0 {
		t.Fatalf("uninstall removed the key:\n%s", out)
	}
	if list := m.MustExec(t, "sh", "-c", "cat /var/lib/rdctl/*/backups/*-uninstall/id_ed25519.pub"); strings.TrimSpace(list) != pub {
		t.Errorf("no uninstall backup of the key: %q", list)
	}
	if _, errOut, code := rdctlIn(t, m, nil, "uninstall", "--purge-keys"); code != 2 || !strings.Contains(errOut, "--yes") {
		t.Errorf("--purge-keys without --yes: exit %d %s", code, errOut)
	}

	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	if again, _ := keyShow(t, m); again != pub {
		t.Errorf("reinstall after uninstall serves %s, want the kept %s", again, pub)
	}
	if keyStatus(t, m, pub) != probe.KeyMatch {
		t.Error("reinstalled hbbs does not serve the kept key")
	}

	// firewall: applied with nftables in the machine's network namespace
	mustRdctl(t, m, "firewall", "--apply", "--backend", "nftables")
	mustRdctl(t, m, "firewall", "--apply", "--backend", "nftables") // idempotent
	rules := m.MustExec(t, "nft", "list", "ruleset")
	if strings.Count(rules, "table inet rdctl") != 1 || !strings.Contains(rules, "21115-21119") || !strings.Contains(rules, "udp dport 21116") || strings.Contains(rules, "21117 udp") {
		t.Errorf("ruleset:\n%s", rules)
	}
	if keyStatus(t, m, pub) != probe.KeyMatch {
		t.Error("hbbs unreachable over loopback after the firewall was applied")
	}
}

// TestExporterUnitLive installs rdctl-exporter.service next to a live
// install and scrapes it inside the machine: install starts it (a re-run
// changes nothing); the hardened unit (a dynamic user, the key as a
// credential) probes the server over
// loopback (probe_success 1, the key matched, the consoles detected);
// systemd-analyze scores it at most 1.5 on the running system; after a
// rotation the exporter still expects the old key (key_match 0) until it
// is restarted, as the README says.
func TestExporterUnitLive(t *testing.T) {
	m := serverMachine(t)
	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	// install enables and starts it; a re-run changes nothing.
	if out := mustRdctl(t, m, "install", "exporter"); !strings.Contains(out, "rdctl-exporter.service is running") {
		t.Errorf("install exporter:\n%s", out)
	}
	if !unitActive(t, m, "rdctl-exporter.service") {
		t.Fatalf("the exporter is not running after install:\n%s", m.Journal("rdctl-exporter.service"))
	}
	var again struct {
		Changed bool `json:"changed"`
	}
	if err := json.Unmarshal([]byte(mustRdctl(t, m, "--json", "install", "exporter")), &again); err != nil || again.Changed {
		t.Errorf("a second install exporter: changed %v (%v)", again.Changed, err)
	}
	scrape := func(label string) string {
		t.Helper()
		// bash's /dev/tcp: the machine has no HTTP client.
		const get = `exec 3<>/dev/tcp/127.0.0.1/9752 && printf 'GET /probe?target=127.0.0.1 HTTP/1.0\r\n\r\n' >&3 && cat <&3`
		var out string
		for range 40 {
			out, _, _, _ = m.Exec(t.Context(), "bash", "-c", get)
			if strings.HasPrefix(out, "HTTP/1.0 200") {
				return out
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("%s: no 200 from the exporter: %q\n%s", label, out, m.Journal("rdctl-exporter.service"))
		return ""
	}
	body := scrape("after install")
	for _, want := range []string{"\nprobe_success 1\n", "\nrustdesk_key_match 1\n", `rustdesk_console_detected{port="21115",probe="nat-test",proto="tcp"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("after install: no %q in:\n%s", want, body)
		}
	}
	if user := strings.TrimSpace(m.MustExec(t, "systemctl", "show", "-P", "User", "rdctl-exporter.service")); user == "root" {
		t.Error("the exporter runs as root")
	}
	sec, _, _, _ := m.Exec(t.Context(), "systemd-analyze", "security", "--no-pager", "rdctl-exporter.service")
	var score float64
	for _, l := range strings.Split(sec, "\n") {
		// "→" on a terminal, "->" otherwise
		l = strings.TrimLeft(strings.TrimSpace(l), "→->")
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "Overall exposure level for rdctl-exporter.service: "); ok {
			fmt.Sscanf(rest, "%g", &score)
		}
	}
	if score <= 0 || score > 1.5 {
		t.Errorf("systemd-analyze security: exposure %g, want at most 1.5:\n%s", score, sec)
	}

	mustRdctl(t, m, "rotate")
	if body := scrape("after rotate"); !strings.Contains(body, "\nrustdesk_key_match 0\n") || !strings.Contains(body, "\nprobe_success 0\n") {
		t.Errorf("after rotate, before a restart: want key_match 0 and probe_success 0:\n%s", body)
	}
	m.MustExec(t, "systemctl", "restart", "rdctl-exporter.service")
	if body := scrape("after restart"); !strings.Contains(body, "\nrustdesk_key_match 1\n") || !strings.Contains(body, "\nprobe_success 1\n") {
		t.Errorf("after restarting the exporter: want key_match 1 and probe_success 1:\n%s", body)
	}
}
