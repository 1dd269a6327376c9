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
// firewall. The dry run runs nothing (the fake's directory, where the log
// would appear, is unchanged); the real run (root only: it takes the live
// lock, /run/rdctl/rdctl.lock) reports the same steps and runs exactly the
// commands. internal/firewall tests the same with a fake Runner, as any user.
func TestFirewallApplyPlan(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "ran.log")
	fake := "#!/bin/sh\necho \"ufw $*\" >> " + log + "\necho 'Rule added'\n"
	if err := os.WriteFile(filepath.Join(dir, "ufw"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	args := []string{"--lock-wait", "10s", "firewall", "--apply", "--backend", "ufw"}
	want := []string{"ufw allow 21115:21119/tcp comment rdctl: RustDesk server", "ufw allow 21116/udp comment rdctl: RustDesk server"}

	if os.Geteuid() != 0 {
		code, out, errOut := runInProcess(t, append([]string{"--dry-run", "--json"}, args...)...)
		r := planOf(t, out)
		if code != 0 || !r.DryRun || len(r.Steps) != 2 || r.Steps[0].Target != want[0] {
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
	if d.Applied || len(d.Results) != 0 || !r.Applied || len(r.Results) != 2 {
		t.Errorf("dry %+v\nreal %+v", d, r)
	}
	for i, s := range r.Steps {
		if s.Action != "run" || s.Target != want[i] || r.Results[i].Command != want[i] {
			t.Errorf("step %d: %+v, result %+v", i, s, r.Results[i])
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
