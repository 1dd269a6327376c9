package rotate

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/keys"
)

// firstNewPub is the public key keys.Generate makes from the fixture's seed
// stream (its first seed, 32 bytes of 0x01, is usable). Fixed, so that a
// transaction that ignored Options.Rand would fail here.
const firstNewPub = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="

// secondNewPub is the next key of the stream: seeds 0x02 to 0x06 give a
// public key with '/' or ':' and are skipped, as hbbs skips them.
const secondNewPub = "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="

var (
	errStop   = errors.New("fake stop failure")
	errStart  = errors.New("fake start failure")
	errVerify = errors.New("fake verify failure")
)

func TestRotate(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup adjusts the fixture and options before the rotation.
		setup     func(f *fixture, o *Options)
		verifyErr error // nil: Verify passes; Verify is always set
		noVerify  bool
		// want
		wantErr       error // matched with errors.Is
		wantRolled    bool  // a *RolledBackError with RestoreErr nil
		wantNew       bool  // the new key is live afterwards
		wantCalls     string
		wantVerified  bool
		wantVerifyRun int
	}{
		{
			name:         "success",
			wantNew:      true,
			wantCalls:    "stop,start",
			wantVerified: true, wantVerifyRun: 1,
		},
		{
			name:      "success without Verify",
			noVerify:  true,
			wantNew:   true,
			wantCalls: "stop,start",
		},
		{
			// Nothing was switched: the old files are live, the services
			// are started again, the error says why.
			name:      "stop fails",
			setup:     func(f *fixture, _ *Options) { f.rt.stopErrs = []error{errStop} },
			wantErr:   errStop,
			wantCalls: "stop,start",
		},
		{
			name:       "start fails",
			setup:      func(f *fixture, _ *Options) { f.rt.startErrs = []error{errStart} },
			wantErr:    errStart,
			wantRolled: true,
			wantCalls:  "stop,start,stop,start",
		},
		{
			name:          "verify fails",
			verifyErr:     errVerify,
			wantErr:       errVerify,
			wantRolled:    true,
			wantCalls:     "stop,start,stop,start",
			wantVerifyRun: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			o := f.opts()
			var vcalls []verifyCall
			if !tc.noVerify {
				o.Verify = recordVerify(&vcalls, tc.verifyErr)
			}
			if tc.setup != nil {
				tc.setup(f, &o)
			}
			res, err := Rotate(context.Background(), o)

			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Rotate: %v, want %v", err, tc.wantErr)
			}
			var rb *RolledBackError
			if got := errors.As(err, &rb); got != tc.wantRolled {
				t.Fatalf("Rotate: %v (%T): RolledBackError=%v, want %v", err, err, got, tc.wantRolled)
			}
			if rb != nil {
				if rb.RestoreErr != nil {
					t.Errorf("RestoreErr = %v, want nil", rb.RestoreErr)
				}
				if want := filepath.Join(f.sd, backupsDir, testStamp); rb.Backup != want {
					t.Errorf("RolledBackError.Backup = %q, want %q", rb.Backup, want)
				}
			}
			if res == nil {
				t.Fatal("no Result")
			}
			if res.Op != "rotate" || res.OldPublicKey != f.old.PublicBase64() || res.NewPublicKey != firstNewPub {
				t.Errorf("Result op %q old %q new %q, want rotate %q %q", res.Op, res.OldPublicKey, res.NewPublicKey, f.old.PublicBase64(), firstNewPub)
			}
			if want := filepath.Join(f.sd, backupsDir, testStamp); res.Backup != want {
				t.Errorf("Result.Backup = %q, want %q", res.Backup, want)
			}
			if res.Verified != tc.wantVerified {
				t.Errorf("Result.Verified = %v, want %v", res.Verified, tc.wantVerified)
			}
			if res.Unchanged || res.Recovered != nil {
				t.Errorf("Result unchanged=%v recovered=%+v", res.Unchanged, res.Recovered)
			}

			want := f.old
			if tc.wantNew {
				want = pairFromByte(t, 1)
			}
			f.assertLive(t, want, "after the rotation")
			if got := f.live(t).PublicBase64(); tc.wantNew && got != firstNewPub {
				t.Errorf("new key %s, want the seed stream's %s", got, firstNewPub)
			}
			f.assertClean(t)
			if stamp := f.assertBackupOf(t, f.old); stamp != testStamp {
				t.Errorf("backup stamp %q, want %q (the injected clock in UTC)", stamp, testStamp)
			}
			if got := f.rt.callString(); got != tc.wantCalls {
				t.Errorf("runtime calls %q, want %q", got, tc.wantCalls)
			}
			if !f.rt.running {
				t.Error("the services are not running afterwards")
			}
			if len(vcalls) != tc.wantVerifyRun {
				t.Fatalf("Verify ran %d times, want %d", len(vcalls), tc.wantVerifyRun)
			}
			for _, c := range vcalls {
				if c.newKey != firstNewPub || c.oldKey != f.old.PublicBase64() {
					t.Errorf("Verify(%q, %q), want (new %q, old %q)", c.newKey, c.oldKey, firstNewPub, f.old.PublicBase64())
				}
			}
		})
	}
}

// A runtime that can prepare is prepared before the services stop (so its
// connecting and resetting fall outside the outage) and released when the
// transaction ends, rollback included; a failed Prepare changes nothing.
func TestRotatePreparesRuntime(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prepareErr error
		verifyErr  error
		wantCalls  string
	}{
		{"success", nil, nil, "prepare,stop,start,release"},
		{"rollback", nil, errVerify, "prepare,stop,start,stop,start,release"},
		{"prepare fails", errors.New("no systemd"), nil, "prepare,stop,start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			o := f.opts()
			rt := &preparingRuntime{fakeRuntime: f.rt, prepareErr: tc.prepareErr}
			o.Runtime = rt
			var vcalls []verifyCall
			o.Verify = recordVerify(&vcalls, tc.verifyErr)
			_, err := Rotate(context.Background(), o)
			if !errors.Is(err, tc.verifyErr) {
				t.Fatalf("Rotate: %v, want %v", err, tc.verifyErr)
			}
			if got := rt.callString(); got != tc.wantCalls {
				t.Errorf("runtime calls %q, want %q", got, tc.wantCalls)
			}
			want := f.old
			if tc.verifyErr == nil {
				want = pairFromByte(t, 1)
			}
			f.assertLive(t, want, "after the rotation")
			f.assertClean(t)
		})
	}
}

// Start failing for good: the old files go back but the services cannot be
// started, so the error says so and the journal stays for the next run,
// whose Resume (with the services healthy again) completes the rollback.
func TestRotateStartNeverWorks(t *testing.T) {
	f := newFixture(t)
	o := f.opts()
	f.rt.alwaysFailStart = errStart
	_, err := Rotate(context.Background(), o)
	var rb *RolledBackError
	if !errors.As(err, &rb) || !errors.Is(rb.RestoreErr, errStart) {
		t.Fatalf("Rotate: %v, want a RolledBackError whose RestoreErr is the start failure", err)
	}
	f.assertLive(t, f.old, "after a failed rollback start")
	if !exists(t, f.sd, JournalFile) {
		t.Fatal("the journal is gone although the rollback did not finish")
	}

	f.rt.alwaysFailStart = nil
	f.rt.calls = nil
	rec, err := Resume(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil || rec.Action != "rolled back" {
		t.Fatalf("Resume: %+v, want rolled back", rec)
	}
	f.assertLive(t, f.old, "after Resume")
	f.assertClean(t)
	f.assertBackupOf(t, f.old)
	if got := f.rt.callString(); got != "start" || !f.rt.running {
		t.Errorf("Resume runtime calls %q running=%v, want start", got, f.rt.running)
	}
}

// Rotate refuses before it changes anything: no journal, no backups/.
func TestRotateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name          string
		setup         func(t *testing.T, f *fixture, o *Options)
		wantNotRotate bool
	}{
		{"no secret", func(t *testing.T, f *fixture, _ *Options) {
			if err := os.Remove(filepath.Join(f.wd, keys.SecretFile)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"malformed secret", func(t *testing.T, f *fixture, _ *Options) {
			if err := os.WriteFile(filepath.Join(f.wd, keys.SecretFile), []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"randomness runs dry", func(_ *testing.T, _ *fixture, o *Options) { o.Rand = nopReader }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			o := f.opts()
			tc.setup(t, f, &o)
			before := f.snapshot(t)
			res, err := Rotate(context.Background(), o)
			if err == nil {
				t.Fatalf("Rotate succeeded: %+v", res)
			}
			var nr *NotRotatableError
			if got := errors.As(err, &nr); got != tc.wantNotRotate {
				t.Errorf("Rotate: %v (%T): NotRotatableError=%v, want %v", err, err, got, tc.wantNotRotate)
			}
			if nr != nil && nr.Dir != f.wd {
				t.Errorf("NotRotatableError.Dir = %q, want %q", nr.Dir, f.wd)
			}
			if after := f.snapshot(t); !slices.Equal(before, after) {
				t.Errorf("the working directory changed:\nbefore %q\nafter  %q", before, after)
			}
			if len(f.rt.calls) != 0 {
				t.Errorf("runtime calls %v, want none", f.rt.calls)
			}
		})
	}
}

// snapshotDir lists every path below dir with its contents, to show that
// nothing changed.
// snapshot is snapshotDir of the working and the state directory.
func (f *fixture) snapshot(t *testing.T) []string {
	t.Helper()
	return append(snapshotDir(t, f.wd), snapshotDir(t, f.sd)...)
}

func snapshotDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		entry := rel
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entry += "=" + string(data)
		}
		out = append(out, entry)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The injected clock names the backups; rotations within one second get
// distinct stamps (-1, -2, ...) and each backup holds the key it replaced.
func TestRotateStamps(t *testing.T) {
	f := newFixture(t)
	clock := testNow
	o := f.opts()
	o.Now = func() time.Time { return clock }
	var olds []keys.Pair
	var stamps []string
	for i, step := range []time.Duration{0, 0, 0, time.Second} {
		clock = clock.Add(step)
		olds = append(olds, f.live(t))
		res, err := Rotate(context.Background(), o)
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		stamps = append(stamps, filepath.Base(res.Backup))
		if i == 1 && res.NewPublicKey != secondNewPub {
			t.Errorf("second new key %s, want %s", res.NewPublicKey, secondNewPub)
		}
	}
	want := []string{testStamp, testStamp + "-1", testStamp + "-2", "20260314T140927Z"}
	if !slices.Equal(stamps, want) {
		t.Errorf("stamps %q, want %q", stamps, want)
	}
	for i, p := range olds {
		if got := f.assertBackupOf(t, p); got != want[i] {
			t.Errorf("key %d backed up in %q, want %q", i, got, want[i])
		}
	}
	f.assertClean(t)
}

func TestStage(t *testing.T) {
	f := newFixture(t)
	o := f.opts()
	if p, err := Staged(f.sd); err != nil || !p.IsZero() {
		t.Fatalf("Staged before Stage: %v, %v; want a zero pair", p.PublicBase64(), err)
	}
	p, created, err := Stage(o)
	if err != nil || !created {
		t.Fatalf("Stage: created=%v, %v", created, err)
	}
	if p.PublicBase64() != firstNewPub {
		t.Errorf("staged %s, want the seed stream's %s", p.PublicBase64(), firstNewPub)
	}
	for rel, mode := range map[string]fs.FileMode{
		stagedDir:                          0o700 | fs.ModeDir,
		stagedDir + "/" + keys.SecretFile:  0o600,
		stagedDir + "/" + keys.PublicFile:  0o600,
		stagedDir + "/" + stagedRecordFile: 0o600,
	} {
		fi, err := os.Lstat(filepath.Join(f.sd, rel))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: mode %v (%v), want %v", rel, fi.Mode(), err, mode)
		}
	}

	// A second Stage, with other randomness, keeps the staged pair.
	o2 := o
	o2.Rand = &seedStream{first: 0x50}
	again, created, err := Stage(o2)
	if err != nil || created || !again.Equal(p) {
		t.Errorf("second Stage: %s created=%v %v; want the staged %s, created=false", again.PublicBase64(), created, err, p.PublicBase64())
	}
	if got, err := Staged(f.sd); err != nil || !got.Equal(p) {
		t.Errorf("Staged: %s, %v; want %s", got.PublicBase64(), err, p.PublicBase64())
	}
	f.assertLive(t, f.old, "staging does not switch")
	if len(f.rt.calls) != 0 {
		t.Errorf("Stage touched the services: %v", f.rt.calls)
	}
}

// A staged secret that does not parse is an error, never silently replaced.
func TestStageRefusesCorruptStaged(t *testing.T) {
	f := newFixture(t)
	if _, _, err := Stage(f.opts()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.sd, stagedDir, keys.SecretFile)
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, created, err := Stage(f.opts()); !errors.Is(err, keys.ErrMalformed) || created {
		t.Errorf("Stage over a corrupt staged key: created=%v %v, want ErrMalformed", created, err)
	}
	if data, _ := os.ReadFile(path); string(data) != "garbage" {
		t.Errorf("the corrupt staged key was overwritten: %q", data)
	}
	if _, err := Commit(context.Background(), f.opts()); !errors.Is(err, keys.ErrMalformed) {
		t.Errorf("Commit of a corrupt staged key: %v, want ErrMalformed", err)
	}
	f.assertLive(t, f.old, "nothing committed")
}

func TestCommit(t *testing.T) {
	t.Run("staged", func(t *testing.T) {
		f := newFixture(t)
		o := f.opts()
		staged, _, err := Stage(o)
		if err != nil {
			t.Fatal(err)
		}
		// Commit switches to the staged pair, not to a fresh one.
		o.Rand = nopReader
		var vcalls []verifyCall
		o.Verify = recordVerify(&vcalls, nil)
		res, err := Commit(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Op != "commit" || res.NewPublicKey != staged.PublicBase64() || !res.Verified {
			t.Errorf("Result %+v, want commit of %s, verified", res, staged.PublicBase64())
		}
		if len(vcalls) != 1 || vcalls[0] != (verifyCall{staged.PublicBase64(), f.old.PublicBase64()}) {
			t.Errorf("Verify calls %+v, want one (new, old)", vcalls)
		}
		f.assertLive(t, staged, "committed")
		f.assertClean(t)
		f.assertBackupOf(t, f.old)
		if exists(t, f.sd, stagedDir) {
			t.Error("staged/ is still there after the commit")
		}
		if got := f.rt.callString(); got != "stop,start" {
			t.Errorf("runtime calls %q", got)
		}
	})
	t.Run("nothing staged", func(t *testing.T) {
		f := newFixture(t)
		before := f.snapshot(t)
		res, err := Commit(context.Background(), f.opts())
		if !errors.Is(err, ErrNothingStaged) {
			t.Fatalf("Commit: %+v, %v; want ErrNothingStaged", res, err)
		}
		if after := f.snapshot(t); !slices.Equal(before, after) {
			t.Errorf("the working directory changed:\nbefore %q\nafter  %q", before, after)
		}
		if len(f.rt.calls) != 0 {
			t.Errorf("runtime calls %v, want none", f.rt.calls)
		}
	})
	t.Run("staged key already live", func(t *testing.T) {
		// A commit killed after its switch leaves staged/ holding the live
		// key: committing again changes nothing and drops staged/.
		f := newFixture(t)
		o := f.opts()
		staged, _, err := Stage(o)
		if err != nil {
			t.Fatal(err)
		}
		f.writeLive(t, staged)
		res, err := Commit(context.Background(), o)
		if err != nil || !res.Unchanged {
			t.Fatalf("Commit: %+v, %v; want unchanged", res, err)
		}
		if exists(t, f.sd, stagedDir) || exists(t, f.sd, backupsDir) || len(f.rt.calls) != 0 {
			t.Errorf("staged/ kept=%v, backups/ made=%v, runtime calls %v; want none of them",
				exists(t, f.sd, stagedDir), exists(t, f.sd, backupsDir), f.rt.calls)
		}
	})
}

func TestRestore(t *testing.T) {
	// setup: one rotation, so backups/<testStamp> holds the original key.
	setup := func(t *testing.T) (*fixture, Options, keys.Pair) {
		f := newFixture(t)
		o := f.opts()
		if _, err := Rotate(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		f.rt.calls = nil
		return f, o, f.live(t)
	}
	t.Run("good stamp", func(t *testing.T) {
		f, o, current := setup(t)
		var vcalls []verifyCall
		o.Verify = recordVerify(&vcalls, nil)
		res, err := Restore(context.Background(), o, testStamp)
		if err != nil {
			t.Fatal(err)
		}
		if res.Op != "restore" || res.NewPublicKey != f.old.PublicBase64() || res.OldPublicKey != current.PublicBase64() {
			t.Errorf("Result %+v", res)
		}
		if want := filepath.Join(f.sd, backupsDir, testStamp+"-1"); res.Backup != want {
			t.Errorf("the key restore replaced went to %q, want %q", res.Backup, want)
		}
		if len(vcalls) != 1 || vcalls[0] != (verifyCall{f.old.PublicBase64(), current.PublicBase64()}) {
			t.Errorf("Verify calls %+v, want one (restored, replaced)", vcalls)
		}
		f.assertLive(t, f.old, "restored")
		f.assertClean(t)
		f.assertBackupOf(t, current)
		f.assertBackupOf(t, f.old)
		if got := f.rt.callString(); got != "stop,start" {
			t.Errorf("runtime calls %q", got)
		}
		// Restoring what is live already changes nothing.
		f.rt.calls = nil
		res, err = Restore(context.Background(), o, testStamp)
		if err != nil || !res.Unchanged || len(f.rt.calls) != 0 {
			t.Errorf("second Restore: %+v, %v, calls %v; want unchanged, no calls", res, err, f.rt.calls)
		}
		if all, _ := ListBackups(f.wd, f.sd); len(all) != 2 {
			t.Errorf("%d backups, want 2 (an unchanged restore backs nothing up)", len(all))
		}
	})
	for _, tc := range []struct {
		name, stamp string
		wantErr     error // nil: any error
	}{
		{"missing backup", "20990101T000000Z", fs.ErrNotExist},
		{"empty stamp", "", nil},
		{"dot", ".", nil},
		{"dot dot", "..", nil},
		{"path", "../backups/" + testStamp, nil},
		{"nul", testStamp + "\x00", nil},
	} {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			f, o, current := setup(t)
			before := f.snapshot(t)
			res, err := Restore(context.Background(), o, tc.stamp)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Restore(%q): %+v, %v; want an error (%v)", tc.stamp, res, err, tc.wantErr)
			}
			if after := f.snapshot(t); !slices.Equal(before, after) {
				t.Errorf("the working directory changed:\nbefore %q\nafter  %q", before, after)
			}
			f.assertLive(t, current, "a failed restore changes nothing")
			if len(f.rt.calls) != 0 {
				t.Errorf("runtime calls %v", f.rt.calls)
			}
		})
	}
	t.Run("backup with a broken secret", func(t *testing.T) {
		f, o, current := setup(t)
		if err := os.WriteFile(filepath.Join(f.sd, backupsDir, testStamp, keys.SecretFile), []byte("AAAA"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(context.Background(), o, testStamp); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("Restore of a broken backup: %v, want ErrMalformed", err)
		}
		f.assertLive(t, current, "a failed restore changes nothing")
		f.assertClean(t)
	})
}
