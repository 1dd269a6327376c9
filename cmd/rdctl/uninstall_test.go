package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
)

// Every key that was ever live is still in a backup after uninstall
// --purge-keys --yes; the staged next key stays too.
func TestUninstallPurgeNeverLosesAKey(t *testing.T) {
	root, wd := installTree(t)
	var seen []string
	seen = append(seen, livePub(t, wd))
	for i := 0; i < 2; i++ {
		if code, _, e := runInProcess(t, "-q", "--root", root, "rotate"); code != 0 {
			t.Fatal(e)
		}
		seen = append(seen, livePub(t, wd))
	}
	if code, _, e := runInProcess(t, "-q", "--root", root, "rotate", "--stage"); code != 0 {
		t.Fatal(e)
	}
	staged, _ := rotate.Staged(stateDirIn(root))
	code, out, errOut := runInProcess(t, "--root", root, "uninstall", "--purge-keys", "--yes")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "deleted the key pair; the backups in ") || !strings.Contains(errOut, "not a guarantee") {
		t.Errorf("output: %s\n%s", out, errOut)
	}
	for _, f := range []string{keys.SecretFile, keys.PublicFile} {
		if _, err := os.Lstat(filepath.Join(wd, f)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", f, err)
		}
	}
	all, err := rotate.ListBackups(wd, stateDirIn(root))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, b := range all {
		if !b.Valid {
			t.Errorf("backup %s: %s", b.Stamp, b.Error)
		}
		have[b.PublicKey] = true
	}
	for _, pub := range seen {
		if !have[pub] {
			t.Errorf("key %s is in no backup", pub)
		}
	}
	if got, _ := rotate.Staged(stateDirIn(root)); !got.Equal(staged) {
		t.Error("the staged key was removed")
	}
}

// A secret rdctl cannot parse is never purged: there is no backup of it.
func TestUninstallPurgeRefusesUnusableKey(t *testing.T) {
	root, wd := installTree(t)
	bad := []byte("not a key")
	if err := os.WriteFile(filepath.Join(wd, keys.SecretFile), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runInProcess(t, "--root", root, "uninstall", "--purge-keys", "--yes")
	if code != 1 || !strings.Contains(errOut, "backing up the key before uninstalling") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(wd, keys.SecretFile)); string(got) != string(bad) {
		t.Fatal("the unusable secret was touched")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/hbbs.service")); err != nil {
		t.Error("units removed although uninstall refused")
	}
	// without --purge-keys the files simply stay
	code, _, errOut = runInProcess(t, "--root", root, "uninstall")
	if code != 0 || !strings.Contains(errOut, "the key files stay as they are") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(wd, keys.SecretFile)); string(got) != string(bad) {
		t.Fatal("the unusable secret was touched")
	}
}

// installedWithBinaries installs into an image tree with a release
// directory of stand-in ELF files, so the record lists the binaries.
func installedWithBinaries(t *testing.T) string {
	t.Helper()
	rel := t.TempDir()
	for _, n := range []string{"hbbs", "hbbr"} {
		if err := os.WriteFile(filepath.Join(rel, n), []byte("\x7fELF stand-in "+n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(t.TempDir(), "img")
	mustRun(t, "-q", "install", "systemd", "--root", root, "--relay", "rd.example.com", "--binaries", rel)
	return root
}

// uninstall --purge on an image tree removes the binaries install wrote,
// not one replaced since, and keeps the keys; the record lists them.
func TestUninstallPurgeImage(t *testing.T) {
	root := installedWithBinaries(t)
	rec, err := os.ReadFile(filepath.Join(root, "etc/rdctl/rdctl.toml"))
	if err != nil || !strings.Contains(string(rec), "[[installed_binaries]]\npath = '/usr/local/bin/hbbr'\nsha256 = '") {
		t.Fatalf("record: %v\n%s", err, rec)
	}
	hbbs := filepath.Join(root, "usr/local/bin/hbbs")
	if err := os.WriteFile(hbbs, []byte("\x7fELF replaced"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runInProcess(t, "--root", root, "--json", "uninstall", "--purge")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var j struct {
		Removed    []string `json:"removed"`
		Kept       []string `json:"kept"`
		PurgedKeys bool     `json:"purged_keys"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	hbbr := filepath.Join(root, "usr/local/bin/hbbr")
	if !slices.Contains(j.Removed, hbbr) || slices.Contains(j.Removed, hbbs) || j.PurgedKeys || len(j.Kept) != 1 {
		t.Errorf("%+v", j)
	}
	if !strings.Contains(errOut, "usr/local/bin/hbbs is not the binary rdctl installed (its sha256 differs): left in place") {
		t.Errorf("stderr: %s", errOut)
	}
	if _, err := os.Stat(hbbs); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/rustdesk/id_ed25519")); err != nil {
		t.Errorf("the key went: %v", err)
	}
}
