package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/systemd"
)

// What hbbs 1.1.16 makes of id_ed25519 (measured on it), as doctor reports
// it: an unpadded secret is a working key; halves that disagree or a
// directory start a server that enforces nothing, an error of its own.
func TestKeyFileVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mangle      func(t *testing.T, secretPath string, secret []byte)
		secretOK    bool
		enforcedOK  bool
		contains    string // in the failed hbbs-enforces-key or secret-key message
		secretSkips bool
	}{
		{name: "unpadded", mangle: func(t *testing.T, p string, secret []byte) {
			noErr(t, os.WriteFile(p, secret[:86], 0o600))
		}, secretOK: true, enforcedOK: true},
		{name: "partial padding and a newline", mangle: func(t *testing.T, p string, secret []byte) {
			noErr(t, os.WriteFile(p, append(secret[:87:87], '\n'), 0o600))
		}, secretOK: true, enforcedOK: true},
		{name: "halves disagree", mangle: func(t *testing.T, p string, secret []byte) {
			q, _ := keys.Generate(nil)
			noErr(t, os.WriteFile(p, append(secret[:43:43], q.SecretFileBytes()[43:]...), 0o600))
		}, contains: "enforces no key at all"},
		{name: "directory", mangle: func(t *testing.T, p string, secret []byte) {
			noErr(t, os.Remove(p))
			noErr(t, os.Mkdir(p, 0o700))
		}, contains: "enforces no key at all"},
		{name: "malformed", mangle: func(t *testing.T, p string, secret []byte) {
			noErr(t, os.WriteFile(p, secret[:85], 0o600))
		}, enforcedOK: true, contains: "Fatal error: malformed private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, rec := image(t)
			p := filepath.Join(root, rec.WorkingDir, keys.SecretFile)
			secret, err := os.ReadFile(p)
			noErr(t, err)
			tc.mangle(t, p, secret)
			cs := run(root, rec)
			sk, _ := byID(cs, "secret-key")
			en, ok := byID(cs, adopt.FindingHBBSEnforcesKey)
			if !ok {
				t.Fatalf("no %s check in %v", adopt.FindingHBBSEnforcesKey, ids(cs))
			}
			if sk.OK != tc.secretOK || en.OK != tc.enforcedOK {
				t.Errorf("secret-key ok=%v (%s), %s ok=%v (%s); want %v, %v", sk.OK, sk.Message, en.ID, en.OK, en.Message, tc.secretOK, tc.enforcedOK)
			}
			if !en.OK && en.Severity != SeverityError {
				t.Errorf("%s severity %s, want error", en.ID, en.Severity)
			}
			if tc.contains != "" && !strings.Contains(sk.Message+en.Message, tc.contains) {
				t.Errorf("no %q in %q / %q", tc.contains, sk.Message, en.Message)
			}
			if tc.secretOK && len(problems(cs)) > 0 {
				t.Errorf("problems with a key hbbs loads: %v", problems(cs))
			}
		})
	}
}

// The Debian units log to files: hbbs prints everything on stdout, the
// "Fatal error" line too (measured on 1.1.16), so doctor points there, not only
// at the journal.
func TestUnitsRunningNamesLogFile(t *testing.T) {
	root := t.TempDir()
	unit := "[Service]\nExecStart=/usr/bin/%s\nWorkingDirectory=/var/lib/rustdesk-server/\nUser=\nStandardOutput=append:/var/log/rustdesk-server/%s.log\nStandardError=append:/var/log/rustdesk-server/%s.error\n"
	writeFile(t, root, "/lib/systemd/system/rustdesk-hbbs.service", strings.ReplaceAll(unit, "%s", "hbbs"), 0o644)
	writeFile(t, root, "/lib/systemd/system/rustdesk-hbbr.service", strings.ReplaceAll(unit, "%s", "hbbr"), 0o644)
	rec := &deploy.Record{Format: 1, Backend: "systemd", Origin: "debian", IDHost: "203.0.113.9", Relay: "203.0.113.9:21117",
		WorkingDir: "/var/lib/rustdesk-server", ServiceUser: "root", HBBSUnit: "rustdesk-hbbs.service", HBBRUnit: "rustdesk-hbbr.service"}
	in := Input{Root: root, Record: rec, Accounts: Accounts{Root: root}, BackupOwner: me()}
	var cs checks
	in.logs = in.unitChecks(&cs)
	in.Root = "" // the live checks, on the units just read
	in.Units = []systemd.UnitState{{Name: "rustdesk-hbbs.service", ActiveState: "failed", SubState: "failed", Result: "exit-code"},
		{Name: "rustdesk-hbbr.service", ActiveState: "active", SubState: "running"}}
	in.liveChecks(&cs)
	c := mustFail(t, cs, "units-running", false, "/var/log/rustdesk-server/hbbs.log")
	if strings.Contains(c.Message, ".error") {
		t.Errorf("points at the error log, where hbbs writes nothing: %s", c.Message)
	}
}
