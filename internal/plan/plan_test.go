package plan

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rdctl/rdctl/internal/safefs"
)

func TestDryRunWritesNothingAndApplyOnce(t *testing.T) {
	root := t.TempDir()
	mk := func() *Plan {
		var p Plan
		p.Add(&Mkdir{Path: filepath.Join(root, "a/state"), Mode: 0o700, UID: safefs.KeepOwner, GID: safefs.KeepOwner},
			&WriteFile{Path: filepath.Join(root, "a/b/file"), Data: []byte("x"), Options: safefs.FileOptions{Mode: 0o644, UID: os.Getuid(), GID: os.Getgid()}},
			&Symlink{Path: filepath.Join(root, "a/wants/l"), LinkTarget: "/etc/x"})
		return &p
	}
	res, err := mk().Run(true)
	if err != nil || Changed(res) != 3 {
		t.Fatalf("dry run: %v, %d changes", err, Changed(res))
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Fatal("dry run wrote something")
	}
	p := mk()
	if res, err = p.Run(false); err != nil || Changed(res) != 3 {
		t.Fatalf("apply: %v %d", err, Changed(res))
	}
	if _, err := p.Run(false); err != ErrUsed {
		t.Fatalf("second Run: %v", err)
	}
	if res, err = mk().Run(false); err != nil || Changed(res) != 0 {
		t.Fatalf("re-apply: %v %d", err, Changed(res))
	}
	fi, _ := os.Stat(filepath.Join(root, "a/state"))
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	if err := os.Chmod(filepath.Join(root, "a/state"), 0o755); err != nil {
		t.Fatal(err)
	}
	if res, _ = mk().Run(true); Changed(res) != 1 {
		t.Fatalf("mode drift not pending: %d", Changed(res))
	}
}
