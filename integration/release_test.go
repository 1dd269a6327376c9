//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/probe"
)

// guestDebs is where scripts/setup-integration caches man-db, groff-base,
// bash-completion and their libraries for the offline machine.
const guestDebs = "/var/cache/rdctl-it/guest-debs"

// TestReleaseDebian builds the release as scripts/release does (amd64 only),
// checks the .deb with lintian, installs it with apt-get into a real Debian
// with systemd, and shows what a sysadmin gets: rdctl version prints the
// packaged version, the man pages render without warnings, bash completion
// is loaded and completes, a live install systemd from the packaged binary
// serves, and apt-get purge removes the tool and leaves the keys alone.
func TestReleaseDebian(t *testing.T) {
	harness.RequireRoot(t)
	debs, _ := filepath.Glob(filepath.Join(guestDebs, "*.deb"))
	if len(debs) < 7 {
		if os.Getenv("RDCTL_IT_STRICT") == "1" {
			t.Fatalf("no cached guest .debs in %s: run scripts/setup-integration", guestDebs)
		}
		t.Skipf("no cached guest .debs in %s: run scripts/setup-integration", guestDebs)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rel := exec.CommandContext(ctx, filepath.Join(repo, "scripts", "release"))
	rel.Env = append(os.Environ(), "ARCH=amd64", "OUT="+out)
	if b, err := rel.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release: %v\n%s", err, b)
	}
	found, _ := filepath.Glob(filepath.Join(out, "rdctl_*_amd64.deb"))
	if len(found) != 1 {
		t.Fatalf("release made %v", found)
	}
	deb := found[0]
	version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(deb), "rdctl_"), "_amd64.deb")
	if _, err := os.Stat(filepath.Join(out, "rdctl_"+version+"_linux_amd64.tar.gz")); err != nil {
		t.Error(err)
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil || !strings.Contains(string(sums), "  "+filepath.Base(deb)+"\n") {
		t.Errorf("SHA256SUMS: %v %s", err, sums)
	}
	check := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	check.Dir = out
	if b, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, b)
	}

	// lintian: no errors (the warnings it may print are listed in the README).
	if lintian, err := exec.LookPath("lintian"); err == nil {
		b, err := exec.Command(lintian, "--fail-on", "error", deb).CombinedOutput()
		t.Logf("lintian:\n%s", b)
		if err != nil || bytes.Contains(b, []byte("\nE: ")) || bytes.HasPrefix(b, []byte("E: ")) {
			t.Errorf("lintian reports errors: %v", err)
		}
	} else if os.Getenv("RDCTL_IT_STRICT") == "1" {
		t.Error("lintian not installed: run scripts/setup-integration")
	}

	standin := harness.BuildStatic(t, "./internal/hbbstest/standin")
	m := harness.BootSystemd(t, harness.WithPrivateNetwork())
	for _, d := range append(debs, deb) {
		if err := m.CopyFile(d, "/root/debs/"+filepath.Base(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.CopyFile(releaseZip(t, standin), "/root/rustdesk-server-linux-amd64.zip", 0o644); err != nil {
		t.Fatal(err)
	}
	sh := func(script string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		stdout, stderr, code, err := m.Exec(ctx, "/bin/bash", "-c", script)
		if err != nil && code == 0 {
			t.Fatalf("%s: %v", script, err)
		}
		return stdout, stderr, code
	}
	mustSh := func(script string) string {
		t.Helper()
		stdout, stderr, code := sh(script)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", script, code, stdout, stderr)
		}
		return stdout
	}

	// The viewers first (offline, from the host's cache), then rdctl the way
	// the README says.
	mustSh("cd /root/debs && DEBIAN_FRONTEND=noninteractive dpkg -i $(ls *.deb | grep -v '^rdctl_') >/dev/null")
	mustSh("cd /root/debs && DEBIAN_FRONTEND=noninteractive apt-get install -y ./" + filepath.Base(deb))
	if got := mustSh("dpkg-query -W -f '${Version} ${Status}' rdctl"); got != version+" install ok installed" {
		t.Errorf("dpkg-query: %q", got)
	}
	// Installing starts and changes nothing: no units, no user, no state.
	if _, _, code := sh("test -e /etc/systemd/system/hbbs.service || test -e /var/lib/rdctl || test -e /etc/rdctl || getent passwd rustdesk"); code == 0 {
		t.Error("installing the package changed the system beyond its files")
	}

	if v := mustSh("rdctl version"); !strings.HasPrefix(v, "rdctl "+version+"\n") || !strings.Contains(v, "built:    ") {
		t.Errorf("rdctl version from the package:\n%s", v)
	}
	for _, page := range []string{"rdctl", "rdctl-rotate", "rdctl-install-systemd"} {
		stdout, stderr, code := sh("MANWIDTH=80 MANPAGER=cat man --warnings " + page)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "EXIT STATUS") {
			t.Errorf("man %s: exit %d, warnings %q\n%s", page, code, stderr, stdout)
		}
	}
	if stdout := mustSh("MANWIDTH=80 MANPAGER=cat man rdctl-rotate"); !strings.Contains(stdout, "--resume") {
		t.Errorf("man rdctl-rotate lacks --resume:\n%s", stdout)
	}
	// bash-completion loads completions on first use: ask its loader, as
	// the first Tab would, then complete "rdctl ro".
	comp := mustSh(`bash -lic '_completion_loader rdctl; complete -p rdctl' 2>/dev/null`)
	if !strings.Contains(comp, "__rdctl_bash_autocomplete rdctl") {
		t.Errorf("complete -p rdctl: %q", comp)
	}
	got := mustSh(`bash -lic '_completion_loader rdctl; COMP_LINE="rdctl ro"; COMP_POINT=8; COMP_WORDS=(rdctl ro); COMP_CWORD=1; __rdctl_bash_autocomplete; printf "%s\n" "${COMPREPLY[@]}"' 2>/dev/null`)
	if strings.TrimSpace(got) != "rotate" {
		t.Errorf("completing 'rdctl ro': %q", got)
	}
	for _, f := range []string{"/usr/share/zsh/vendor-completions/_rdctl", "/usr/share/fish/vendor_completions.d/rdctl.fish", "/usr/share/doc/rdctl/copyright", "/usr/share/doc/rdctl/changelog.gz"} {
		if _, err := m.ReadFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	// A live install from the packaged binary.
	mustSh("rdctl install systemd --relay rd.example.com --binaries /root/rustdesk-server-linux-amd64.zip")
	for _, u := range []string{"hbbs.service", "hbbr.service"} {
		if !unitActive(t, m, u) {
			t.Fatalf("%s not active after install:\n%s", u, m.Journal(u))
		}
	}
	var k struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(mustSh("rdctl --json key show")), &k); err != nil {
		t.Fatal(err)
	}
	if st, err := probeKey(m, k.PublicKey); err != nil || st != probe.KeyMatch {
		t.Errorf("hbbs after the packaged install: %v %v (key %q)", st, err, k.PublicKey)
	}
	// The exporter's unit runs the packaged /usr/bin/rdctl and starts.
	mustSh("rdctl install exporter")
	if unit := mustSh("cat /etc/systemd/system/rdctl-exporter.service"); !strings.Contains(unit, "ExecStart=/usr/bin/rdctl exporter") {
		t.Errorf("the exporter's unit does not run the packaged rdctl:\n%s", unit)
	}
	if !unitActive(t, m, "rdctl-exporter.service") {
		t.Errorf("the exporter is not running:\n%s", m.Journal("rdctl-exporter.service"))
	}
	// Reinstalling (as an upgrade does) restarts a running exporter onto
	// the new binary (postinst).
	pid := mustSh("systemctl show -P MainPID rdctl-exporter.service")
	mustSh("cd /root/debs && DEBIAN_FRONTEND=noninteractive dpkg -i " + filepath.Base(deb) + " >/dev/null")
	if again := mustSh("systemctl show -P MainPID rdctl-exporter.service"); again == pid || strings.TrimSpace(again) == "0" {
		t.Errorf("the exporter was not restarted by the upgrade: MainPID %s, then %s", strings.TrimSpace(pid), strings.TrimSpace(again))
	}

	secret, err1 := m.ReadFile("/var/lib/rustdesk/id_ed25519")
	public, err2 := m.ReadFile("/var/lib/rustdesk/id_ed25519.pub")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}

	// purge removes the tool and nothing of the server; the exporter,
	// which runs the tool, is stopped first (prerm).
	mustSh("DEBIAN_FRONTEND=noninteractive apt-get purge -y rdctl")
	if unitActive(t, m, "rdctl-exporter.service") {
		t.Error("the exporter still runs after the package was purged")
	}
	for _, f := range []string{"/usr/bin/rdctl", "/usr/share/man/man8/rdctl.8.gz", "/usr/share/bash-completion/completions/rdctl"} {
		if _, err := m.ReadFile(f); err == nil {
			t.Errorf("%s still there after purge", f)
		}
	}
	if s, _ := m.ReadFile("/var/lib/rustdesk/id_ed25519"); !bytes.Equal(s, secret) {
		t.Error("purge changed the secret key")
	}
	if p, _ := m.ReadFile("/var/lib/rustdesk/id_ed25519.pub"); !bytes.Equal(p, public) {
		t.Error("purge changed the public key")
	}
	if !unitActive(t, m, "hbbs.service") {
		t.Error("purge stopped hbbs")
	}
}
