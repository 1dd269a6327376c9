//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
)

// firewallRootfs is the cached rootfs with firewalld and ufw
// (scripts/setup-integration): firewalld.service is enabled by its
// package, ufw is off.
const firewallRootfs = "/var/cache/rdctl-it/rootfs-firewall"

// firewallHost is a machine with the server installed and a firewall,
// reached from two other network namespaces: ctl over an ordinary link,
// ts over a link whose end in the machine is called tailscale0, as
// tailscaled's interface is.
type firewallHost struct {
	t                  *testing.T
	m                  *harness.Machine
	ctl, ts            *harness.Netns
	remote, tailRemote netip.Addr
}

type firewallResult struct {
	Backend string `json:"backend"`
	Changed bool   `json:"changed"`
	Results []struct {
		Command string `json:"command"`
	} `json:"results"`
	Left   []string `json:"port_rules_left"`
	Others []string `json:"others_rules"`
}

func newFirewallHost(t *testing.T) *firewallHost {
	if _, err := os.Stat(filepath.Join(firewallRootfs, ".rdctl-it-rootfs")); err != nil {
		msg := "no rootfs with firewalld and ufw at " + firewallRootfs + "; run scripts/setup-integration as root first"
		if os.Getenv("CI") != "" || os.Getenv("RDCTL_IT_STRICT") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	rdctl, standin := binaries(t)
	m := harness.BootSystemd(t, harness.WithPrivateNetwork(), harness.WithRootfs(firewallRootfs))
	if err := m.CopyFile(rdctl, "/usr/local/sbin/rdctl", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.CopyFile(releaseZip(t, standin), "/root/rustdesk-server-linux-amd64.zip", 0o644); err != nil {
		t.Fatal(err)
	}
	h := &firewallHost{t: t, m: m, ctl: harness.NewNetns(t, "ctl"), ts: harness.NewNetns(t, "ts")}
	_, h.remote = h.ctl.LinkMachine(t, m)
	_, h.tailRemote = h.ts.LinkMachineNamed(t, m, "tailscale0")
	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	return h
}

// reachable dials port from ctl, or over tailscale0 from ts: the
// firewall rejects or drops what it does not admit.
func (h *firewallHost) reachable(port uint16, overTailnet bool) bool {
	var ok bool
	ns, addr := h.ctl, h.remote
	if overTailnet {
		ns, addr = h.ts, h.tailRemote
	}
	ns.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), 500*time.Millisecond)
		if err == nil {
			c.Close()
			ok = true
		}
		return nil
	})
	return ok
}

// expect checks which ports are reachable from ctl (want) and over
// tailscale0 (overTailnet, when not nil), waiting a moment for a reload to
// take effect.
func (h *firewallHost) expect(label string, want, overTailnet map[uint16]bool, status ...string) {
	h.t.Helper()
	for try := 0; ; try++ {
		var wrong []string
		for tailnet, ports := range map[bool]map[uint16]bool{false: want, true: overTailnet} {
			for p, w := range ports {
				if got := h.reachable(p, tailnet); got != w {
					wrong = append(wrong, fmt.Sprintf("%d %s%s", p, map[bool]string{true: "reachable", false: "not reachable"}[got],
						map[bool]string{true: " over tailscale0", false: ""}[tailnet]))
				}
			}
		}
		if len(wrong) == 0 {
			return
		}
		if try == 10 {
			slices.Sort(wrong)
			h.t.Fatalf("%s: %s\n%s", label, strings.Join(wrong, ", "), h.m.MustExec(h.t, status...))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs rdctl --json firewall args in the machine.
func (h *firewallHost) run(args ...string) (firewallResult, string) {
	h.t.Helper()
	out, errOut, code := rdctlIn(h.t, h.m, nil, append([]string{"--json", "firewall"}, args...)...)
	var r firewallResult
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
		h.t.Fatalf("firewall %v: exit %d %v\n%s\n%s", args, code, err, out, errOut)
	}
	return r, errOut
}

func (r firewallResult) ran(cmd string) bool {
	for _, c := range r.Results {
		if c.Command == cmd {
			return true
		}
	}
	return false
}

// TestFirewalldLive runs `rdctl firewall` against Debian's firewalld under
// the machine's systemd. The host already has the guide's port rules
// (tcp 21115-21117, udp 21117), as hosts moved from a bash installer do.
// --apply (backend detected) admits every port through rdctl's service; a
// re-apply changes nothing and reloads nothing; --tailnet-only moves the
// service to the tailnet zone, reached over tailscale0 only, and back;
// --proxy shuts the
// WebSocket ports and the plain apply opens them again; --remove takes out
// only rdctl's service, so the guide's rules still admit their ports, and
// names them with the commands to remove them; a second --remove changes
// nothing.
func TestFirewalldLive(t *testing.T) {
	h := newFirewallHost(t)
	m := h.m
	m.MustExec(t, "sh", "-c", "for i in $(seq 150); do [ \"$(firewall-cmd --state 2>/dev/null)\" = running ] && exit 0; sleep 0.2; done; journalctl -u firewalld --no-pager | tail -20; exit 1")
	m.MustExec(t, "sh", "-c", "firewall-cmd --permanent --add-port=21115-21117/tcp --add-port=21117/udp && firewall-cmd --reload")
	status := []string{"firewall-cmd", "--list-all"}

	h.expect("before", map[uint16]bool{21116: true, 21117: true, 21118: false, 21119: false}, nil, status...)

	r, _ := h.run("--apply")
	if r.Backend != "firewalld" || !r.Changed || !r.ran("firewall-cmd --reload") {
		t.Fatalf("--apply: %+v", r)
	}
	h.expect("after --apply", map[uint16]bool{21115: true, 21116: true, 21117: true, 21118: true, 21119: true}, nil, status...)
	if got := m.MustExec(t, "firewall-cmd", "--permanent", "--service=rdctl-rustdesk", "--get-ports"); strings.TrimSpace(got) != "21115-21119/tcp 21116/udp" {
		t.Errorf("service ports %q", got)
	}

	r, _ = h.run("--apply")
	if r.Changed || r.ran("firewall-cmd --reload") {
		t.Errorf("a re-apply changed something: %+v", r)
	}

	// tailnet only: rdctl's service moves to the rdctl-tailnet zone (the
	// guide's rules still admit 21115-21117 everywhere)
	r, _ = h.run("--apply", "--tailnet-only")
	if !r.Changed {
		t.Errorf("--apply --tailnet-only: %+v", r)
	}
	h.expect("after --apply --tailnet-only", map[uint16]bool{21116: true, 21118: false, 21119: false},
		map[uint16]bool{21115: true, 21116: true, 21117: true, 21118: true, 21119: true}, status...)
	r, _ = h.run("--apply", "--tailnet-only=false")
	if !r.Changed {
		t.Errorf("--apply after --tailnet-only: %+v", r)
	}
	h.expect("after --apply --tailnet-only=false", map[uint16]bool{21118: true, 21119: true}, nil, status...)

	r, _ = h.run("--apply", "--proxy")
	if !r.Changed || len(r.Left) != 0 {
		t.Errorf("--apply --proxy: %+v", r)
	}
	h.expect("after --apply --proxy", map[uint16]bool{21115: true, 21116: true, 21117: true, 21118: false, 21119: false}, nil, status...)

	// a rule of the guide's that admits the WebSocket ports undoes --proxy: named, not removed
	m.MustExec(t, "sh", "-c", "firewall-cmd --permanent --add-port=21118-21119/tcp && firewall-cmd --reload")
	r, errOut := h.run("--apply", "--proxy")
	if r.Changed || strings.Join(r.Left, " ") != "21118-21119/tcp" || !strings.Contains(errOut, "firewall-cmd --permanent --remove-port=21118-21119/tcp") {
		t.Errorf("--apply --proxy with the guide's 21118-21119/tcp: %+v\n%s", r, errOut)
	}
	m.MustExec(t, "sh", "-c", "firewall-cmd --permanent --remove-port=21118-21119/tcp && firewall-cmd --reload")

	r, _ = h.run("--apply", "--proxy=false")
	if !r.Changed {
		t.Errorf("--apply after --proxy: %+v", r)
	}
	h.expect("after --apply --proxy=false", map[uint16]bool{21118: true, 21119: true}, nil, status...)

	r, errOut = h.run("--remove")
	if !r.Changed || strings.Join(r.Left, " ") != "21115-21117/tcp" {
		t.Errorf("--remove: %+v", r)
	}
	if want := "if nothing else needs them: firewall-cmd --permanent --remove-port=21115-21117/tcp && firewall-cmd --reload"; !strings.Contains(errOut, want) {
		t.Errorf("--remove: stderr lacks %q:\n%s", want, errOut)
	}
	h.expect("after --remove", map[uint16]bool{21115: true, 21116: true, 21117: true, 21118: false, 21119: false},
		map[uint16]bool{21118: false, 21119: false}, status...)
	if got := m.MustExec(t, "firewall-cmd", "--permanent", "--list-ports"); strings.TrimSpace(got) != "21115-21117/tcp 21117/udp" {
		t.Errorf("the guide's rules after --remove: %q", got)
	}
	if out, _, code, _ := m.Exec(t.Context(), "firewall-cmd", "--permanent", "--info-service=rdctl-rustdesk"); code == 0 {
		t.Errorf("rdctl's service is still there:\n%s", out)
	}

	r, _ = h.run("--remove")
	if r.Changed || len(r.Results) != 0 {
		t.Errorf("a second --remove: %+v", r)
	}
}

// TestUFWLive runs `rdctl firewall` against Debian's ufw (firewalld
// stopped), where an admin already admits udp 21116 with a rule of their
// own. --apply (backend detected) admits the ports and leaves the admin's
// rule theirs (ufw would otherwise rewrite its comment to rdctl's); a
// re-apply changes nothing; --tailnet-only then admits the ports over
// tailscale0 only (rdctl's open rules go); --proxy shuts only the
// WebSocket ports; the plain apply opens them again (the deny goes);
// --remove takes out rdctl's rules only.
func TestUFWLive(t *testing.T) {
	h := newFirewallHost(t)
	m := h.m
	m.MustExec(t, "sh", "-c", "systemctl disable --now firewalld 2>/dev/null; ufw --force enable >/dev/null 2>&1; ufw status | grep -q 'Status: active' && ufw allow 21116/udp >/dev/null")
	status := []string{"ufw", "show", "added"}
	admin := "ufw allow 21116/udp"
	adminKept := func(label string) {
		t.Helper()
		if added := m.MustExec(t, "ufw", "show", "added"); !slices.Contains(strings.Split(added, "\n"), admin) {
			t.Errorf("%s: the admin's rule is gone or rewritten:\n%s", label, added)
		}
	}
	all := func(on bool) map[uint16]bool {
		return map[uint16]bool{21115: on, 21116: on, 21117: on, 21118: on, 21119: on}
	}
	h.expect("before", all(false), all(false), status...)

	r, _ := h.run("--apply")
	if r.Backend != "ufw" || !r.Changed || !slices.Equal(r.Others, []string{admin}) {
		t.Fatalf("--apply: %+v", r)
	}
	h.expect("after --apply", all(true), all(true), status...)
	adminKept("--apply")
	if r, _ := h.run("--apply"); r.Changed {
		t.Errorf("a re-apply changed something: %+v", r)
	}

	r, _ = h.run("--apply", "--tailnet-only")
	if !r.Changed || !r.ran("ufw delete allow 21115:21119/tcp") {
		t.Errorf("--apply --tailnet-only: %+v", r)
	}
	h.expect("after --apply --tailnet-only", all(false), all(true), status...)

	h.run("--apply", "--tailnet-only=false", "--proxy")
	h.expect("after --apply --proxy", map[uint16]bool{21115: true, 21116: true, 21117: true, 21118: false, 21119: false}, nil, status...)

	r, _ = h.run("--apply", "--proxy=false")
	if !r.ran("ufw delete deny 21118:21119/tcp") {
		t.Errorf("--apply after --proxy: %+v", r)
	}
	h.expect("after --apply --proxy=false", all(true), nil, status...)
	adminKept("the mode changes")

	r, _ = h.run("--remove")
	if !r.Changed {
		t.Errorf("--remove: %+v", r)
	}
	h.expect("after --remove", all(false), all(false), status...)
	adminKept("--remove")
	if added := m.MustExec(t, "ufw", "show", "added"); strings.Contains(added, "rdctl") {
		t.Errorf("rdctl's rules after --remove:\n%s", added)
	}
}
