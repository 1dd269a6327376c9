package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/firewall"
)

func TestFirewallPrintScriptIsThePackages(t *testing.T) {
	for _, tailnet := range []bool{false, true} {
		args := []string{"--root", t.TempDir(), "firewall", "--print-script"}
		if tailnet {
			args = append(args, "--tailnet-only")
		}
		code, out, errOut := runInProcess(t, args...)
		if code != 0 || out != firewall.NFTScript(firewall.Options{TailnetOnly: tailnet}) {
			t.Errorf("tailnet=%v: exit %d %s\n%s", tailnet, code, errOut, out)
		}
	}
}

// rdctl firewall --apply, the real binary, loads its table with the real nft
// in a network namespace of its own, twice; the second run changes nothing
// and touches no other table.
func TestFirewallApplyInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, p := range []string{"unshare", "nft"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("no %s", p)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "rdctl")
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	script := `set -e
nft add table inet other
"$RDCTL" --lock-wait 10s firewall --apply --backend nftables --tailnet-only
"$RDCTL" --lock-wait 10s -q firewall --apply --backend nftables --tailnet-only
"$RDCTL" --lock-wait 10s --json firewall --apply --backend nftables --tailnet-only | tr -d ' \n'; echo
nft list ruleset`
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "RDCTL="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"ran nft -f /dev/stdin\napplied 1 command(s) with nftables\n",
		"rdctl: hint: nft rules are lost on reboot",
		"table inet other {\n}\ntable inet rdctl {\n",
		// The re-apply found the table as it was: nothing changed.
		`"changed":false,"steps":[{"action":"run","target":"nft-f/dev/stdin","changed":false}]`,
		"iifname != { \"lo\", \"tailscale0\" } tcp dport 21115-21119 drop",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "table inet rdctl") != 1 || strings.Count(s, "applied 1 command") != 1 {
		t.Errorf("second apply (quiet) or table count wrong:\n%s", s)
	}
}
