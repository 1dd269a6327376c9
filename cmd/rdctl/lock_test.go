package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/safefs"
)

// TestLockDirUnsafe: a lock directory somebody else could control (here
// world-writable) is refused with exit 1 and a hint, and nothing is
// installed.
func TestLockDirUnsafe(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	root := filepath.Join(tmp, "img")
	lock, err := safefs.LockPath(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Dir(lock), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(lock), 0o1777); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runInProcess(t, "--root", root, "install", "systemd", "--relay", "rd.example.com")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	if !strings.Contains(stderr, "rdctl: error: unsafe lock") || !strings.Contains(stderr, "rdctl: hint: remove ") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/hbbs.service")); err == nil {
		t.Error("installed without the lock")
	}
}
