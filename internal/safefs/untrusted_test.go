package safefs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Attacks on a directory another user can write (hbbs's working directory):
// each file rdctl reads, shreds or repairs there may be a FIFO, a sparse
// huge file or a hard link to a file elsewhere. Every operation refuses
// with a typed error, returns promptly, and leaves the canary outside the
// directory as it was.
func TestUntrustedFilesRefused(t *testing.T) {
	const canaryData = "canary: root's file outside the directory"
	ops := map[string]func(d *Dir) error{
		"ReadUntrusted": func(d *Dir) error { _, _, err := d.ReadUntrusted("f", 4096); return err },
		"Shred":         func(d *Dir) error { return d.Shred("f", 4096) },
		"FixOwnerMode": func(d *Dir) error {
			_, err := d.FixOwnerMode("f", FileOptions{Mode: 0o600, UID: os.Getuid(), GID: os.Getgid()})
			return err
		},
	}
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, dir, canary string)
		want  map[string]error // per op; nil means it must succeed
	}{
		{"fifo", func(t *testing.T, dir, _ string) {
			noErr(t, syscall.Mkfifo(filepath.Join(dir, "f"), 0o666))
		}, map[string]error{"ReadUntrusted": ErrNotRegular, "Shred": ErrNotRegular, "FixOwnerMode": ErrNotRegular}},
		{"sparse 1 TiB", func(t *testing.T, dir, _ string) {
			f, err := os.Create(filepath.Join(dir, "f"))
			noErr(t, err)
			noErr(t, f.Truncate(1<<40))
			noErr(t, f.Close())
		}, map[string]error{"ReadUntrusted": ErrTooLarge, "Shred": ErrTooLarge}},
		{"hard link to a file outside", func(t *testing.T, dir, canary string) {
			noErr(t, os.Link(canary, filepath.Join(dir, "f")))
		}, map[string]error{"ReadUntrusted": ErrHardLink, "Shred": ErrHardLink, "FixOwnerMode": ErrHardLink}},
		{"symlink to a file outside", func(t *testing.T, dir, canary string) {
			noErr(t, os.Symlink(canary, filepath.Join(dir, "f")))
		}, map[string]error{"ReadUntrusted": ErrSymlink, "Shred": ErrSymlink, "FixOwnerMode": ErrSymlink}},
	} {
		for op, do := range ops {
			t.Run(tc.name+"/"+op, func(t *testing.T) {
				dir, outside := t.TempDir(), t.TempDir()
				canary := filepath.Join(outside, "canary")
				noErr(t, os.WriteFile(canary, []byte(canaryData), 0o640))
				tc.plant(t, dir, canary)
				d := openT(t, dir)
				done := make(chan error, 1)
				go func() { done <- do(d) }()
				var err error
				select {
				case err = <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("hangs")
				}
				want := tc.want[op]
				switch {
				case want == nil && err != nil:
					t.Errorf("%v, want success", err)
				case want != nil && !errors.Is(err, want):
					t.Errorf("%v, want %v", err, want)
				}
				if b, err := os.ReadFile(canary); err != nil || string(b) != canaryData {
					t.Errorf("canary: %q, %v", b, err)
				}
				if fi, err := os.Stat(canary); err != nil || fi.Mode().Perm() != 0o640 {
					t.Errorf("canary mode changed: %v", err)
				}
			})
		}
	}
}

// Shred zeroes a file in chunks, fsyncs and unlinks it; a file of exactly
// max bytes is still shredded, one byte more is refused.
func TestShred(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	data := make([]byte, 10000)
	for i := range data {
		data[i] = 'k'
	}
	noErr(t, os.WriteFile(filepath.Join(dir, "f"), data, 0o600))
	// Keep a descriptor to see the bytes after the unlink.
	f, err := os.Open(filepath.Join(dir, "f"))
	noErr(t, err)
	defer f.Close()
	if err := d.Shred("f", int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("not unlinked: %v", err)
	}
	got := make([]byte, len(data)+1)
	n, _ := f.ReadAt(got, 0)
	if n != len(data) {
		t.Fatalf("read %d bytes", n)
	}
	for i, b := range got[:n] {
		if b != 0 {
			t.Fatalf("byte %d is %q, not zero", i, b)
		}
	}
	noErr(t, os.WriteFile(filepath.Join(dir, "g"), data, 0o600))
	if err := d.Shred("g", int64(len(data))-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over max: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "g")); string(b) != string(data) {
		t.Error("a refused file was changed")
	}
	if err := d.Shred("missing", 10); err != nil {
		t.Errorf("missing: %v", err)
	}
}
