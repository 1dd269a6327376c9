package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// firewall --apply is a plan of "run" steps, one per command. The seam is
// PATH: a fake ufw that logs its arguments, so nothing touches the host's
// firewall. The dry run runs nothing but the read-only queries (the
// fake's directory, where the log would appear, is unchanged); the real
// run (root only: it takes the live lock, /run/rdctl/rdctl.lock) reports
// the same steps and runs exactly the commands: the deletions of rdctl's
// rules of other modes only for what `ufw show added` lists (here the
// tailnet-only tcp rule, from an earlier --tailnet-only apply).
// internal/firewall tests the same with a fake Runner, as any user.
func TestFirewallApplyPlan(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "ran.log")
	fake := "#!/bin/sh\nif [ \"$*\" = 'show added' ]; then echo 'Added user rules:'; " +
		"echo \"ufw allow in on tailscale0 to any port 21115:21119 proto tcp comment 'rdctl: RustDesk server'\"; exit 0; fi\n" +
		"echo \"ufw $*\" >> " + log + "\necho 'Rule added'\n"
	if err := os.WriteFile(filepath.Join(dir, "ufw"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	args := []string{"--lock-wait", "10s", "firewall", "--apply", "--backend", "ufw"}
	want := []string{"ufw delete allow in on tailscale0 to any port 21115:21119 proto tcp",
		"ufw allow 21115:21119/tcp comment rdctl: RustDesk server", "ufw allow 21116/udp comment rdctl: RustDesk server"}
	const steps = 7 // 5 deletions of other modes' rules, each while listed, then the 2 rules

	if os.Geteuid() != 0 {
		code, out, errOut := runInProcess(t, append([]string{"--dry-run", "--json"}, args...)...)
		r := planOf(t, out)
		if code != 0 || !r.DryRun || len(r.Steps) != steps || r.Steps[0].Target != want[0] {
			t.Errorf("dry run: exit %d %+v %s", code, r, errOut)
		}
		if _, err := os.Stat(log); !os.IsNotExist(err) {
			t.Error("the dry run ran ufw")
		}
		t.Skip("the real run needs root")
	}
	dry, real := runPlanned(t, dir, 0, 0, args...)
	var d, r struct {
		Applied bool `json:"applied"`
		Steps   []struct{ Action, Target string }
		Results []struct {
			Command  string `json:"command"`
			ExitCode int    `json:"exit_code"`
		} `json:"results"`
	}
	json.Unmarshal([]byte(dry), &d)
	json.Unmarshal([]byte(real), &r)
	if d.Applied || len(d.Results) != 0 || !r.Applied || len(r.Results) != len(want) || len(r.Steps) != steps {
		t.Errorf("dry %+v\nreal %+v", d, r)
	}
	for i, res := range r.Results {
		if res.Command != want[i] {
			t.Errorf("result %d: %+v, want %s", i, res, want[i])
		}
	}
	for _, s := range r.Steps {
		if s.Action != "run" {
			t.Errorf("step %+v", s)
		}
	}
	data, _ := os.ReadFile(log)
	if string(data) != strings.Join(want, "\n")+"\n" {
		t.Errorf("ran:\n%s", data)
	}
}

// A dry run fails where the real run would: the program is missing.
func TestFirewallApplyDryRunNeedsTheTool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	code, out, errOut := runInProcess(t, "--dry-run", "firewall", "--apply", "--backend", "nftables")
	if code != 1 || out != "" || !strings.Contains(errOut, `rdctl: error: nft -f /dev/stdin: exec: "nft": executable file not found`) {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// firewall --remove is a plan of "run" steps, one per rule --apply may have
// added (with and without --proxy), pending only while `ufw show added` lists it. The seam is PATH: a
// fake ufw that keeps its added rules in a file. The dry run deletes
// nothing; the real run (root: the live lock) deletes exactly the rules
// that were there, and a second --remove has nothing to do.
func TestFirewallRemovePlan(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the real run needs root")
	}
	dir := t.TempDir()
	state, log := filepath.Join(dir, "added"), filepath.Join(dir, "ran.log")
	fake := "#!/bin/sh\nif [ \"$1 $2\" = 'show added' ]; then echo 'Added user rules:'; cat " + state + "; exit 0; fi\n" +
		"echo \"ufw $*\" >> " + log + "\nshift\n" +
		"grep -v -x -F \"ufw $* comment 'rdctl: RustDesk server'\" " + state + " > " + state + ".new; mv " + state + ".new " + state + "\n"
	if err := os.WriteFile(filepath.Join(dir, "ufw"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	added := "ufw allow 22/tcp\nufw allow 21115:21119/tcp comment 'rdctl: RustDesk server'\nufw allow in on tailscale0 to any port 21116 proto udp comment 'rdctl: RustDesk server'\n"
	if err := os.WriteFile(state, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	args := []string{"--lock-wait", "10s", "firewall", "--remove", "--backend", "ufw"}
	dry, real := runPlanned(t, dir, 0, 0, args...)
	var d, r struct {
		Removed bool `json:"removed"`
		Steps   []struct {
			Action, Target string
			Changed        bool
		}
	}
	json.Unmarshal([]byte(dry), &d)
	json.Unmarshal([]byte(real), &r)
	if d.Removed || !r.Removed || len(r.Steps) != 7 { // 4 rules without --proxy, 3 more with it
		t.Errorf("dry %+v\nreal %+v", d, r)
	}
	var changed []string
	for _, s := range r.Steps {
		if s.Changed {
			changed = append(changed, s.Target)
		}
	}
	want := []string{"ufw delete allow 21115:21119/tcp", "ufw delete allow in on tailscale0 to any port 21116 proto udp"}
	if strings.Join(changed, "\n") != strings.Join(want, "\n") {
		t.Errorf("changed steps %v", changed)
	}
	if data, _ := os.ReadFile(log); string(data) != strings.Join(want, "\n")+"\n" {
		t.Errorf("ran:\n%s", data)
	}
	if data, _ := os.ReadFile(state); string(data) != "ufw allow 22/tcp\n" {
		t.Errorf("left:\n%s", data)
	}
	code, out, errOut := runInProcess(t, "--lock-wait", "10s", "firewall", "--remove", "--backend", "ufw")
	if code != 0 || !strings.Contains(out, "unchanged: ufw holds none of rdctl's rules") {
		t.Errorf("second --remove: exit %d\n%s%s", code, out, errOut)
	}
}

func TestFirewallRemoveFlags(t *testing.T) {
	for _, args := range [][]string{
		{"firewall", "--remove", "--apply"},
		{"firewall", "--remove", "--print-script"},
		{"firewall", "--remove", "--tailnet-only"},
		{"--root", t.TempDir(), "firewall", "--remove", "--backend", "nftables"},
	} {
		if code, _, errOut := runInProcess(t, args...); code != 2 || !strings.Contains(errOut, "--remove") {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

// firewalld port rules that admit rdctl's ports (here the guides') are
// never removed, only named with the commands that would remove them: by
// --remove (dry run and JSON alike) and by --apply --proxy, where a rule
// admitting the WebSocket ports from anywhere undoes --proxy. The seam is
// PATH: a fake firewall-cmd answering the read-only queries.
func TestFirewalldPortRulesLeftAreNamed(t *testing.T) {
	dir := t.TempDir()
	fake := `#!/bin/sh
case "$*" in
*--get-default-zone*) echo public ;;
*--zone=public\ --list-ports*) echo "21115-21117/tcp 21117/udp 21118-21119/tcp 22/tcp" ;;
*--query-service*) echo no; exit 1 ;;
*--get-services*) echo "ssh dhcpv6-client" ;;
*--get-zones*) echo "public trusted" ;;
*) echo "unexpected: $*" >&2; exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "firewall-cmd"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	code, out, errOut := runInProcess(t, "--dry-run", "--json", "--lock-wait", "10s", "firewall", "--remove", "--backend", "firewalld")
	var r struct {
		Left []string `json:"port_rules_left"`
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || strings.Join(r.Left, " ") != "21115-21117/tcp 21118-21119/tcp" {
		t.Errorf("--remove --json: exit %d %+v %v\n%s%s", code, r, err, out, errOut)
	}
	code, out, errOut = runInProcess(t, "--dry-run", "--lock-wait", "10s", "firewall", "--remove", "--backend", "firewalld")
	for _, want := range []string{
		"rdctl: warning: firewalld's default zone still admits rdctl's ports by port rules (21115-21117/tcp 21118-21119/tcp)",
		"; if nothing else needs them: firewall-cmd --permanent --remove-port=21115-21117/tcp --remove-port=21118-21119/tcp && firewall-cmd --reload\n",
	} {
		if code != 0 || !strings.Contains(errOut, want) {
			t.Errorf("--remove: exit %d, stderr lacks %q\n%s%s", code, want, out, errOut)
		}
	}
	code, out, errOut = runInProcess(t, "--dry-run", "--lock-wait", "10s", "firewall", "--apply", "--proxy", "--backend", "firewalld")
	if want := "still admits the WebSocket ports from anywhere by port rules (21118-21119/tcp)"; code != 0 || !strings.Contains(errOut, want) {
		t.Errorf("--apply --proxy: exit %d, stderr lacks %q\n%s%s", code, want, out, errOut)
	}
	// tailnet-only: rdctl's own zone, where nobody else's rules are
	code, out, errOut = runInProcess(t, "--dry-run", "--lock-wait", "10s", "firewall", "--apply", "--proxy", "--tailnet-only", "--backend", "firewalld")
	if code != 0 || strings.Contains(errOut, "port rules") {
		t.Errorf("--apply --proxy --tailnet-only: exit %d\n%s%s", code, out, errOut)
	}
}
