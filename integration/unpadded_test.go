//go:build integration

package integration

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/probe"
)

// TestSystemdUnpaddedKey runs a server whose id_ed25519 has no padding (86
// characters), which the real hbbs 1.1.16 loads and serves, under the
// Debian package's units in a real systemd: adopt, status, doctor, check
// and rotate all take it as the live key, and rotate backs it up byte for
// byte and writes the new key padded.
func TestSystemdUnpaddedKey(t *testing.T) {
	m := serverMachine(t)
	debianInstall(t, m)
	pair, err := keys.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(pair.SecretFileBytes()))
	if err != nil {
		t.Fatal(err)
	}
	unpadded := base64.RawStdEncoding.EncodeToString(raw)
	if len(unpadded) != 86 {
		t.Fatalf("unpadded secret is %d characters", len(unpadded))
	}
	pub := pair.PublicBase64()
	m.MustExec(t, "mkdir", "-p", "-m", "0700", "/var/lib/rustdesk-server")
	m.MustExec(t, "mkdir", "-p", "/var/log/rustdesk-server")
	if err := m.WriteFile("/var/lib/rustdesk-server/id_ed25519", []byte(unpadded), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFile("/var/lib/rustdesk-server/id_ed25519.pub", []byte(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	m.MustExec(t, "systemctl", "daemon-reload")
	m.MustExec(t, "systemctl", "enable", "--now", "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	m.MustExec(t, "sh", "-c", "for i in $(seq 100); do ss -ltn | grep -q ':21116 ' && exit 0; sleep 0.05; done; exit 1")
	if st := keyStatus(t, m, pub); st != probe.KeyMatch {
		t.Fatalf("the stand-in does not serve the unpadded key: %s", st)
	}

	// An IP literal: nothing in this test may ask a resolver.
	mustRdctl(t, m, "adopt", "--id-host", "127.0.0.1")

	var status struct {
		Key struct {
			Valid     bool   `json:"valid"`
			PublicKey string `json:"public_key"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(mustRdctl(t, m, "--json", "status")), &status); err != nil {
		t.Fatal(err)
	}
	if !status.Key.Valid || status.Key.PublicKey != pub {
		t.Errorf("status: %+v, want the live key %s", status.Key, pub)
	}

	// doctor still flags the Debian units running as root (exit 1), but the
	// key is good and enforced.
	out, errOut, _ := rdctlIn(t, m, nil, "--json", "doctor")
	var doc struct {
		Checks []struct {
			ID string `json:"id"`
			OK bool   `json:"ok"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("doctor: %v\n%s\n%s", err, out, errOut)
	}
	ok := map[string]bool{}
	for _, c := range doc.Checks {
		ok[c.ID] = c.OK
	}
	for _, id := range []string{"secret-key", "hbbs-enforces-key"} {
		if !ok[id] {
			t.Errorf("doctor: %s not ok\n%s", id, out)
		}
	}

	var check struct {
		Targets []struct {
			KeyStatus string `json:"key_status"`
		} `json:"targets"`
	}
	out, errOut, _ = rdctlIn(t, m, nil, "--json", "check")
	if err := json.Unmarshal([]byte(out), &check); err != nil || len(check.Targets) != 1 || check.Targets[0].KeyStatus != "match" {
		t.Errorf("check: %v %+v\n%s\n%s", err, check, out, errOut)
	}

	var rot struct {
		NewPublicKey string `json:"new_public_key"`
		Backup       string `json:"backup"`
		Verified     bool   `json:"verified"`
	}
	if err := json.Unmarshal([]byte(mustRdctl(t, m, "--json", "rotate")), &rot); err != nil {
		t.Fatal(err)
	}
	if !rot.Verified || rot.NewPublicKey == pub {
		t.Fatalf("rotate: %+v", rot)
	}
	if st := keyStatus(t, m, rot.NewPublicKey); st != probe.KeyMatch {
		t.Errorf("after rotate hbbs serves %s for the new key", st)
	}
	if got := m.MustExec(t, "cat", rot.Backup+"/id_ed25519"); got != unpadded {
		t.Errorf("the backup is not the original bytes: %q", got)
	}
	if got := m.MustExec(t, "cat", "/var/lib/rustdesk-server/id_ed25519"); len(got) != 88 || !strings.HasSuffix(got, "==") {
		t.Errorf("the new key is not written padded: %d characters", len(got))
	}
}
