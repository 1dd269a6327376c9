package main

import (
	"os"
	"path/filepath"
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
