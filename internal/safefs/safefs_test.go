package safefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// noErr stops the test on a setup step's error, so that a step that failed
// cannot pass for the behaviour under test.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func openT(t *testing.T, dir string) *Dir {
	t.Helper()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func self() FileOptions { return FileOptions{Mode: 0o600, UID: os.Getuid(), GID: os.Getgid()} }

func TestWriteFileAtomicModeAndUnchanged(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	changed, err := d.WriteFile("f", []byte("one"), self())
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "f"))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	changed, err = d.WriteFile("f", []byte("one"), self())
	if err != nil || changed {
		t.Fatalf("identical rewrite: changed=%v err=%v", changed, err)
	}
	o := self()
	o.Mode = 0o644
	if changed, _ = d.WriteFile("f", []byte("one"), o); !changed {
		t.Fatal("mode change not reported")
	}
	if changed, _ = d.WriteFile("f", []byte("two"), o); !changed {
		t.Fatal("content change not reported")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "f"))
	if string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("leftover files: %v", entries)
	}
}

func TestWriteFileUmaskDoesNotLeak(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	d := openT(t, t.TempDir())
	d.WriteFile("s", []byte("x"), self())
	info, _ := d.Lstat("s")
	if info.Mode.Perm() != 0o600 {
		t.Fatalf("mode %o with umask 0", info.Mode.Perm())
	}
}

func TestRefusesSymlinkAndNonRegular(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "target")
	noErr(t, os.WriteFile(outside, []byte("keep"), 0o644))
	noErr(t, os.Symlink(outside, filepath.Join(dir, "link")))
	noErr(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	noErr(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	d := openT(t, dir)

	if _, err := d.WriteFile("link", []byte("evil"), self()); !errors.Is(err, ErrSymlink) {
		t.Errorf("write over symlink: %v", err)
	}
	if _, _, err := d.ReadFile("link", 100); !errors.Is(err, ErrSymlink) {
		t.Errorf("read through symlink: %v", err)
	}
	if _, err := d.FixOwnerMode("link", self()); !errors.Is(err, ErrSymlink) {
		t.Errorf("chmod through symlink: %v", err)
	}
	if _, err := d.WriteFile("sub", []byte("x"), self()); !errors.Is(err, ErrNotRegular) {
		t.Errorf("write over dir: %v", err)
	}
	if _, _, err := d.ReadFile("fifo", 100); !errors.Is(err, ErrNotRegular) {
		t.Errorf("read fifo: %v", err)
	}
	if err := d.Rename("sub", "link"); !errors.Is(err, ErrSymlink) {
		t.Errorf("rename over symlink: %v", err)
	}
	if _, err := d.Sub("link"); err == nil {
		t.Errorf("Sub followed a symlink")
	}
	b, _ := os.ReadFile(outside)
	fi, _ := os.Stat(outside)
	if string(b) != "keep" || fi.Mode().Perm() != 0o644 {
		t.Fatalf("target outside was touched: %q %o", b, fi.Mode().Perm())
	}
	if _, err := OpenDir(filepath.Join(dir, "link")); err == nil {
		t.Fatal("OpenDir followed a symlink")
	}
}

func TestCreateExclusiveNeverOverwrites(t *testing.T) {
	d := openT(t, t.TempDir())
	if err := d.CreateExclusive("b", []byte("1"), self()); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateExclusive("b", []byte("2"), self()); err == nil {
		t.Fatal("overwrote")
	}
	b, _, _ := d.ReadFile("b", 10)
	if string(b) != "1" {
		t.Fatalf("content %q", b)
	}
}

func TestFixOwnerMode(t *testing.T) {
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, "k"), []byte("x"), 0o644))
	d := openT(t, dir)
	changed, err := d.FixOwnerMode("k", self())
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if changed, _ = d.FixOwnerMode("k", self()); changed {
		t.Fatal("second fix reported a change")
	}
	fi, _ := os.Stat(filepath.Join(dir, "k"))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	tmp, err := d.WriteTemp("id_ed25519", []byte("x"), self())
	if err != nil {
		t.Fatal(err)
	}
	noErr(t, os.WriteFile(filepath.Join(dir, "keep"), nil, 0o600))
	removed, err := d.RemoveStaleTemps()
	if err != nil || len(removed) != 1 || removed[0] != tmp {
		t.Fatalf("removed %v err %v", removed, err)
	}
	names, _ := d.Names()
	if strings.Join(names, ",") != "keep" {
		t.Fatalf("names %v", names)
	}
}

// In a directory another user can fill, a listing reads no more than it
// is allowed, and RemoveStaleTemps removes (and reports) a bounded number
// per call, the others' files untouched.
func TestListingsBounded(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	for i := range 300 {
		noErr(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), nil, 0o600))
	}
	if names, err := d.NamesAtMost(300); err != nil || len(names) != 300 || names[0] != "f000" || names[299] != "f299" {
		t.Fatalf("NamesAtMost(300): %d names, %v", len(names), err)
	}
	if _, err := d.NamesAtMost(299); !errors.Is(err, ErrTooManyEntries) {
		t.Fatalf("NamesAtMost(299) = %v, want ErrTooManyEntries", err)
	}

	for i := range MaxStaleTemps + 10 {
		noErr(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf(".k%03d%s%d", i, TempMarker, i)), nil, 0o600))
	}
	var counts []int
	for range 3 {
		removed, err := d.RemoveStaleTemps()
		noErr(t, err)
		if !slices.IsSorted(removed) {
			t.Errorf("removed %v, not sorted", removed)
		}
		counts = append(counts, len(removed))
	}
	if !slices.Equal(counts, []int{MaxStaleTemps, 10, 0}) {
		t.Errorf("removed %v per call, want %d, 10, 0", counts, MaxStaleTemps)
	}
	if names, err := d.Names(); err != nil || len(names) != 300 {
		t.Errorf("%d names left, want the 300 others' files: %v", len(names), err)
	}
}

func TestSymlinkIdempotentAndRefusesFile(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	if c, err := d.Symlink("/etc/x", "l"); err != nil || !c {
		t.Fatal(c, err)
	}
	if c, err := d.Symlink("/etc/x", "l"); err != nil || c {
		t.Fatal("second symlink changed", c, err)
	}
	noErr(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	if _, err := d.Symlink("/etc/x", "f"); err == nil {
		t.Fatal("replaced a regular file with a symlink")
	}
}

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "lock", "rdctl.lock")
	unlock, err := Lock(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Lock(path, 150*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("lock wait not bounded")
	}
	unlock()
	unlock2, err := Lock(path, time.Second)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}

// TestMkdirAllCurrentAndRoot: the directory of a bare file name is ".", of
// a file at the root "/"; both name no entry to create, only to open (a
// file written to the current directory used to fail with `invalid file
// name "."`).
func TestMkdirAllCurrentAndRoot(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, p := range []string{".", "/", filepath.Dir("file")} {
		d, err := MkdirAll(p, 0o755)
		if err != nil {
			t.Errorf("MkdirAll(%q): %v", p, err)
			continue
		}
		d.Close()
	}
	d, err := MkdirAll(".", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.WriteFile("f", []byte("x"), self()); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(data) != "x" {
		t.Fatalf("%q, %v", data, err)
	}
}

// TestLockRefusesUnsafe: whatever another user could have put where the
// lock goes is refused with ErrUnsafeLock, and nothing is created through
// it.
func TestLockRefusesUnsafe(t *testing.T) {
	other := os.Geteuid() + 1
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) // dir is the lock directory
		root  bool                           // needs root (chown)
	}{
		{"dir is a symlink", func(t *testing.T, dir string) {
			target := filepath.Join(filepath.Dir(dir), "elsewhere")
			noErr(t, os.Mkdir(target, 0o700))
			noErr(t, os.Symlink(target, dir))
		}, false},
		{"dir is a file", func(t *testing.T, dir string) {
			noErr(t, os.WriteFile(dir, nil, 0o600))
		}, false},
		{"dir world-writable", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(dir, 0o700))
			noErr(t, os.Chmod(dir, 0o1777))
		}, false},
		{"dir group-writable", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(dir, 0o700))
			noErr(t, os.Chmod(dir, 0o770))
		}, false},
		{"dir owned by another user", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(dir, 0o700))
			noErr(t, os.Chown(dir, other, other))
		}, true},
		{"lock is a directory", func(t *testing.T, dir string) {
			noErr(t, os.MkdirAll(filepath.Join(dir, "rdctl.lock"), 0o700))
		}, false},
		{"lock is a symlink", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(dir, 0o700))
			noErr(t, os.Symlink(filepath.Join(filepath.Dir(dir), "victim"), filepath.Join(dir, "rdctl.lock")))
		}, false},
		{"lock is a FIFO", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(dir, 0o700))
			noErr(t, unix.Mkfifo(filepath.Join(dir, "rdctl.lock"), 0o600))
		}, false},
		{"lock owned by another user", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(dir, 0o700))
			noErr(t, os.WriteFile(filepath.Join(dir, "rdctl.lock"), nil, 0o600))
			noErr(t, os.Chown(filepath.Join(dir, "rdctl.lock"), other, other))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			base := t.TempDir()
			dir := filepath.Join(base, "rdctl")
			tt.setup(t, dir)
			unlock, err := Lock(filepath.Join(dir, "rdctl.lock"), 0)
			if err == nil {
				unlock()
				t.Fatal("locked anyway")
			}
			var unsafe *UnsafeLockError
			if !errors.As(err, &unsafe) || !errors.Is(err, ErrUnsafeLock) {
				t.Fatalf("error %v (%T), want *UnsafeLockError", err, err)
			}
			for _, p := range []string{filepath.Join(base, "victim"), filepath.Join(base, "elsewhere", "rdctl.lock")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was created through the lock path", p)
				}
			}
		})
	}
}

// TestLockCreatesPrivateDir: a missing lock directory is created 0700, the
// lock file 0600.
func TestLockCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "rdctl")
	unlock, err := Lock(filepath.Join(dir, "rdctl.lock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "rdctl.lock"): 0o600} {
		fi, err := os.Lstat(p)
		noErr(t, err)
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s has mode %04o, want at most %04o", p, got, want)
		}
	}
}

// TestLockPath: the live lock is in /run/rdctl; an image tree's is outside
// the tree, the same for every spelling of the tree's path, and different
// for different trees.
func TestLockPath(t *testing.T) {
	live, err := LockPath("")
	noErr(t, err)
	if live != "/run/rdctl/rdctl.lock" {
		t.Errorf("live lock %q", live)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	root := filepath.Join(tmp, "img")
	a, err := LockPath(root)
	noErr(t, err)
	b, err := LockPath(root + "/./")
	noErr(t, err)
	t.Chdir(tmp)
	c, err := LockPath("img")
	noErr(t, err)
	d, err := LockPath(filepath.Join(tmp, "img2"))
	noErr(t, err)
	if a != b || a != c {
		t.Errorf("one tree, several locks: %q %q %q", a, b, c)
	}
	if a == d {
		t.Errorf("two trees share lock %q", a)
	}
	if strings.HasPrefix(a, root+"/") {
		t.Errorf("lock %q is inside the tree", a)
	}
	if want := filepath.Join(tmp, "rdctl-"+strconv.Itoa(os.Geteuid())); filepath.Dir(a) != want {
		t.Errorf("lock %q not in %q", a, want)
	}
	// A runtime directory of the caller's own is preferred; one of
	// somebody else's (sudo keeps the user's) is not used.
	rt := filepath.Join(tmp, "rt")
	noErr(t, os.Mkdir(rt, 0o700))
	t.Setenv("XDG_RUNTIME_DIR", rt)
	e, err := LockPath(root)
	noErr(t, err)
	if filepath.Dir(e) != filepath.Join(rt, "rdctl") {
		t.Errorf("lock %q not in the runtime dir", e)
	}
	if os.Geteuid() == 0 {
		noErr(t, os.Chown(rt, 12345, 12345))
		f, err := LockPath(root)
		noErr(t, err)
		if strings.HasPrefix(f, rt) {
			t.Errorf("lock %q in another user's runtime dir", f)
		}
	}
	unlock, err := Lock(a, 0)
	noErr(t, err)
	unlock()
}
