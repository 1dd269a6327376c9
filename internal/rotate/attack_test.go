package rotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// The service user owns the working directory. These are the attacks an
// attack run found; each checks that root's state and a canary file outside
// the working directory stay as they were.

const canaryData = "root's file, outside the working directory"

func plantCanary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(p, []byte(canaryData), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertCanary(t *testing.T, p string) {
	t.Helper()
	if b, err := os.ReadFile(p); err != nil || string(b) != canaryData {
		t.Errorf("canary changed: %q, %v", b, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("canary mode changed (%v)", err)
	}
}

func writePair(t *testing.T, dir string, p keys.Pair) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{keys.SecretFile: p.SecretFileBytes(), keys.PublicFile: p.PublicFileBytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// within runs fn and fails the test if it does not return in 5 s (a FIFO
// opened without O_NONBLOCK blocks forever).
func within(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("hangs")
		return nil
	}
}

// A staged pair the service user plants is never committed: in the
// working directory it is not where rdctl looks, and in the state
// directory without Stage's record it is refused.
func TestPlantedStagedNotCommitted(t *testing.T) {
	evil := pairFromByte(t, 0x66)
	for _, where := range []string{"working dir", "state dir without record", "state dir with forged record"} {
		t.Run(where, func(t *testing.T) {
			f := newFixture(t)
			canary := plantCanary(t)
			switch where {
			case "working dir":
				writePair(t, filepath.Join(f.wd, stagedDir), evil)
			default:
				if _, _, err := Stage(f.opts()); err != nil {
					t.Fatal(err)
				}
				writePair(t, filepath.Join(f.sd, stagedDir), evil)
				if where == "state dir without record" {
					os.Remove(filepath.Join(f.sd, stagedDir, stagedRecordFile))
				}
			}
			_, err := Commit(context.Background(), f.opts())
			var untrusted *UntrustedStagedError
			switch where {
			case "working dir":
				if !errors.Is(err, ErrNothingStaged) {
					t.Errorf("Commit: %v, want ErrNothingStaged", err)
				}
			default:
				if !errors.As(err, &untrusted) {
					t.Errorf("Commit: %v, want *UntrustedStagedError", err)
				}
			}
			if _, err := Check(f.wd, f.sd, OpCommit, ""); err == nil {
				t.Error("Check: the planted pair passes")
			}
			f.assertLive(t, f.old, "after a planted staged pair")
			if len(f.rt.calls) != 0 {
				t.Errorf("services touched: %v", f.rt.calls)
			}
			assertCanary(t, canary)
		})
	}
}

// Stage replaces a staged pair it has no record of rather than keep it.
func TestStageReplacesUnrecordedPair(t *testing.T) {
	f := newFixture(t)
	evil := pairFromByte(t, 0x66)
	writePair(t, filepath.Join(f.sd, stagedDir), evil)
	if err := os.Chmod(f.sd, 0o700); err != nil {
		t.Fatal(err)
	}
	p, created, err := Stage(f.opts())
	if err != nil || !created || p.Equal(evil) {
		t.Fatalf("Stage: %s created=%v %v; want a new pair", p.PublicBase64(), created, err)
	}
	if got, err := Staged(f.sd); err != nil || !got.Equal(p) {
		t.Errorf("Staged: %v, %v", got.PublicBase64(), err)
	}
}

// backups/ in the working directory (renamed aside, replaced, a symlink)
// has no effect on root's backups.
func TestWorkingDirBackupsHaveNoEffect(t *testing.T) {
	f := newFixture(t)
	canary := plantCanary(t)
	o := f.opts()
	if _, err := Rotate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	before, err := ListBackups(f.wd, f.sd)
	if err != nil || len(before) != 1 {
		t.Fatalf("backups: %+v, %v", before, err)
	}
	snap := snapshotDir(t, f.sd)
	// The service user plants a backups/ of its own, and a symlink where
	// an older rdctl kept staged/.
	writePair(t, filepath.Join(f.wd, backupsDir, "20300101T000000Z"), pairFromByte(t, 0x66))
	if err := os.Symlink(filepath.Dir(canary), filepath.Join(f.wd, stagedDir)); err != nil {
		t.Fatal(err)
	}
	after, err := ListBackups(f.wd, f.sd)
	if err != nil || !slices.Equal(after, before) {
		t.Errorf("backups changed: %+v, %v", after, err)
	}
	if removed, err := Prune(f.wd, f.sd, 1); err != nil || len(removed) != 0 {
		t.Errorf("Prune: %v, %v", removed, err)
	}
	if _, err := Restore(context.Background(), o, "20300101T000000Z"); err == nil {
		t.Error("restored a backup from the working directory")
	}
	if got := snapshotDir(t, f.sd); !slices.Equal(got, snap) {
		t.Errorf("state changed:\n%q\n%q", snap, got)
	}
	assertCanary(t, canary)
}

// The live key files are read, purged and shredded as untrusted: a FIFO,
// a sparse 1 TiB file or a hard link to a file outside is refused, fast,
// and the file outside keeps its bytes.
func TestHostileLiveKeyFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, path, canary string)
		want  error
	}{
		{"fifo", func(t *testing.T, path, _ string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, safefs.ErrNotRegular},
		{"sparse 1 TiB", func(t *testing.T, path, _ string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 1<<40); err != nil {
				t.Fatal(err)
			}
		}, safefs.ErrTooLarge},
		{"hard link outside", func(t *testing.T, path, canary string) {
			if err := os.Link(canary, path); err != nil {
				t.Fatal(err)
			}
		}, safefs.ErrHardLink},
	} {
		for _, file := range []string{keys.SecretFile, keys.PublicFile} {
			t.Run(tc.name+"/"+file, func(t *testing.T) {
				f := newFixture(t)
				canary := plantCanary(t)
				// The uninstall backup first, as uninstall takes it.
				path, _, err := BackupNow(f.wd, f.sd, me(), "uninstall")
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(f.wd, file)
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				tc.plant(t, p, canary)
				err = within(t, func() error {
					_, err := PurgeKeys(f.wd, f.sd, filepath.Base(path))
					return err
				})
				if !errors.Is(err, tc.want) && file == keys.PublicFile {
					t.Errorf("PurgeKeys: %v, want %v", err, tc.want)
				}
				if err == nil && file == keys.SecretFile {
					t.Error("PurgeKeys with a hostile secret succeeded")
				}
				if file == keys.SecretFile {
					err = within(t, func() error { _, err := Rotate(context.Background(), f.opts()); return err })
					var nr *NotRotatableError
					if !errors.As(err, &nr) || !errors.Is(err, tc.want) {
						t.Errorf("Rotate: %v, want *NotRotatableError with %v", err, tc.want)
					}
				}
				if fi, err := os.Lstat(p); err != nil || (tc.name == "sparse 1 TiB" && fi.Size() != 1<<40) {
					t.Errorf("the planted file was changed or removed (%v)", err)
				}
				assertCanary(t, canary)
			})
		}
	}
}

// A journal in the working directory (an older rdctl's place for it) is
// never resumed; a hostile one is reported without its bytes.
func TestLegacyJournalNotResumed(t *testing.T) {
	f := newFixture(t)
	evil := pairFromByte(t, 0x66)
	// A planted backup of a planted "old" key, and a journal that would
	// have Resume put it back when the secret is missing.
	writePair(t, filepath.Join(f.wd, backupsDir, testStamp), evil)
	j := `{"format":1,"op":"rotate","stamp":"` + testStamp + `","old_public_key":"` + evil.PublicBase64() + `","new_public_key":"` + pk(2) + `","pid":1}`
	if err := os.WriteFile(filepath.Join(f.wd, LegacyJournalFile), []byte(j), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Migrate(f.opts())
	if err != nil || m.Journal == nil || m.Journal.Stamp != testStamp {
		t.Fatalf("Migrate: %+v, %v", m, err)
	}
	if exists(t, f.wd, LegacyJournalFile) || exists(t, f.sd, JournalFile) {
		t.Error("the legacy journal was kept or moved into the state directory")
	}
	if rec, err := Resume(context.Background(), f.opts()); err != nil || (rec != nil && rec.Journal != nil) {
		t.Errorf("Resume: %+v, %v; want nothing to resume", rec, err)
	}
	f.assertLive(t, f.old, "legacy journal")

	// Hostile: ESC and newlines in the stamp.
	hostile := `{"format":1,"op":"rotate","stamp":"x\u001b[2J\nrdctl: ok","old_public_key":"a","new_public_key":"b"}`
	if err := os.WriteFile(filepath.Join(f.wd, LegacyJournalFile), []byte(hostile), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err = Migrate(f.opts())
	if err != nil || m.Journal != nil || m.JournalErr == "" {
		t.Fatalf("Migrate: %+v, %v", m, err)
	}
	if strings.ContainsAny(m.JournalErr, "\x1b\n") {
		t.Errorf("the journal error quotes it: %q", m.JournalErr)
	}
}

// Migrate moves valid backups (verified copies), quarantines a staged
// pair, leaves what does not parse, and never follows or zeroes what it
// should not.
func TestMigrate(t *testing.T) {
	f := newFixture(t)
	canary := plantCanary(t)
	old1, old2 := pairFromByte(t, 0x11), pairFromByte(t, 0x12)
	writePair(t, filepath.Join(f.wd, backupsDir, "20250101T000000Z"), old1)
	writePair(t, filepath.Join(f.wd, backupsDir, "20250202T000000Z-uninstall"), old2)
	writePair(t, filepath.Join(f.wd, backupsDir, "bad\x1bname"), old2)
	if err := os.MkdirAll(filepath.Join(f.wd, backupsDir, "20250303T000000Z"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A hard link to the canary where a secret should be.
	if err := os.Link(canary, filepath.Join(f.wd, backupsDir, "20250303T000000Z", keys.SecretFile)); err != nil {
		t.Fatal(err)
	}
	writePair(t, filepath.Join(f.wd, stagedDir), pairFromByte(t, 0x66))

	m, err := Migrate(f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Migrated) != 2 || m.Quarantined == "" {
		t.Errorf("Migration %+v", m)
	}
	f.assertBackupOf(t, old1)
	f.assertBackupOf(t, old2)
	if exists(t, f.wd, backupsDir+"/20250101T000000Z") || exists(t, f.wd, stagedDir) {
		t.Error("migrated state still in the working directory")
	}
	if p, err := Staged(f.sd); err != nil || !p.IsZero() {
		t.Errorf("the working directory's staged pair is staged: %v, %v", p.PublicBase64(), err)
	}
	var left []string
	for _, l := range m.Left {
		left = append(left, l.Path)
		if strings.ContainsAny(l.Path+l.Reason, "\x1b") {
			t.Errorf("Left quotes a raw name: %q", l.Path)
		}
	}
	if len(left) != 2 {
		t.Errorf("Left: %q, want the bad name and the hard-linked secret", left)
	}
	assertCanary(t, canary)
	f.assertLive(t, f.old, "migration")

	// Again: only what was left is found, and nothing changes.
	snap := snapshotDir(t, f.sd)
	m, err = Migrate(f.opts())
	if err != nil || m.Changed() || len(m.Left) != 2 {
		t.Errorf("second Migrate: %+v, %v", m, err)
	}
	if got := snapshotDir(t, f.sd); !slices.Equal(got, snap) {
		t.Error("a second Migrate changed the state directory")
	}
}

// A legacy backups directory the service user filled with names is left
// as it is, named once, and the rest of the migration goes on: what rdctl
// reads and reports there does not grow with what that user writes.
func TestMigrateTooManyLegacyEntries(t *testing.T) {
	f := newFixture(t)
	writePair(t, filepath.Join(f.wd, backupsDir, "20250101T000000Z"), pairFromByte(t, 0x11))
	for i := range maxLegacyBackups {
		if err := os.WriteFile(filepath.Join(f.wd, backupsDir, fmt.Sprintf("junk%05d", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePair(t, filepath.Join(f.wd, stagedDir), pairFromByte(t, 0x66))
	m, err := Migrate(f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Migrated) != 0 || len(m.Left) != 1 || !strings.Contains(m.Left[0].Reason, "more than 1024 entries") {
		t.Errorf("Migration %+v; want the backups directory left, named once", m)
	}
	if m.Quarantined == "" {
		t.Error("the staged pair was not quarantined: one full directory stopped the migration")
	}
	if !exists(t, f.wd, backupsDir+"/20250101T000000Z") {
		t.Error("a legacy backup was removed from a directory rdctl did not read in full")
	}
	f.assertLive(t, f.old, "migration")
}

// A kill at each migration step leaves the key and at least one verified
// copy of each backup, and the next Migrate finishes the job.
func TestMigrateCrashMatrix(t *testing.T) {
	for _, point := range MigratePoints {
		t.Run(point, func(t *testing.T) {
			f := newFixture(t)
			olds := []keys.Pair{pairFromByte(t, 0x11), pairFromByte(t, 0x12)}
			for i, p := range olds {
				writePair(t, filepath.Join(f.wd, backupsDir, "2025010"+string(rune('1'+i))+"T000000Z"), p)
			}
			writePair(t, filepath.Join(f.wd, stagedDir), pairFromByte(t, 0x66))
			j := `{"format":1,"op":"rotate","stamp":"20250101T000000Z","old_public_key":"` + olds[0].PublicBase64() + `","new_public_key":"` + pk(2) + `","pid":1}`
			if err := os.WriteFile(filepath.Join(f.wd, LegacyJournalFile), []byte(j), 0o600); err != nil {
				t.Fatal(err)
			}
			crashAt(t, point, func(hook func(string)) error {
				o := f.opts()
				o.Hook = hook
				_, err := Migrate(o)
				return err
			})
			// What the kill left: every old key verifiably somewhere.
			for _, p := range olds {
				if !holdsPair(t, f.sd, p) && !holdsPair(t, filepath.Join(f.wd), p) {
					t.Errorf("after a kill at %s no verified copy of %s", point, p.PublicBase64())
				}
			}
			f.assertLive(t, f.old, "killed migration")
			m, err := Migrate(f.opts())
			if err != nil || len(m.Left) != 0 {
				t.Fatalf("Migrate after the kill: %+v, %v", m, err)
			}
			for _, p := range olds {
				f.assertBackupOf(t, p)
			}
			for _, n := range []string{backupsDir, stagedDir, LegacyJournalFile} {
				if exists(t, f.wd, n) {
					t.Errorf("%s still in the working directory", n)
				}
			}
			if p, err := Staged(f.sd); err != nil || !p.IsZero() {
				t.Errorf("staged after migration: %v, %v", p.PublicBase64(), err)
			}
			f.assertLive(t, f.old, "migration finished")
		})
	}
}

// holdsPair: some backups/<stamp> below dir holds p, whole.
func holdsPair(t *testing.T, dir string, p keys.Pair) bool {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, backupsDir))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, backupsDir, e.Name(), keys.SecretFile))
		if err != nil {
			continue
		}
		if q, err := keys.ParseSecret(b); err == nil && q.Equal(p) {
			return true
		}
	}
	return false
}

// An id_ed25519.pub the switch cannot replace (a symlink, a named pipe, a
// directory the service user put there) is refused before anything
// changes: no service stopped, no journal, the old key live — so it cannot
// leave a journal that blocks every later command. Found by the integration
// attack suite: the switch used to fail after the services had stopped.
func TestRotateRefusesUnreplaceablePubFirst(t *testing.T) {
	for name, plant := range map[string]func(p string) error{
		"symlink":    func(p string) error { return os.Symlink("/etc/passwd", p) },
		"named pipe": func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"directory":  func(p string) error { return os.Mkdir(p, 0o700) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			p := filepath.Join(f.wd, keys.PublicFile)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := plant(p); err != nil {
				t.Fatal(err)
			}
			err := within(t, func() error { _, err := Rotate(context.Background(), f.opts()); return err })
			var nr *NotRotatableError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), name) {
				t.Fatalf("Rotate: %v, want a NotRotatableError naming the %s", err, name)
			}
			if len(f.rt.calls) != 0 {
				t.Errorf("services touched: %v", f.rt.calls)
			}
			if pending, err := NeedsResume(f.wd, f.sd); pending || err != nil {
				t.Errorf("a journal or leftovers remain: %v %v", pending, err)
			}
			if st, err := keys.InspectDir(f.wd); err != nil || !st.Valid || !st.Pair.Equal(f.old) {
				t.Errorf("the live key changed: %v", err)
			}
		})
	}
}
