//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
)

// firewalldRootfs is the cached rootfs with firewalld (scripts/setup-integration),
// whose package enables firewalld.service.
const firewalldRootfs = "/var/cache/rdctl-it/rootfs-firewalld"

// TestFirewalldLive runs `rdctl firewall` against Debian's firewalld under
// the machine's systemd, with the server installed and reached from
// another network namespace. The host already has the guide's port rules
// (tcp 21115-21117, udp 21117), as hosts moved from a bash installer do.
// --apply (backend detected) admits every port through rdctl's service; a
// re-apply changes nothing and reloads nothing; --proxy shuts the
// WebSocket ports and the plain apply opens them again; --remove takes out
// only rdctl's service, so the guide's rules still admit their ports, and
// names them with the commands to remove them; a second --remove changes
// nothing.
func TestFirewalldLive(t *testing.T) {
	if _, err := os.Stat(filepath.Join(firewalldRootfs, ".rdctl-it-rootfs")); err != nil {
		msg := "no rootfs with firewalld at " + firewalldRootfs + "; run scripts/setup-integration as root first"
		if os.Getenv("CI") != "" || os.Getenv("RDCTL_IT_STRICT") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	rdctl, standin := binaries(t)
	m := harness.BootSystemd(t, harness.WithPrivateNetwork(), harness.WithRootfs(firewalldRootfs))
	if err := m.CopyFile(rdctl, "/usr/local/sbin/rdctl", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.CopyFile(releaseZip(t, standin), "/root/rustdesk-server-linux-amd64.zip", 0o644); err != nil {
		t.Fatal(err)
	}
	m.MustExec(t, "sh", "-c", "for i in $(seq 150); do [ \"$(firewall-cmd --state 2>/dev/null)\" = running ] && exit 0; sleep 0.2; done; journalctl -u firewalld --no-pager | tail -20; exit 1")
	ctl := harness.NewNetns(t, "ctl")
	_, remote := ctl.LinkMachine(t, m)
	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	m.MustExec(t, "sh", "-c", "firewall-cmd --permanent --add-port=21115-21117/tcp --add-port=21117/udp && firewall-cmd --reload")

	// reachable dials port from the other namespace: firewalld's default
	// zone rejects what it does not admit.
	reachable := func(port uint16) bool {
		var ok bool
		ctl.Do(func() error {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(remote, port).String(), 2*time.Second)
			if err == nil {
				c.Close()
				ok = true
			}
			return nil
		})
		return ok
	}
	// expect waits a moment for a reload to take effect.
	expect := func(label string, want map[uint16]bool) {
		t.Helper()
		for try := 0; ; try++ {
			var wrong []string
			for p, w := range want {
				if got := reachable(p); got != w {
					wrong = append(wrong, fmt.Sprintf("%d %s", p, map[bool]string{true: "reachable", false: "not reachable"}[got]))
				}
			}
			if len(wrong) == 0 {
				return
			}
			if try == 20 {
				t.Fatalf("%s: %s\n%s", label, strings.Join(wrong, ", "), m.MustExec(t, "firewall-cmd", "--list-all"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	type result struct {
		Backend string `json:"backend"`
		Changed bool   `json:"changed"`
		Results []struct {
			Command string `json:"command"`
		} `json:"results"`
		Left []string `json:"port_rules_left"`
	}
	run := func(args ...string) (result, string) {
		t.Helper()
		out, errOut, code := rdctlIn(t, m, nil, append([]string{"--json", "firewall"}, args...)...)
		var r result
		if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
			t.Fatalf("firewall %v: exit %d %v\n%s\n%s", args, code, err, out, errOut)
		}
		return r, errOut
	}
	ran := func(r result, cmd string) bool {
		for _, c := range r.Results {
			if c.Command == cmd {
				return true
			}
		}
		return false
	}

	expect("before", map[uint16]bool{21116: true, 21117: true, 21118: false, 21119: false})

	r, _ := run("--apply")
	if r.Backend != "firewalld" || !r.Changed || !ran(r, "firewall-cmd --reload") {
		t.Fatalf("--apply: %+v", r)
	}
	expect("after --apply", map[uint16]bool{21115: true, 21116: true, 21117: true, 21118: true, 21119: true})
	if got := m.MustExec(t, "firewall-cmd", "--permanent", "--service=rdctl-rustdesk", "--get-ports"); strings.TrimSpace(got) != "21115-21119/tcp 21116/udp" {
		t.Errorf("service ports %q", got)
	}

	r, _ = run("--apply")
	if r.Changed || ran(r, "firewall-cmd --reload") {
		t.Errorf("a re-apply changed something: %+v", r)
	}

	r, _ = run("--apply", "--proxy")
	if !r.Changed || len(r.Left) != 0 {
		t.Errorf("--apply --proxy: %+v", r)
	}
	expect("after --apply --proxy", map[uint16]bool{21115: true, 21116: true, 21117: true, 21118: false, 21119: false})

	// a rule of the guide's that admits the WebSocket ports undoes --proxy: named, not removed
	m.MustExec(t, "sh", "-c", "firewall-cmd --permanent --add-port=21118-21119/tcp && firewall-cmd --reload")
	r, errOut := run("--apply", "--proxy")
	if r.Changed || strings.Join(r.Left, " ") != "21118-21119/tcp" || !strings.Contains(errOut, "firewall-cmd --permanent --remove-port=21118-21119/tcp") {
		t.Errorf("--apply --proxy with the guide's 21118-21119/tcp: %+v\n%s", r, errOut)
	}
	m.MustExec(t, "sh", "-c", "firewall-cmd --permanent --remove-port=21118-21119/tcp && firewall-cmd --reload")

	r, _ = run("--apply", "--proxy=false")
	if !r.Changed {
		t.Errorf("--apply after --proxy: %+v", r)
	}
	expect("after --apply --proxy=false", map[uint16]bool{21118: true, 21119: true})

	r, errOut = run("--remove")
	if !r.Changed || strings.Join(r.Left, " ") != "21115-21117/tcp" {
		t.Errorf("--remove: %+v", r)
	}
	if want := "if nothing else needs them: firewall-cmd --permanent --remove-port=21115-21117/tcp && firewall-cmd --reload"; !strings.Contains(errOut, want) {
		t.Errorf("--remove: stderr lacks %q:\n%s", want, errOut)
	}
	expect("after --remove", map[uint16]bool{21115: true, 21116: true, 21117: true, 21118: false, 21119: false})
	if got := m.MustExec(t, "firewall-cmd", "--permanent", "--list-ports"); strings.TrimSpace(got) != "21115-21117/tcp 21117/udp" {
		t.Errorf("the guide's rules after --remove: %q", got)
	}
	if out, _, code, _ := m.Exec(t.Context(), "firewall-cmd", "--permanent", "--info-service=rdctl-rustdesk"); code == 0 {
		t.Errorf("rdctl's service is still there:\n%s", out)
	}

	r, _ = run("--remove")
	if r.Changed || len(r.Results) != 0 {
		t.Errorf("a second --remove: %+v", r)
	}
}
