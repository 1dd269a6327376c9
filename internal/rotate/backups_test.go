package rotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// rotations runs n rotations one second apart and returns the keys they
// replaced, oldest first, and the stamps of their backups.
func rotations(t *testing.T, f *fixture, n int) ([]keys.Pair, []string) {
	t.Helper()
	clock := testNow
	o := f.opts()
	o.Now = func() time.Time { return clock }
	var olds []keys.Pair
	var stamps []string
	for i := 0; i < n; i++ {
		olds = append(olds, f.live(t))
		res, err := Rotate(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		stamps = append(stamps, filepath.Base(res.Backup))
		clock = clock.Add(time.Second)
	}
	return olds, stamps
}

func TestListBackups(t *testing.T) {
	f := newFixture(t)
	if all, err := ListBackups(f.wd, f.sd); all != nil || err != nil {
		t.Errorf("ListBackups without backups/: %+v, %v; want nil, nil", all, err)
	}
	olds, stamps := rotations(t, f, 3)
	if !slices.IsSorted(stamps) {
		t.Fatalf("stamps %q are not in time order", stamps)
	}
	// Restore the first: its backup now holds the live key.
	if _, err := Restore(context.Background(), f.opts(), stamps[0]); err != nil {
		t.Fatal(err)
	}
	// Things that are not backups: a plain file is skipped, a directory
	// without a valid secret is listed as invalid.
	if err := os.WriteFile(filepath.Join(f.sd, backupsDir, "README"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := "00000000T000000Z"
	if err := os.Mkdir(filepath.Join(f.sd, backupsDir, broken), 0o700); err != nil {
		t.Fatal(err)
	}

	all, err := ListBackups(f.wd, f.sd)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range all {
		got = append(got, b.Stamp)
	}
	// The restore backed up the key it replaced under testStamp (the
	// fixture clock has not moved), so that one sorts after the first.
	want := []string{broken, stamps[0], testStamp + "-1", stamps[1], stamps[2]}
	if !slices.Equal(got, want) {
		t.Fatalf("stamps %q, want %q (oldest first)", got, want)
	}
	if b := all[0]; b.Valid || b.Error == "" || b.Live || b.PublicKey != "" {
		t.Errorf("broken backup listed as %+v", b)
	}
	for i, b := range all[1:] {
		if !b.Valid || b.Error != "" || b.Path != filepath.Join(f.sd, backupsDir, b.Stamp) {
			t.Errorf("backup %d: %+v", i, b)
		}
	}
	wantPub := map[string]keys.Pair{stamps[0]: olds[0], stamps[1]: olds[1], stamps[2]: olds[2]}
	for _, b := range all {
		p, ok := wantPub[b.Stamp]
		if !ok {
			continue
		}
		if b.PublicKey != p.PublicBase64() || b.Fingerprint != p.Fingerprint() {
			t.Errorf("backup %s: key %s fingerprint %s, want %s %s", b.Stamp, b.PublicKey, b.Fingerprint, p.PublicBase64(), p.Fingerprint())
		}
		if wantLive := b.Stamp == stamps[0]; b.Live != wantLive {
			t.Errorf("backup %s: live=%v, want %v", b.Stamp, b.Live, wantLive)
		}
	}
}

func TestPrune(t *testing.T) {
	for _, keep := range []int{0, 1, 3, 4, 9} {
		t.Run(fmt.Sprint("keep ", keep), func(t *testing.T) {
			f := newFixture(t)
			_, stamps := rotations(t, f, 4)
			removed, err := Prune(f.wd, f.sd, keep)
			if err != nil {
				t.Fatal(err)
			}
			cut := max(len(stamps)-keep, 0)
			var wantRemoved []string
			for _, s := range stamps[:cut] {
				wantRemoved = append(wantRemoved, filepath.Join(f.sd, backupsDir, s))
			}
			if !slices.Equal(removed, wantRemoved) {
				t.Errorf("removed %q, want %q", removed, wantRemoved)
			}
			for _, p := range wantRemoved {
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s still there (%v)", p, err)
				}
			}
			all, err := ListBackups(f.wd, f.sd)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, b := range all {
				left = append(left, b.Stamp)
			}
			if !slices.Equal(left, stamps[cut:]) {
				t.Errorf("left %q, want %q", left, stamps[cut:])
			}
			f.live(t) // the live pair is untouched
		})
	}
	t.Run("negative keep", func(t *testing.T) {
		f := newFixture(t)
		rotations(t, f, 1)
		if _, err := Prune(f.wd, f.sd, -1); err == nil {
			t.Error("Prune(-1) succeeded")
		}
		if all, _ := ListBackups(f.wd, f.sd); len(all) != 1 {
			t.Errorf("%d backups left, want 1", len(all))
		}
	})
}

// Prune overwrites a secret with zeros before it unlinks it: a descriptor
// opened before the prune reads zeros afterwards.
func TestPruneShredsSecrets(t *testing.T) {
	f := newFixture(t)
	_, stamps := rotations(t, f, 2)
	path := filepath.Join(f.sd, backupsDir, stamps[0], keys.SecretFile)
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	before, err := os.ReadFile(path)
	if err != nil || len(before) == 0 {
		t.Fatalf("backup secret: %d bytes, %v", len(before), err)
	}
	if _, err := Prune(f.wd, f.sd, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pruned secret still linked (%v)", err)
	}
	after := make([]byte, len(before)+1)
	n, _ := fh.ReadAt(after, 0)
	if n != len(before) || !bytes.Equal(after[:n], make([]byte, len(before))) {
		t.Errorf("the unlinked secret holds %q, want %d zero bytes", after[:n], len(before))
	}
}

func TestBackupNow(t *testing.T) {
	f := newFixture(t)
	path, p, err := BackupNow(f.wd, f.sd, me(), "uninstall")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Equal(f.old) || !strings.HasSuffix(path, "-uninstall") || filepath.Dir(path) != filepath.Join(f.sd, backupsDir) {
		t.Errorf("BackupNow: %s %s", path, p.PublicBase64())
	}
	path2, _, err := BackupNow(f.wd, f.sd, me(), "uninstall")
	if err != nil || path2 == path {
		t.Errorf("second BackupNow: %s, %v; want a distinct backup of %s", path2, err, path)
	}
	f.assertBackupOf(t, f.old)

	for _, label := range []string{"", "Upper", "a/b", "-x", strings.Repeat("a", 33)} {
		if _, _, err := BackupNow(f.wd, f.sd, me(), label); err == nil {
			t.Errorf("label %q accepted", label)
		}
	}
	if err := os.Remove(filepath.Join(f.wd, keys.SecretFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := BackupNow(f.wd, f.sd, me(), "uninstall"); !errors.Is(err, ErrNoLiveKey) {
		t.Errorf("BackupNow without a key: %v, want ErrNoLiveKey", err)
	}
}

func TestPurgeKeys(t *testing.T) {
	t.Run("backup holds the live key", func(t *testing.T) {
		f := newFixture(t)
		path, _, err := BackupNow(f.wd, f.sd, me(), "purge")
		if err != nil {
			t.Fatal(err)
		}
		removed, err := PurgeKeys(f.wd, f.sd, filepath.Base(path))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(f.wd, keys.SecretFile), filepath.Join(f.wd, keys.PublicFile)}
		if !slices.Equal(removed, want) {
			t.Errorf("removed %q, want %q", removed, want)
		}
		for _, p := range want {
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s still there", p)
			}
		}
		f.assertBackupOf(t, f.old)
	})
	t.Run("backup of another key", func(t *testing.T) {
		f := newFixture(t)
		_, stamps := rotations(t, f, 1) // backs up the old key; the new one is live
		if _, err := PurgeKeys(f.wd, f.sd, stamps[0]); err == nil {
			t.Fatal("PurgeKeys removed a key it has no backup of")
		}
		f.live(t)
	})
	t.Run("missing backup", func(t *testing.T) {
		f := newFixture(t)
		if _, err := PurgeKeys(f.wd, f.sd, testStamp); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("PurgeKeys: %v, want ErrNotExist", err)
		}
		f.live(t)
	})
}

// FuzzReadJournal: readJournal never panics, returns a journal only when
// it is complete, and reads back what writeJournal writes of it.
func FuzzReadJournal(f *testing.F) {
	f.Add([]byte(`{"format":1,"op":"rotate","stamp":"20260314T140926Z","old_public_key":"a","new_public_key":"b","pid":1}`))
	f.Add([]byte(`{"format":1,"stamp":"s","old_public_key":"a"}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`null`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := safefs.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := os.WriteFile(filepath.Join(dir, JournalFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := readJournal(d)
		if err != nil {
			if j != nil {
				t.Fatalf("journal %+v with error %v", j, err)
			}
			return
		}
		if j == nil {
			t.Fatal("no journal and no error for an existing file")
		}
		if j.Format != 1 || j.Stamp == "" || j.OldPublicKey == "" || j.NewPublicKey == "" {
			t.Fatalf("incomplete journal accepted: %+v", j)
		}
		if err := writeJournal(d, j); err != nil {
			t.Fatal(err)
		}
		again, err := readJournal(d)
		if err != nil || *again != *j {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, j)
		}
	})
}
